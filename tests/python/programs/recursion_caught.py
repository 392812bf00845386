"""Runs into the recursion limit, recovers, and keeps working afterwards."""  # line: <module>
import sys  # line: <module>


def descend(n):  # line: <module>
    return descend(n + 1) + 1  # line: descend


def after_recovery(values):  # line: <module>
    return sum(values)  # line: after_recovery


sys.setrecursionlimit(300)  # line: <module>
try:  # line: <module>
    descend(0)  # line: <module>
except RecursionError as exc:  # line: <module>
    print("caught:", exc)  # line: <module>
print("still working:", after_recovery([1, 2, 3]))  # line: <module>
