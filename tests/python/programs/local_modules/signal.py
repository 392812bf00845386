"""Signal-processing helpers of the application (not the standard `signal` module)."""  # line: <module>


def describe():  # line: <module>
    return "local signal module: moving average " + str(moving_average([1, 2, 3, 4], 2))  # line: describe


def moving_average(xs, k):  # line: <module>
    return [sum(xs[i:i + k]) / k for i in range(len(xs) - k + 1)]  # line: moving_average, moving_average.<locals>.<listcomp>
