"""os._exit(5): no cleanup at all (no atexit, no finally), status 5."""  # line: <module>
import atexit  # line: <module>
import os  # line: <module>
import sys  # line: <module>

atexit.register(print, "atexit must not run")  # line: <module>
print("flushing before os._exit", flush=True)  # line: <module>
print("error stream", file=sys.stderr, flush=True)  # line: <module>
try:  # line: <module>
    os._exit(5)  # line: <module>
finally:
    print("finally must not run")
