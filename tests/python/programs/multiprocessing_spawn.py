"""A multiprocessing pool (spawn): workers re-import this file and unpickle __main__.Job."""  # line: <module>
import multiprocessing  # line: <module>
import pickle  # line: <module>


class Job:  # line: <module>, Job
    def __init__(self, n):  # line: Job
        self.n = n  # line: Job.__init__


def run_job(job):  # line: <module>
    # Runs in the worker processes only.
    return sum(i * i for i in range(job.n))


def main():  # line: <module>
    jobs = [Job(n) for n in (3, 10, 100)]  # line: main, main.<locals>.<listcomp>
    print("pickled round trip:", pickle.loads(pickle.dumps(jobs[1])).n)  # line: main
    with multiprocessing.get_context("spawn").Pool(2) as pool:  # line: main
        print("results:", pool.map(run_job, jobs))  # line: main


if __name__ == "__main__":  # line: <module>
    main()  # line: <module>
