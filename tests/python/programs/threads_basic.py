"""Worker threads summing slices of a list under a lock; results joined in order."""  # line: <module>
import threading  # line: <module>

lock = threading.Lock()  # line: <module>
totals = {}  # line: <module>


def partial_sum(name, numbers):  # line: <module>
    subtotal = 0  # line: partial_sum
    for x in numbers:  # line: partial_sum
        subtotal += square(x)  # line: partial_sum
    with lock:  # line: partial_sum
        totals[name] = subtotal  # line: partial_sum


def square(x):  # line: <module>
    return x * x  # line: square


class Counter(threading.Thread):  # line: <module>, Counter
    def __init__(self, limit):  # line: Counter
        super().__init__(name=f"counter-{limit}")  # line: Counter.__init__
        self.limit = limit  # line: Counter.__init__
        self.count = 0  # line: Counter.__init__

    def run(self):  # line: Counter
        while self.count < self.limit:  # line: Counter.run
            self.count += 1  # line: Counter.run


def main():  # line: <module>
    data = list(range(1, 31))  # line: main
    workers = []  # line: main
    for i in range(3):  # line: main
        t = threading.Thread(target=partial_sum, args=(f"w{i}", data[i::3]))  # line: main
        workers.append(t)  # line: main
        t.start()  # line: main
    counter = Counter(25)  # line: main
    counter.start()  # line: main
    for t in workers:  # line: main
        t.join()  # line: main
    counter.join()  # line: main
    for name in sorted(totals):  # line: main
        print(name, totals[name])  # line: main
    print("total", sum(totals.values()), "expected", sum(x * x for x in data))  # line: main, main.<locals>.<genexpr>
    print("counter", counter.name, counter.count)  # line: main
    print("threads alive at end:", threading.active_count())  # line: main


main()  # line: <module>
