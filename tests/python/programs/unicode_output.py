"""Non-ASCII text and emoji on stdout and stderr, raw bytes, and arguments that are not valid UTF-8."""  # line: <module>
import os  # line: <module>
import sys  # line: <module>


def show_args(args):  # line: <module>
    for arg in args:  # line: show_args
        raw = os.fsencode(arg)  # line: show_args
        print(ascii(arg), raw.hex(), len(arg))  # line: show_args


print("Grüße, 世界! ☃ — naïve café")  # line: <module>
print("emoji: 🐍🚀✨ flag: 🇯🇵 zwj: 👩‍💻")  # line: <module>
print("stderr: ¿qué tal? Ω≈ç√∫", file=sys.stderr)  # line: <module>
print("encoding:", sys.stdout.encoding, sys.getfilesystemencoding(), sys.stdout.errors)  # line: <module>
sys.stdout.flush()  # line: <module>
sys.stdout.buffer.write(b"raw bytes: \xff\xfe\x00\x01\n")  # line: <module>
show_args(sys.argv[1:])  # line: <module>
