"""sys.exit() in a thread ends only that thread; an uncaught error in a thread is reported."""  # line: <module>
import sys  # line: <module>
import threading  # line: <module>


def quitter():  # line: <module>
    print("quitter: calling sys.exit(9)")  # line: quitter
    sys.exit(9)  # line: quitter
    print("quitter: not reached")


def crasher():  # line: <module>
    print("crasher: dividing by zero")  # line: crasher
    sys.stdout.flush()  # line: crasher
    return 1 / 0  # line: crasher


for target in (quitter, crasher):  # line: <module>
    t = threading.Thread(target=target)  # line: <module>
    t.start()  # line: <module>
    t.join()  # line: <module>
print("main thread still running; threads alive:", threading.active_count())  # line: <module>
