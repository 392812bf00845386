"""Prints how it was started: sys.argv, sys.path[0], and the __main__ module's attributes."""  # line: <module>
import os  # line: <module>
import sys  # line: <module>


def describe_spec(spec):  # line: <module>
    if spec is None:  # line: describe_spec
        return "None"  # line: describe_spec
    return f"name={spec.name} origin={spec.origin} parent={spec.parent!r} loader={type(spec.loader).__name__}"  # maybe: describe_spec


print("argv", sys.argv)  # line: <module>
print("path0", sys.path[0])  # line: <module>
print("file", __file__)  # line: <module>
print("name", __name__)  # line: <module>
print("spec", describe_spec(__spec__))  # line: <module>
print("package", repr(__package__))  # line: <module>
print("loader", type(__loader__).__name__, __loader__.name if hasattr(__loader__, "name") else "-")  # line: <module>
print("cached", __cached__)  # line: <module>
print("doc", __doc__)  # line: <module>
print("main module", sys.modules["__main__"].__dict__ is globals())  # line: <module>
print("builtins", type(__builtins__).__name__)  # line: <module>
print("annotations", __annotations__)  # line: <module>
print("cwd", os.getcwd())  # line: <module>
print("argv0 exists", os.path.exists(sys.argv[0]))  # line: <module>
