"""Chained exceptions: explicit cause, implicit context, suppressed context, uncaught at the end."""  # line: <module>


class ConfigError(Exception):  # line: <module>, ConfigError
    pass  # line: ConfigError


def read_setting(settings, key):  # line: <module>
    try:  # line: read_setting
        return settings[key]  # line: read_setting
    except KeyError as exc:  # line: read_setting
        raise ConfigError(f"missing setting {key}") from exc  # line: read_setting


def convert(value):  # line: <module>
    try:  # line: convert
        return int(value)  # line: convert
    except ValueError:  # line: convert
        raise ConfigError(f"not a number: {value}")  # line: convert


def quiet(value):  # line: <module>
    try:  # line: quiet
        return int(value)  # line: quiet
    except ValueError:  # line: quiet
        raise ConfigError("quiet failure") from None  # line: quiet


def main():  # line: <module>
    for func, arg in ((quiet, "x"), (lambda v: read_setting({}, v), "port")):  # line: main, main.<locals>.<lambda>
        try:  # line: main
            func(arg)  # line: main
        except ConfigError as exc:  # line: main
            print(type(exc).__name__, exc, "cause:", repr(exc.__cause__), "suppress:", exc.__suppress_context__)  # line: main
    convert("eleven")  # line: main


main()  # line: <module>
