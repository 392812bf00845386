"""An exception escaping through three frames: the traceback must be python's, byte for byte."""  # line: <module>
import sys  # line: <module>


def load(config):  # line: <module>
    return validate(config["port"])  # line: load


def validate(port):  # line: <module>
    if not 0 < port < 65536:  # line: validate
        raise ValueError(f"port out of range: {port}")  # line: validate
    return port  # line: validate


print("starting", file=sys.stderr)  # line: <module>
print("port", load({"port": 8080}))  # line: <module>
sys.stdout.flush()  # line: <module>
load({"port": 70000})  # line: <module>
print("not reached")
