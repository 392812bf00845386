"""A package run with -m: `-m pkgdemo` runs __main__.py, `-m pkgdemo.tool` runs tool.py."""  # line: <module>
VERSION = "1.2"  # line: <module>


def banner(name):  # line: <module>
    return f"pkgdemo {VERSION} ({name})"  # line: banner
