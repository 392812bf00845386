"""Works in a directory of its own: creates it, changes into it, writes its output there."""  # line: <module>
import os  # line: <module>


def write_report(lines):  # line: <module>
    with open("report.txt", "w") as f:  # line: write_report
        for line in lines:  # line: write_report
            f.write(line + "\n")  # line: write_report
    return len(lines)  # line: write_report


os.makedirs("output", exist_ok=True)  # line: <module>
os.chdir("output")  # line: <module>
print("wrote", write_report(["alpha", "beta"]), "lines in", os.path.basename(os.getcwd()))  # line: <module>
