"""Looks at its own call stack: depth, the printed stack, and the outermost frame."""  # line: <module>
import inspect  # line: <module>
import sys  # line: <module>
import traceback  # line: <module>
import warnings  # line: <module>


def depth():  # line: <module>
    frame, n = sys._getframe(), 0  # line: depth
    while frame is not None:  # line: depth
        n += 1  # line: depth
        frame = frame.f_back  # line: depth
    return n  # line: depth


def report():  # line: <module>
    print("frames on the stack:", depth())  # line: report
    print("inspect.stack() length:", len(inspect.stack()))  # line: report
    outermost = inspect.stack()[-1]  # line: report
    print("outermost frame:", outermost.function, outermost.filename == __file__)  # line: report
    traceback.print_stack(file=sys.stdout)  # line: report
    # Attributed to the caller's caller: above the program's outermost frame.
    warnings.warn("attributed beyond the outermost frame", stacklevel=3)  # line: report


report()  # line: <module>
