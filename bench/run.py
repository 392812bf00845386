"""Whole-process benchmarks: untraced python vs a no-op C trace hook vs ct-record.

Every configuration runs as a separate process, several times, in the same invocation, and
the report gives ratios against the baselines measured in that same run (times on a shared
machine drift; ratios measured side by side do not drift much). Peak memory is the
child's max RSS (wait4), and the "flat memory" check runs the call-heavy workload at two
sizes: the recorder's peak RSS must not grow with the length of the run.

The naming-engine workload imports a generated tree of 5,000 modules untraced and under
each module-naming engine (--module-name-from-globals / --no-module-name-from-globals) and
reports what the legacy engine costs on top of the globals engine, relative to the untraced
import time (target: at most 10 %).

Usage: python bench/run.py [--repeat N] [--quick] [--naming-only]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable
CT_RECORD = os.path.join(os.path.dirname(PY), "ct-record")


def run(cmd, cwd):
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n{err}")
    return elapsed, usage.ru_maxrss / 1024.0  # MiB


def measure(cmd, cwd, repeat):
    times, rss = [], []
    for _ in range(repeat):
        t, m = run(cmd, cwd)
        times.append(t)
        rss.append(m)
    return statistics.median(times), max(rss)


def generate_tree(root, n):
    for i in range(n):
        pkg = os.path.join(root, f"gen_p{i // 50}")
        if i % 50 == 0:
            os.makedirs(pkg, exist_ok=True)
            with open(os.path.join(pkg, "__init__.py"), "w") as f:
                f.write("")
        with open(os.path.join(pkg, f"m{i}.py"), "w") as f:
            f.write(f"def f{i}(x):\n    return x + {i}\n\n\ndef g{i}():\n    return f{i}(1)\n\n\nVALUE = g{i}()\n")


def configs(workload_cmd, trace_dir):
    return {
        "untraced": [PY] + workload_cmd,
        "noop-hook": [PY, os.path.join(HERE, "noop_hook_runner.py")] + workload_cmd,
        "ct-record": [CT_RECORD, "--trace-dir", trace_dir] + workload_cmd,
    }


NAMING_MODULES = 5000
NAMING_TARGET = 0.10


def naming_engine_benchmark(work, repeat):
    """Whole-process import of NAMING_MODULES generated modules: untraced python, then
    ct-record with each naming engine. The legacy engine's cost is the extra time it takes
    over the globals engine, as a share of the untraced import time (the untraced run minus
    interpreter start-up)."""
    tree = os.path.join(work, "naming-tree")
    generate_tree(tree, NAMING_MODULES)
    workload = [os.path.join(HERE, "workloads", "import_heavy.py"), tree, str(NAMING_MODULES)]
    trace_dir = os.path.join(work, "naming-trace")
    # Same options for both engines; the shadow engine stays off whatever the environment says.
    record = [CT_RECORD, "--quiet", "--no-shadow-compare", "--trace-dir", trace_dir]
    cmds = {
        "python startup": [PY, "-c", "pass"],
        "untraced": [PY] + workload,
        "ct-record globals": record + ["--module-name-from-globals"] + workload,
        "ct-record legacy": record + ["--no-module-name-from-globals"] + workload,
    }
    # One untimed run first: it writes the tree's __pycache__, so every timed run of every
    # configuration reads the same bytecode.
    run(cmds["untraced"], work)
    times = {}
    for name, cmd in cmds.items():
        times[name] = measure(cmd, work, repeat)[0]
    import_time = times["untraced"] - times["python startup"]
    cost = (times["ct-record legacy"] - times["ct-record globals"]) / import_time
    print()
    print(f"naming engines, whole process importing {NAMING_MODULES} modules "
          f"(median of {repeat} runs):")
    for name, t in times.items():
        print(f"  {name:20} {t:8.3f} s")
    print(f"  untraced import time {import_time:8.3f} s (untraced - python startup)")
    verdict = "ok" if cost <= NAMING_TARGET else "OVER TARGET"
    print(f"legacy engine cost = (legacy - globals) / untraced import time = "
          f"({times['ct-record legacy']:.3f} - {times['ct-record globals']:.3f}) / {import_time:.3f} "
          f"= {cost:.1%} (target <= {NAMING_TARGET:.0%}: {verdict})")
    return cost


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="smaller workloads, 2 repeats")
    ap.add_argument("--naming-only", action="store_true",
                    help=f"run only the naming-engine workload ({NAMING_MODULES} modules)")
    opts = ap.parse_args()
    repeat = 2 if opts.quick else opts.repeat
    scale = 0.5 if opts.quick else 1.0

    work = tempfile.mkdtemp(prefix="ct-bench-")
    try:
        if opts.naming_only:
            naming_engine_benchmark(work, repeat)
            return
        wl = os.path.join(HERE, "workloads")
        tree = os.path.join(work, "tree")
        n_modules = int(2000 * scale)
        generate_tree(tree, n_modules)
        workloads = {
            "call-heavy": [os.path.join(wl, "call_heavy.py"), str(25 if scale == 1.0 else 22)],
            "line-heavy": [os.path.join(wl, "line_heavy.py"), str(int(300_000 * scale))],
            f"import-heavy ({n_modules} modules)": [os.path.join(wl, "import_heavy.py"), tree, str(n_modules)],
        }
        print(f"ct-record whole-process benchmark: median of {repeat} runs, python {sys.version.split()[0]}")
        print(f"{'workload':30} {'untraced':>10} {'noop-hook':>10} {'ct-record':>10} {'rec/floor':>10} {'rec/untr':>9} {'peak MiB':>9}")
        results = {}
        for name, cmd in workloads.items():
            row = {}
            for cfg, full in configs(cmd, os.path.join(work, "trace")).items():
                row[cfg] = measure(full, work, repeat)
            results[name] = row
            u, f, r = row["untraced"][0], row["noop-hook"][0], row["ct-record"][0]
            print(f"{name:30} {u:10.3f} {f:10.3f} {r:10.3f} {r / f:10.2f} {r / u:9.2f} {row['ct-record'][1]:9.1f}")

        # Flat memory: same workload, 4x longer.
        small = [os.path.join(wl, "line_heavy.py"), str(int(200_000 * scale))]
        large = [os.path.join(wl, "line_heavy.py"), str(int(800_000 * scale))]
        _, rss_small = measure(configs(small, os.path.join(work, "trace"))["ct-record"], work, 1)
        _, rss_large = measure(configs(large, os.path.join(work, "trace"))["ct-record"], work, 1)
        size_large = os.path.getsize(os.path.join(work, "trace", "trace.json")) / 2**20
        print()
        print(f"peak memory, line-heavy run 4x longer: {rss_small:.1f} MiB -> {rss_large:.1f} MiB "
              f"(trace.json {size_large:.0f} MiB); growth {rss_large - rss_small:+.1f} MiB")
        call = results["call-heavy"]
        print(f"target: call-heavy ct-record <= 1.5x the no-op hook: "
              f"{call['ct-record'][0] / call['noop-hook'][0]:.2f}x")
        naming_engine_benchmark(work, repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
