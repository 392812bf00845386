"""A script that does not compile: python reports the SyntaxError and exits 1."""
open("side-effect.txt", "w").write("ran")

def broken(:
    return 1
