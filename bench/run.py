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

Shadow mode (`--shadow-compare`) has its own section: its extra cost over primary-only
recording on the call-heavy workload and on an import-heavy tree of 5,000 generated modules,
and the latency of `/metrics` scrapes while the traced program is CPU-bound.

Usage: python bench/run.py [--repeat N] [--quick] [--naming-only | --shadow-only | --no-shadow]
"""

import argparse
import http.client
import os
import re
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
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--naming-only", action="store_true",
                       help=f"run only the naming-engine workload ({NAMING_MODULES} modules)")
    group.add_argument("--shadow-only", action="store_true", help="only the shadow-mode benchmarks")
    group.add_argument("--no-shadow", action="store_true", help="skip the shadow-mode benchmarks")
    opts = ap.parse_args()
    repeat = 2 if opts.quick else opts.repeat
    scale = 0.5 if opts.quick else 1.0
    if opts.shadow_only:
        shadow_benchmarks(repeat, opts.quick)
        return

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
    if not opts.no_shadow:
        print()
        shadow_benchmarks(repeat, opts.quick)


# --- shadow mode ---------------------------------------------------------------------------

SHADOW_COST_TARGETS = {"call-heavy": 0.05, "import-heavy": 0.25}
SCRAPE_P99_TARGET = 0.020


def measure_pair(base_cmd, shadow_cmd, cwd, repeat):
    """Median wall times of two configurations, runs interleaved (A B A B ...) so that load
    changes on a shared machine hit both alike."""
    base, shadow = [], []
    for _ in range(repeat):
        base.append(run(base_cmd, cwd)[0])
        shadow.append(run(shadow_cmd, cwd)[0])
    return statistics.median(base), statistics.median(shadow)


CPU_BOUND = """
import os, sys, time

def work(n):
    s = 0
    for i in range(n):
        s += i * i
    return s

stop, deadline = sys.argv[1], time.monotonic() + 120
while not os.path.exists(stop) and time.monotonic() < deadline:
    work(20000)
"""


def percentile(sorted_values, q):
    """Nearest-rank percentile of an already sorted list."""
    k = max(0, min(len(sorted_values) - 1, int(round(q * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def scrape_latency(work, n_scrapes=200, pause=0.01):
    """Starts ct-record --shadow-compare --metrics-addr 127.0.0.1:0 on a CPU-bound program
    and times `n_scrapes` sequential GET /metrics (connect to last byte)."""
    script = os.path.join(work, "cpu_bound.py")
    with open(script, "w") as f:
        f.write(CPU_BOUND)
    stop = os.path.join(work, "cpu_bound.stop")
    if os.path.exists(stop):
        os.remove(stop)
    cmd = [CT_RECORD, "--shadow-compare", "--quiet", "--format", "binary", "--trace-dir",
           os.path.join(work, "trace-scrape"), "--metrics-addr", "127.0.0.1:0", script, stop]
    proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        m = re.search(r"serving metrics on http://([0-9.]+):(\d+)/metrics", line)
        if not m:
            raise SystemExit(f"ct-record did not serve metrics: {line}{proc.stderr.read()}")
        host, port = m.group(1), int(m.group(2))
        time.sleep(0.5)  # let the program get busy
        latencies = []
        for _ in range(n_scrapes):
            start = time.perf_counter()
            conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request("GET", "/metrics")
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            latencies.append(time.perf_counter() - start)
            if resp.status != 200 or b"ct_shadow_comparisons_total" not in body:
                raise SystemExit(f"bad scrape: {resp.status}")
            time.sleep(pause)
        busy = proc.poll() is None
    finally:
        open(stop, "w").close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    if not busy:
        raise SystemExit("the CPU-bound program ended before the scrapes did")
    latencies.sort()
    return percentile(latencies, 0.50), percentile(latencies, 0.99), latencies[-1]


def shadow_benchmarks(repeat, quick):
    work = tempfile.mkdtemp(prefix="ct-bench-shadow-")
    try:
        wl = os.path.join(HERE, "workloads")
        n_modules = 1000 if quick else 5000
        tree = os.path.join(work, "tree")
        generate_tree(tree, n_modules)
        trace = os.path.join(work, "trace")
        workloads = {
            "call-heavy": [os.path.join(wl, "call_heavy.py"), "22" if quick else "25"],
            "import-heavy": [os.path.join(wl, "import_heavy.py"), tree, str(n_modules)],
        }
        # Default primary (rollout.toml: legacy, globals as the shadow) and the flipped one.
        primaries = {"legacy": [], "globals": ["--module-name-from-globals"]}
        print(f"shadow mode: extra wall time of --shadow-compare over primary-only recording, "
              f"median of {repeat} interleaved runs")
        print(f"{'workload':32} {'primary':8} {'shadow':8} {'record':>9} {'+shadow':>9} {'extra':>8} {'target':>8}")
        for name, cmd in workloads.items():
            label = f"{name} ({n_modules} modules)" if name == "import-heavy" else name
            for primary, flags in primaries.items():
                base = [CT_RECORD, "--quiet", "--trace-dir", trace, *flags] + cmd
                shadow = [CT_RECORD, "--quiet", "--trace-dir", trace, "--shadow-compare", *flags] + cmd
                b, s = measure_pair(base, shadow, work, repeat)
                extra = s / b - 1
                target = SHADOW_COST_TARGETS[name]
                verdict = "ok" if extra <= target else "OVER"
                other = "globals" if primary == "legacy" else "legacy"
                print(f"{label:32} {primary:8} {other:8} {b:9.3f} {s:9.3f} {extra:+8.1%} "
                      f"{'<=' + format(target, '.0%'):>8} {verdict}")
        p50, p99, worst = scrape_latency(work, n_scrapes=100 if quick else 200)
        print()
        print(f"/metrics scrape latency, {100 if quick else 200} scrapes while the recorded program "
              f"is CPU-bound: p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms, max {worst * 1e3:.2f} ms "
              f"(target p99 < {SCRAPE_P99_TARGET * 1e3:.0f} ms: {'ok' if p99 < SCRAPE_P99_TARGET else 'OVER'})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
