"""Prints a line, waits for a go-ahead on stdin, then many lines (`| head -1` broke the pipe)."""  # line: <module>
import sys  # line: <module>


def emit(n):  # line: <module>
    for i in range(1, n):  # line: emit
        print("line", i)  # line: emit


print("line 0", flush=True)  # line: <module>
sys.stdin.readline()  # line: <module>
emit(int(sys.argv[1]))  # line: <module>
