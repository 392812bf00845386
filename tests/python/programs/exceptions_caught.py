"""Exceptions raised and handled: custom types, finally blocks, re-raise, else clauses."""  # line: <module>


class ParseError(Exception):  # line: <module>, ParseError
    def __init__(self, text, pos):  # line: ParseError
        super().__init__(f"bad character {text[pos]!r} at {pos}")  # line: ParseError.__init__
        self.pos = pos  # line: ParseError.__init__


def parse_int(text):  # line: <module>
    for pos, ch in enumerate(text):  # line: parse_int
        if not ch.isdigit():  # line: parse_int
            raise ParseError(text, pos)  # line: parse_int
    return int(text)  # line: parse_int


def safe_div(a, b):  # line: <module>
    try:  # line: safe_div
        result = a / b  # line: safe_div
    except ZeroDivisionError:  # line: safe_div
        return None  # line: safe_div
    else:  # no line event of its own
        return result  # line: safe_div
    finally:  # no line event of its own
        print(f"divided {a} by {b}")  # line: safe_div


def reraise():  # line: <module>
    try:  # line: reraise
        {}["missing"]  # line: reraise
    except KeyError:  # line: reraise
        print("cleaning up, then re-raising")  # line: reraise
        raise  # line: reraise


def main():  # line: <module>
    for text in ("123", "12x4"):  # line: main
        try:  # line: main
            print("parsed", parse_int(text))  # line: main
        except ParseError as exc:  # line: main
            print("error:", exc, "pos", exc.pos)  # line: main
    print(safe_div(1, 4), safe_div(1, 0))  # line: main
    try:  # line: main
        reraise()  # line: main
    except KeyError as exc:  # line: main
        print("caught again", repr(exc))  # line: main


main()  # line: <module>
