"""The application's own `types` module (it shadows the standard one for scripts here)."""  # line: <module>


def describe():  # line: <module>
    return "local types module: Order, Customer"  # line: describe
