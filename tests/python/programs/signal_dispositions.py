"""Prints the disposition of each catchable signal as the program finds it at start."""  # line: <module>
import signal  # line: <module>

for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE, signal.SIGTERM, signal.SIGUSR1, signal.SIGCHLD):  # line: <module>
    print(sig.name, signal.getsignal(sig))  # line: <module>
