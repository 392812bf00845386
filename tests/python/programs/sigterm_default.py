"""Sends itself SIGTERM with the default disposition: the process dies by the signal."""  # line: <module>
import os  # line: <module>
import signal  # line: <module>
import sys  # line: <module>
import time  # line: <module>


def work(n):  # line: <module>
    return sum(range(n))  # line: work


def terminate():  # line: <module>
    print("about to receive SIGTERM", flush=True)  # line: terminate
    os.kill(os.getpid(), signal.SIGTERM)  # line: terminate
    time.sleep(5)  # maybe: terminate
    print("survived SIGTERM", flush=True)


print("work", work(100))  # line: <module>
sys.stdout.flush()  # line: <module>
terminate()  # line: <module>
print("not reached")
