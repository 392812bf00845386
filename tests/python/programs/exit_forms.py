"""Ends the way argv[1] names, after an atexit handler is registered and a finally block."""  # line: <module>
import atexit  # line: <module>
import sys  # line: <module>


def goodbye(form):  # line: <module>
    print(f"atexit handler ran after {form}")  # line: goodbye


def leave(form):  # line: <module>
    if form == "sys.exit()":  # line: leave
        sys.exit()  # maybe: leave
    if form == "sys.exit(0)":  # maybe: leave
        sys.exit(0)  # maybe: leave
    if form == "sys.exit(3)":  # maybe: leave
        sys.exit(3)  # maybe: leave
    if form == "sys.exit(message)":  # maybe: leave
        sys.exit("fatal: the configuration is broken")  # maybe: leave
    if form == "sys.exit(None)":  # maybe: leave
        sys.exit(None)  # maybe: leave
    if form == "sys.exit(True)":  # maybe: leave
        sys.exit(True)  # maybe: leave
    if form == "sys.exit(256)":  # maybe: leave
        sys.exit(256)  # maybe: leave
    if form == "raise SystemExit(7)":  # maybe: leave
        raise SystemExit(7)  # maybe: leave
    if form == "raise SystemExit(message)":  # maybe: leave
        raise SystemExit("stopping: " + form)  # maybe: leave
    if form == "exit(4)":  # maybe: leave
        exit(4)  # maybe: leave
    print("leave: returning normally")  # maybe: leave


def main(form):  # line: <module>
    try:  # line: main
        leave(form)  # line: main
    finally:  # no line event of its own
        print("finally block ran")  # line: main
    print("main returned")  # maybe: main


atexit.register(goodbye, sys.argv[1])  # line: <module>
print("starting", sys.argv[1])  # line: <module>
sys.stdout.flush()  # line: <module>
main(sys.argv[1])  # line: <module>
print("end of module")  # maybe: <module>
