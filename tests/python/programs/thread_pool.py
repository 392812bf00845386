"""A concurrent.futures thread pool: map, submit, as_completed, and a task that raises."""  # line: <module>
from concurrent.futures import ThreadPoolExecutor, as_completed  # line: <module>


def collatz_steps(n):  # line: <module>
    steps = 0  # line: collatz_steps
    while n != 1:  # line: collatz_steps
        n = n // 2 if n % 2 == 0 else 3 * n + 1  # line: collatz_steps
        steps += 1  # line: collatz_steps
    return steps  # line: collatz_steps


def checked_sqrt(x):  # line: <module>
    if x < 0:  # line: checked_sqrt
        raise ValueError(f"negative input {x}")  # line: checked_sqrt
    return x ** 0.5  # line: checked_sqrt


def main():  # line: <module>
    with ThreadPoolExecutor(max_workers=3) as pool:  # line: main
        print("map:", list(pool.map(collatz_steps, [6, 7, 27, 97])))  # line: main
        futures = {pool.submit(checked_sqrt, x): x for x in (16, -4, 81)}  # line: main, main.<locals>.<dictcomp>
        results = {}  # line: main
        for fut in as_completed(futures):  # line: main
            x = futures[fut]  # line: main
            try:  # line: main
                results[x] = fut.result()  # line: main
            except ValueError as exc:  # line: main
                results[x] = f"error: {exc}"  # line: main
    for x in sorted(results):  # line: main
        print(x, results[x])  # line: main


if __name__ == "__main__":  # line: <module>
    main()  # line: <module>
