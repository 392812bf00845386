"""Says it is ready, then blocks reading stdin until something external kills it."""  # line: <module>
import sys  # line: <module>


def serve():  # line: <module>
    print("ready", flush=True)  # line: serve
    return sys.stdin.readline()  # line: serve


print("served", serve())  # maybe: <module>
