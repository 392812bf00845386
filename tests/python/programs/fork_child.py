"""Forks a worker process that does real work and reports through its exit status."""  # line: <module>
import os  # line: <module>
import sys  # line: <module>


def checksum(n):  # line: <module>
    total = 0  # line: checksum
    for i in range(n):  # line: checksum
        total = (total * 31 + i) % 65521  # line: checksum
    return total  # line: checksum


def main():  # line: <module>
    sys.stdout.flush()  # line: main
    pid = os.fork()  # line: main
    if pid == 0:  # line: main
        # Only the child runs this block: it is not part of the parent's execution.
        value = checksum(100000)
        print("child computed", value, flush=True)
        os._exit(value % 100)
    _, status = os.waitpid(pid, 0)  # line: main
    print("child exited with", os.waitstatus_to_exitcode(status))  # line: main
    print("parent computed", checksum(1000))  # line: main


main()  # line: <module>
