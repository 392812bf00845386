"""Leaves a file behind (argv[1], default side-effect.txt) so a test can tell whether it ran."""  # line: <module>
import sys  # line: <module>

name = sys.argv[1] if len(sys.argv) > 1 else "side-effect.txt"  # line: <module>
with open(name, "w") as f:  # line: <module>
    f.write("ran\n")  # line: <module>
print("ran, wrote", name)  # line: <module>
