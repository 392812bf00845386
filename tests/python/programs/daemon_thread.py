"""Exits while a daemon thread is still running: the interpreter abandons the thread."""  # line: <module>
import threading  # line: <module>
import time  # line: <module>

started = threading.Event()  # line: <module>


def heartbeat():  # line: <module>
    started.set()  # line: heartbeat
    while True:  # line: heartbeat
        time.sleep(0.005)  # line: heartbeat


threading.Thread(target=heartbeat, daemon=True, name="heartbeat").start()  # line: <module>
started.wait()  # line: <module>
time.sleep(0.2)  # line: <module>
print("main thread done; daemon alive:", threading.active_count() == 2)  # line: <module>
