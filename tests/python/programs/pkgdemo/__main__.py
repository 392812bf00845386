"""Entry point of `python -m pkgdemo`."""  # line: <module>
import sys  # line: <module>

from . import banner  # line: <module>
from .shapes import Circle  # line: <module>


def main(argv):  # line: <module>
    print(banner("__main__"))  # line: main
    print("argv", argv)  # line: main
    print("name", __name__, "package", __package__, "spec", __spec__.name)  # line: main
    print("file", __file__)  # line: main
    print("path0", sys.path[0])  # line: main
    print("loader", type(__loader__).__name__)  # line: main
    print("areas", [Circle(r).area() for r in (1, 2)])  # line: main, main.<locals>.<listcomp>
    return len(argv) - 1  # line: main


sys.exit(main(sys.argv))  # line: <module>
