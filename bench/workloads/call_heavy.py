"""Call-heavy workload: many tiny Python calls with arguments and return values."""
import sys


def add(a, b):
    return a + b


def fib(n):
    if n < 2:
        return n
    return add(fib(n - 1), fib(n - 2))


n = int(sys.argv[1]) if len(sys.argv) > 1 else 22
print(fib(n))
