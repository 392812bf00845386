"""Recursive Fibonacci with memo-free recursion, an iterative check and a summary."""  # line: <module>
import sys  # line: <module>

calls = 0  # line: <module>


def fib(n):  # line: <module>
    global calls  # no line event: a declaration, not code
    calls += 1  # line: fib
    if n < 2:  # line: fib
        return n  # line: fib
    return fib(n - 1) + fib(n - 2)  # line: fib


def fib_iter(n):  # line: <module>
    a, b = 0, 1  # line: fib_iter
    for _ in range(n):  # line: fib_iter
        a, b = b, a + b  # line: fib_iter
    return a  # line: fib_iter


def main(argv):  # line: <module>
    n = int(argv[1]) if len(argv) > 1 else 10  # line: main
    value = fib(n)  # line: main
    assert value == fib_iter(n)  # line: main
    print(f"fib({n}) = {value} in {calls} calls")  # line: main
    return 0  # line: main


if __name__ == "__main__":  # line: <module>
    sys.exit(main(sys.argv))  # line: <module>
