"""`python -m pkgdemo.crash`: fails with an uncaught exception (runpy's frames in the traceback)."""  # line: <module>
from pkgdemo import banner  # line: <module>


def load_config(path):  # line: <module>
    raise FileNotFoundError(2, "No such file or directory", path)  # line: load_config


print(banner("crash"), flush=True)  # line: <module>
load_config("/nonexistent/pkgdemo.toml")  # line: <module>
