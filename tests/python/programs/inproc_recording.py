"""In-process API: `with ct_recorder.recording(dir)` around part of the program (argv[1] = dir)."""
import sys
import threading

import ct_recorder


def before_block(x):
    return x + 1


def inside_block(x):
    return helper(x) * 2


def helper(x):
    return x - 3


def thread_worker(results):
    results.append(inside_block(10))


def after_block(x):
    return x * 100


def main(trace_dir):
    print("stop() when not recording:", ct_recorder.stop())
    print("recording before:", ct_recorder.is_recording())
    print("before", before_block(1))
    results = []
    with ct_recorder.recording(trace_dir):
        print("recording inside:", ct_recorder.is_recording())
        print("inside", inside_block(5))
        worker = threading.Thread(target=thread_worker, args=(results,), name="block-worker")
        worker.start()
        worker.join()
    print("recording after:", ct_recorder.is_recording())
    print("thread result", results)
    print("after", after_block(2))
    print("stop() after the block:", ct_recorder.stop())


main(sys.argv[1])
