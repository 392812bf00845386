"""Says it is ready, then blocks reading stdin until something external kills it."""  # line: <module>
import sys  # line: <module>


def serve():  # line: <module>
    print("ready", flush=True)  # line: serve
    # A signal right after "ready" may come before the next line starts.
    return sys.stdin.readline()  # maybe: serve


print("served", serve())  # maybe: <module>
