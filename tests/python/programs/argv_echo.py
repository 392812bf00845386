"""Prints its arguments: options after the script belong to the script."""  # line: <module>
import os  # line: <module>
import sys  # line: <module>

print("argv", sys.argv)  # line: <module>
print("cwd entries", sorted(os.listdir(".")))  # line: <module>
