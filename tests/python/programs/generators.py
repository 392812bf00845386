"""Generators: yield from, send(), early close() with cleanup, a generator expression."""  # line: <module>


def countdown(n):  # line: <module>
    while n > 0:  # line: countdown
        yield n  # line: countdown
        n -= 1  # line: countdown
    return "liftoff"  # line: countdown


def delegate():  # line: <module>
    result = yield from countdown(3)  # line: delegate
    yield result  # line: delegate


def accumulator():  # line: <module>
    total = 0  # line: accumulator
    while True:  # line: accumulator
        value = yield total  # line: accumulator
        if value is None:  # line: accumulator
            break  # line: accumulator
        total += value  # line: accumulator
    return total  # line: accumulator


def resource(log):  # line: <module>
    log.append("open")  # line: resource
    try:  # line: resource
        for i in range(100):  # line: resource
            yield i  # line: resource
    finally:  # no line event of its own
        log.append("closed")  # line: resource


def main():  # line: <module>
    print(list(delegate()))  # line: main
    acc = accumulator()  # line: main
    next(acc)  # line: main
    for v in (5, 10, 20):  # line: main
        print("running total", acc.send(v))  # line: main
    try:  # line: main
        acc.send(None)  # line: main
    except StopIteration as stop:  # line: main
        print("final total", stop.value)  # line: main
    log = []  # line: main
    gen = resource(log)  # line: main
    print(next(gen), next(gen))  # line: main
    gen.close()  # line: main
    print(log)  # line: main
    squares = (i * i for i in range(4))  # line: main, main.<locals>.<genexpr>
    print(sum(squares))  # line: main


main()  # line: <module>
