"""atexit handlers with arguments, run in reverse order, one registered by another handler's module code."""  # line: <module>
import atexit  # line: <module>
import sys  # line: <module>

log = []  # line: <module>


def flush_log(prefix, *, sep):  # line: <module>
    print(prefix + sep.join(log))  # line: flush_log


def record(event):  # line: <module>
    log.append(event)  # line: record


def unregistered():  # line: <module>
    print("this handler was unregistered and must not run")


atexit.register(flush_log, "log: ", sep=", ")  # line: <module>
atexit.register(record, "atexit-record")  # line: <module>
atexit.register(unregistered)  # line: <module>
atexit.unregister(unregistered)  # line: <module>
atexit.register(print, "last registered, first run")  # line: <module>
record("start")  # line: <module>
record("end")  # line: <module>
print("main done", file=sys.stderr)  # line: <module>
