"""SIGINT to itself, KeyboardInterrupt not caught: python dies by SIGINT after printing it."""  # line: <module>
import atexit  # line: <module>
import os  # line: <module>
import signal  # line: <module>
import time  # line: <module>


def cleanup():  # line: <module>
    print("atexit: cleanup ran", flush=True)  # line: cleanup


def wait_for_interrupt():  # line: <module>
    os.kill(os.getpid(), signal.SIGINT)  # line: wait_for_interrupt
    time.sleep(5)  # maybe: wait_for_interrupt
    print("not interrupted")


atexit.register(cleanup)  # line: <module>
print("sending SIGINT", flush=True)  # line: <module>
wait_for_interrupt()  # line: <module>
