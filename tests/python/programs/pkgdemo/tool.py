"""`python -m pkgdemo.tool`: a module inside a package run as the main program."""  # line: <module>
import sys  # line: <module>

from pkgdemo import banner  # line: <module>
from pkgdemo.shapes import Circle  # line: <module>


def run(args):  # line: <module>
    print(banner("tool"))  # line: run
    print("argv", sys.argv)  # line: run
    print("name", __name__, "package", __package__, "spec", __spec__.name, __spec__.parent)  # line: run
    print("file", __file__)  # line: run
    print("cached", __cached__)  # line: run
    print("path0", sys.path[0])  # line: run
    print("loader", type(__loader__).__name__)  # line: run
    total = sum(Circle(float(a)).area() for a in args)  # line: run, run.<locals>.<genexpr>
    print("total area", total)  # line: run


if __name__ == "__main__":  # line: <module>
    run(sys.argv[1:])  # line: <module>
