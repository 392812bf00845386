"""A long-running loop (argv[1] iterations): a big trace that must stay valid."""  # line: <module>
import sys  # line: <module>


def step(state, i):  # line: <module>
    state = (state * 31 + i) % 1000003  # line: step
    return state  # line: step


def run(n):  # line: <module>
    state = 7  # line: run
    for i in range(n):  # line: run
        state = step(state, i)  # line: run
    return state  # line: run


print("final state", run(int(sys.argv[1])))  # line: <module>
