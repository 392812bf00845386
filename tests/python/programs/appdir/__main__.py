"""The entry point of a directory (or zip archive) run as `python appdir`."""  # line: <module>
import sys  # line: <module>


def main(argv):  # line: <module>
    print("argv", argv)  # line: main
    print("path0", sys.path[0])  # line: main
    print("name", __name__, "spec", __spec__ and __spec__.name, "package", repr(__package__))  # line: main
    print("file", __file__)  # line: main
    print("loader", type(__loader__).__name__)  # line: main
    return 0  # line: main


sys.exit(main(sys.argv))  # line: <module>
