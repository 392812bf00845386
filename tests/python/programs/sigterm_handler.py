"""Installs its own SIGTERM handler, signals itself, and carries on after the handler ran."""  # line: <module>
import os  # line: <module>
import signal  # line: <module>

received = []  # line: <module>


def on_term(signum, frame):  # line: <module>
    received.append(signal.Signals(signum).name)  # line: on_term
    print("handler: got", received[-1], flush=True)  # line: on_term


def main():  # line: <module>
    signal.signal(signal.SIGTERM, on_term)  # line: main
    for _ in range(2):  # line: main
        os.kill(os.getpid(), signal.SIGTERM)  # line: main
    print("handler still installed:", signal.getsignal(signal.SIGTERM) is on_term)  # line: main
    print("received", received)  # line: main
    return 0  # line: main


raise SystemExit(main())  # line: <module>
