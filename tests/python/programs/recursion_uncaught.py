"""Unbounded recursion, uncaught: python prints a RecursionError traceback and exits 1."""  # line: <module>
import sys  # line: <module>


def walk(node):  # line: <module>
    return walk(node + 1)  # line: walk


sys.setrecursionlimit(250)  # line: <module>
walk(0)  # line: <module>
