"""Reads all of stdin (piped), counts words per line, and echoes the longest line."""  # line: <module>
import sys  # line: <module>


def words(line):  # line: <module>
    return len(line.split())  # line: words


def main():  # line: <module>
    first = sys.stdin.readline()  # line: main
    rest = sys.stdin.read()  # line: main
    lines = [first.rstrip("\n")] + rest.splitlines()  # line: main
    for i, line in enumerate(lines, 1):  # line: main
        print(f"{i}: {words(line)} words")  # line: main
    print("longest:", max(lines, key=len))  # line: main
    print("stdin at EOF:", sys.stdin.read() == "")  # line: main


main()  # line: <module>
