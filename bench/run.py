"""Whole-process benchmarks: untraced python vs a no-op C-level hook (the floor) vs
coverage.py vs ct-record (JSON, binary and compact). The floor is a no-op `PyEval_SetTrace` hook on
CPython 3.11 and a no-op C-level `sys.monitoring` callback for every event the recorder uses
on 3.12+ (bench/noop_hook_runner.py).

Recording workloads are of a user's size (--quick shrinks them): fib(32) with a helper call
per step (about 10.5 M calls with arguments and return values), a 13 M-iteration loop (more
than 50 M line events) and an import of 2,000 generated modules. For each: wall time,
ratios to the no-op hook (the floor), peak RSS and, for ct-record, events and bytes per
event; then the streaming readers' events/s on the call-heavy traces, and callgrind
instruction counts (all threads) at a reduced size.

Every configuration runs as a separate process, several times, in the same invocation, and
the report gives ratios against the baselines measured in that same run (times on a shared
machine drift; ratios measured side by side do not drift much). Peak memory is the
child's max RSS (wait4), and the "flat memory" check runs the call-heavy workload at two
sizes: the recorder's peak RSS must not grow with the length of the run.

The naming-engine workload imports a generated tree of 5,000 modules untraced and under
each module-naming engine (--module-name-from-globals / --no-module-name-from-globals) and
reports what the legacy engine costs on top of the globals engine, relative to the untraced
import time (target: at most 10 % on CPython 3.12+), from wall times (interleaved runs, load
average printed) and from callgrind instruction counts; then what a stopped legacy-engine
recording still costs each module-dict write (bench/workloads/after_stop.py, callgrind).
--no-callgrind keeps the wall times only.

Shadow mode (`--shadow-compare`) has its own section: its extra cost over primary-only
recording on the call-heavy workload and on an import-heavy tree of 5,000 generated modules,
and the latency of `/metrics` scrapes while the traced program is CPU-bound.

Evidence-only mode (`--shadow-compare --evidence-only`, no trace) has its own section too:
its wall time against untraced python and against the cheapest hook it could be built on (a
no-op C profile function on 3.11, a C-level PY_START callback returning DISABLE on 3.12+;
bench/floor_runner.py), on the call-heavy workload and on importing every module of real
packages (bench/requirements.txt: sympy, mpmath, networkx; about 2,200 modules), plus
callgrind instruction counts at a reduced size. It runs on the interpreter running this
script: `make bench-evidence` runs it per interpreter (EVIDENCE_BENCH_PYTHONS="3.11 3.12 3.13").

Usage: python bench/run.py [--repeat N] [--quick] [--no-callgrind]
       [--naming-only | --shadow-only | --evidence-only | --no-shadow | --recording-only |
        --instructions-only]
"""

import argparse
import compileall
import importlib.util
import json
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


FLOOR_KIND = ("no-op C sys.monitoring callback on every event" if sys.version_info >= (3, 12)
              else "no-op C trace hook (PyEval_SetTrace)")


def configs(workload_cmd, trace_dir, data_dir):
    """The configurations every recording workload runs under, in the same invocation."""
    return {
        "untraced": [PY] + workload_cmd,
        "noop-hook": [PY, os.path.join(HERE, "noop_hook_runner.py")] + workload_cmd,
        "coverage": [PY, "-m", "coverage", "run", f"--data-file={os.path.join(data_dir, 'cov')}"] + workload_cmd,
        "ct json": [CT_RECORD, "--quiet", "--format", "json", "--trace-dir", trace_dir] + workload_cmd,
        "ct binary": [CT_RECORD, "--quiet", "--format", "binary", "--trace-dir", trace_dir] + workload_cmd,
        "ct compact": [CT_RECORD, "--quiet", "--format", "compact", "--trace-dir", trace_dir] + workload_cmd,
    }


def trace_size(trace_dir):
    """(events, bytes of the events file) of the last ct-record run into `trace_dir`."""
    with open(os.path.join(trace_dir, "trace_metadata.json")) as f:
        meta = json.load(f)
    return meta["summary"]["events"], os.path.getsize(meta["summary"]["events_file"])


def recording_benchmark(work, repeat, scale, tree, n_modules):
    """Wall time, peak RSS and bytes per event of every configuration on workloads of a
    user's size: >= 10 M calls with arguments and return values, >= 50 M line events, an
    import-heavy tree."""
    wl = os.path.join(HERE, "workloads")
    fib_n = 32 if scale == 1.0 else 25
    workloads = {
        f"call-heavy fib({fib_n})": [os.path.join(wl, "call_heavy.py"), str(fib_n)],
        "line-heavy": [os.path.join(wl, "line_heavy.py"), str(13_000_000 if scale == 1.0 else 300_000)],
        f"import-heavy ({n_modules})": [os.path.join(wl, "import_heavy.py"), tree, str(n_modules)],
    }
    need = 8 * 2**30 if scale == 1.0 else 2**30
    free = shutil.disk_usage(work).free
    if free < need:
        raise SystemExit(f"the recording benchmark writes up to {need / 2**30:.0f} GiB of traces "
                         f"(JSON at this size is 3.6 GiB per run); {work} has {free / 2**30:.1f} GiB free")
    print(f"recording: median wall time of {repeat} runs (runs of one workload interleaved), "
          f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}; floor = {FLOOR_KIND}")
    cfg_names = list(configs([], "", "").keys())
    print(f"{'workload':26} " + " ".join(f"{c:>10}" for c in cfg_names))
    results = {}
    for w, (name, cmd) in enumerate(workloads.items()):
        # Kept per workload: the reader benchmark reads them afterwards.
        trace = {c: os.path.join(work, f"trace-{w}-{c.split()[-1]}") for c in cfg_names}
        cmds = {c: configs(cmd, trace[c], work)[c] for c in cfg_names}
        samples = {c: [] for c in cfg_names}
        rss = {c: 0.0 for c in cfg_names}
        for _ in range(repeat):
            for c in cfg_names:
                t, m = run(cmds[c], work)
                samples[c].append(t)
                rss[c] = max(rss[c], m)
        wall = {c: statistics.median(v) for c, v in samples.items()}
        sizes = {c: trace_size(trace[c]) for c in cfg_names if c.startswith("ct ")}
        results[name] = (wall, rss, sizes, trace)
        if w > 0:  # only the call-heavy traces are read afterwards
            for t in trace.values():
                shutil.rmtree(t, ignore_errors=True)
        floor = wall["noop-hook"]
        print(f"{name:26} " + " ".join(f"{wall[c]:9.2f}s" for c in cfg_names))
        print(f"{'  / floor':26} " + " ".join(f"{wall[c] / floor:9.2f}x" for c in cfg_names))
        print(f"{'  peak RSS MiB':26} " + " ".join(f"{rss[c]:10.1f}" for c in cfg_names))
        for c, (events, size) in sizes.items():
            print(f"  {c}: {events:,} events, {size / 2**20:,.1f} MiB, {size / max(events, 1):.2f} bytes/event")
    return results


def callgrind_instructions(cmd, cwd, out):
    """Instructions executed by every thread of `cmd` (valgrind --tool=callgrind)."""
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--trace-children=no"] + cmd,
                   cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    total = 0
    with open(out) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
    os.remove(out)
    return total


def instructions_benchmark(work, tree):
    """Callgrind instruction counts (all threads) at reduced sizes: the machine's load does
    not change them. Each workload runs at two sizes, and the ratio to read is the slope's:
    (count at the larger size - count at the smaller) against the floor's, which is what a
    run of a user's size converges to. A single small run's totals hide the per-event cost
    behind start-up work that differs between configurations (the floor's runner traces its
    own start-up; the recorder has its launcher)."""
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed for the instruction counts (apt-get install valgrind)")
    wl = os.path.join(HERE, "workloads")
    workloads = {
        "call-heavy fib(20 -> 23)": ([os.path.join(wl, "call_heavy.py"), "20"], [os.path.join(wl, "call_heavy.py"), "23"]),
        "line-heavy 100k -> 300k": ([os.path.join(wl, "line_heavy.py"), "100000"], [os.path.join(wl, "line_heavy.py"), "300000"]),
        "import-heavy 200 -> 600": ([os.path.join(wl, "import_heavy.py"), tree, "200"], [os.path.join(wl, "import_heavy.py"), tree, "600"]),
    }
    cfg_names = list(configs([], "", "").keys())
    print()
    print("instructions (callgrind, all threads, reduced sizes): the larger size's counts, and "
          "the slope between the two sizes against the no-op hook's (what a long run tends to); "
          "the recorder's extra over the floor per recorded event, from the slopes")
    print(f"{'workload':26} " + " ".join(f"{c:>12}" for c in cfg_names))
    trace = os.path.join(work, "trace-cg")
    for name, (small_cmd, large_cmd) in workloads.items():
        counts, events = {}, {}
        for c in cfg_names:
            for size, cmd in (("small", small_cmd), ("large", large_cmd)):
                counts[c, size] = callgrind_instructions(configs(cmd, trace, work)[c], work, os.path.join(work, "cg.out"))
                if c.startswith("ct "):
                    events[c, size] = trace_size(trace)[0]
        slope = {c: counts[c, "large"] - counts[c, "small"] for c in cfg_names}
        floor = slope["noop-hook"]
        print(f"{name:26} " + " ".join(f"{counts[c, 'large'] / 1e6:11.1f}M" for c in cfg_names))
        print(f"{'  / floor, total':26} " + " ".join(
            f"{counts[c, 'large'] / counts['noop-hook', 'large']:11.2f}x" for c in cfg_names))
        print(f"{'  / floor, slope':26} " + " ".join(f"{slope[c] / floor:11.2f}x" for c in cfg_names))
        print("  extra over the floor per event (slope): " + ", ".join(
            f"{c} {(slope[c] - floor) / max(events[c, 'large'] - events[c, 'small'], 1):.0f} instr"
            for c in cfg_names if c.startswith("ct ")))


READ_SCRIPT = """
import sys, time, resource
from ct_recorder import _native, trace_reader
kind, path = sys.argv[1], sys.argv[2]
t = time.perf_counter()
if kind == "summary":
    n = _native.scan_trace(path)["events"]
elif kind == "TraceEvents":
    n = sum(1 for _ in trace_reader.TraceEvents(path))
else:  # only Function and Call events become Python objects; the rate is over the whole file
    sum(1 for _ in trace_reader.TraceEvents(path, kinds={"Function", "Call"}))
dt = time.perf_counter() - t
if kind == "TraceEvents(Call)":
    n = _native.scan_trace(path)["events"]
print(n, dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def reader_benchmark(work, trace_dirs):
    """Events per second and peak RSS of the streaming readers on the traces just written."""
    print()
    print("readers (streaming): events/s and peak RSS")
    for label, trace in trace_dirs.items():
        for kind in ("summary", "TraceEvents", "TraceEvents(Call)"):
            out = subprocess.run([PY, "-c", READ_SCRIPT, kind, trace], cwd=work, check=True,
                                 capture_output=True, text=True).stdout.split()
            n, dt, rss = int(out[0]), float(out[1]), float(out[2])
            print(f"  {label:28} {kind:12} {n:>12,} events {dt:7.2f} s {n / dt / 1e6:6.2f} M events/s "
                  f"peak {rss:6.1f} MiB")


NAMING_MODULES = 5000
NAMING_TARGET = 0.10


def naming_engine_benchmark(work, repeat, callgrind=True):
    """Whole-process import of NAMING_MODULES generated modules: untraced python, then
    ct-record with each naming engine. The legacy engine's cost is the extra time it takes
    over the globals engine, as a share of the untraced import time (the untraced run minus
    interpreter start-up). The configurations run interleaved (one run of each, then the
    next round), so load changes on a shared machine hit them alike; the load average is
    printed beside the times. Then the same four commands once each under callgrind (all
    threads), where the same ratio is computed from instruction counts, which the load does
    not change."""
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
    # Every timed run of every configuration reads the same bytecode, as an installed
    # package's import does (compileall writes it even with PYTHONDONTWRITEBYTECODE set, where
    # an untimed run would not); one untimed run then warms the page cache.
    compile_tree(tree)
    run(cmds["untraced"], work)
    samples = {name: [] for name in cmds}
    load_before = os.getloadavg()
    for _ in range(repeat):
        for name, cmd in cmds.items():
            samples[name].append(run(cmd, work)[0])
    load_after = os.getloadavg()
    times = {name: statistics.median(ts) for name, ts in samples.items()}
    import_time = times["untraced"] - times["python startup"]
    cost = (times["ct-record legacy"] - times["ct-record globals"]) / import_time
    print()
    print(f"naming engines, whole process importing {NAMING_MODULES} modules, CPython "
          f"{sys.version_info[0]}.{sys.version_info[1]} (median of {repeat} interleaved runs; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after):")
    for name, t in times.items():
        print(f"  {name:20} {t:8.3f} s")
    print(f"  untraced import time {import_time:8.3f} s (untraced - python startup)")
    verdict = "ok" if cost <= NAMING_TARGET else "OVER TARGET"
    print(f"legacy engine cost = (legacy - globals) / untraced import time = "
          f"({times['ct-record legacy']:.3f} - {times['ct-record globals']:.3f}) / {import_time:.3f} "
          f"= {cost:.1%} (target <= {NAMING_TARGET:.0%}: {verdict})")
    if callgrind and shutil.which("valgrind") is not None:
        counts = {name: callgrind_instructions(cmd, work, os.path.join(work, "cg-naming.out"))
                  for name, cmd in cmds.items()}
        import_instr = counts["untraced"] - counts["python startup"]
        instr_cost = (counts["ct-record legacy"] - counts["ct-record globals"]) / import_instr
        print("instructions (callgrind, all threads, one run each):")
        for name, n in counts.items():
            print(f"  {name:20} {n / 1e6:10.1f} M")
        print(f"legacy engine cost in instructions = ({counts['ct-record legacy'] / 1e6:.1f} M - "
              f"{counts['ct-record globals'] / 1e6:.1f} M) / {import_instr / 1e6:.1f} M = {instr_cost:.1%} "
              f"({(counts['ct-record legacy'] - counts['ct-record globals']) / NAMING_MODULES:,.0f} "
              f"per module)")
        after_stop_benchmark(work, tree)
    elif callgrind:
        print("(no valgrind: no instruction counts)")
    return cost


AFTER_STOP_MODULES = 2000
AFTER_STOP_ROUNDS = 20


def after_stop_benchmark(work, tree):
    """What a stopped legacy-engine recording still costs the program: instructions per
    write to a module dict after `ct_recorder.stop()`, against the same program never
    recorded (bench/workloads/after_stop.py, callgrind, the difference between
    AFTER_STOP_ROUNDS rounds of writes and none)."""
    script = os.path.join(HERE, "workloads", "after_stop.py")
    per_write = {}
    for mode in ("untraced", "record"):
        counts = [callgrind_instructions([PY, script, tree, str(AFTER_STOP_MODULES), mode, str(r)],
                                         work, os.path.join(work, "cg-after.out"))
                  for r in (0, AFTER_STOP_ROUNDS)]
        per_write[mode] = (counts[1] - counts[0]) / (AFTER_STOP_ROUNDS * AFTER_STOP_MODULES)
    print(f"after stop: instructions per module-dict write, {AFTER_STOP_MODULES} modules imported "
          f"(legacy engine recording, then stopped) vs never recorded: "
          f"{per_write['record']:.1f} vs {per_write['untraced']:.1f} "
          f"(+{per_write['record'] - per_write['untraced']:.1f})")


def compile_tree(tree):
    """Byte-compile a generated module tree, so that its imports read bytecode whatever
    PYTHONDONTWRITEBYTECODE says (with it set, every run would compile every module from
    source: for 5,000 modules about 1.6 G instructions, half of the untraced import)."""
    if not compileall.compile_dir(tree, quiet=1):
        raise SystemExit(f"could not byte-compile the generated modules in {tree}")


def compile_recorder_package():
    """Byte-compile the recorder's own Python modules, as `pip install` of a wheel does.
    `maturin develop` installs them in place without bytecode, and with
    PYTHONDONTWRITEBYTECODE set (as on these machines) every benchmarked process would
    compile them from source again: about 20 M instructions (≈ 8 ms on CPython 3.12) that a
    user's installed recorder, and the floor runners that import the extension, never pay."""
    spec = importlib.util.find_spec("ct_recorder")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("ct_recorder is not installed in this interpreter (make bench installs it)")
    for where in spec.submodule_search_locations:
        if not compileall.compile_dir(where, quiet=1, maxlevels=0):
            raise SystemExit(f"could not byte-compile the recorder's modules in {where}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="smaller workloads, 2 repeats")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--naming-only", action="store_true",
                       help=f"run only the naming-engine workload ({NAMING_MODULES} modules)")
    group.add_argument("--shadow-only", action="store_true", help="only the shadow-mode benchmarks")
    group.add_argument("--evidence-only", action="store_true",
                       help="only the evidence-only benchmarks (--shadow-compare --evidence-only)")
    group.add_argument("--no-shadow", action="store_true", help="skip the shadow-mode benchmarks")
    group.add_argument("--recording-only", action="store_true",
                       help="only recording (wall, memory, bytes/event), readers and instructions")
    group.add_argument("--instructions-only", action="store_true",
                       help="only the callgrind instruction counts (reduced size; minutes, not hours)")
    ap.add_argument("--no-callgrind", action="store_true",
                    help="naming workload: wall times only, no callgrind counts")
    ap.add_argument("--record-repeat", type=int, default=3,
                    help="runs per configuration of the (long) user-size recording workloads")
    opts = ap.parse_args()
    compile_recorder_package()
    repeat = 2 if opts.quick else opts.repeat
    scale = 0.5 if opts.quick else 1.0
    if opts.shadow_only:
        shadow_benchmarks(repeat, opts.quick)
        return
    if opts.evidence_only:
        evidence_benchmarks(2 if opts.quick else opts.record_repeat, opts.quick)
        return

    work = tempfile.mkdtemp(prefix="ct-bench-")
    try:
        if opts.naming_only:
            naming_engine_benchmark(work, repeat, not opts.no_callgrind)
            return
        tree = os.path.join(work, "tree")
        n_modules = int(2000 * scale)
        generate_tree(tree, n_modules)
        compile_tree(tree)
        run([PY, os.path.join(HERE, "workloads", "import_heavy.py"), tree, str(n_modules)], work)
        if opts.instructions_only:
            instructions_benchmark(work, tree)
            return
        results = recording_benchmark(work, 2 if opts.quick else opts.record_repeat, scale, tree, n_modules)
        call_heavy = next(iter(results))
        traces = results[call_heavy][3]
        reader_benchmark(work, {f"{call_heavy} {c}": traces[c] for c in ("ct json", "ct binary", "ct compact")})
        instructions_benchmark(work, tree)
        if opts.recording_only:
            return
        naming_engine_benchmark(work, repeat, not opts.no_callgrind)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not (opts.no_shadow or opts.recording_only):
        print()
        shadow_benchmarks(repeat, opts.quick)
        print()
        evidence_benchmarks(2 if opts.quick else opts.record_repeat, opts.quick)


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
        compile_tree(tree)
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



# --- evidence-only mode --------------------------------------------------------------------

# Targets of issue #11, as ratios to untraced python (3.12+), and the 3.11 target: no more
# than the floor (a no-op profile function) costs.
EVIDENCE_TARGETS = {"call-heavy": 1.05, "import-real": 1.15}
REAL_PACKAGES = ("sympy", "mpmath", "networkx")

LIST_SCRIPT = """
import importlib, pkgutil, sys
out, packages = sys.argv[1], sys.argv[2:]
names = []
for pkg in packages:
    top = importlib.import_module(pkg)
    names.append(pkg)
    names.extend(m.name for m in pkgutil.walk_packages(top.__path__, pkg + ".", onerror=lambda n: None))
with open(out, "w") as f:
    f.write("\\n".join(names) + "\\n")
print(len(names))
"""


def real_module_list(work):
    """Every module of REAL_PACKAGES (their tests included), listed by a separate process
    (walking packages imports them)."""
    out = os.path.join(work, "real-modules.txt")
    done = subprocess.run([PY, "-c", LIST_SCRIPT, out, *REAL_PACKAGES], cwd=work,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"cannot list the real packages' modules (pip install -r "
                         f"bench/requirements.txt): {done.stderr.strip().splitlines()[-1:]}")
    return out, int(done.stdout.split()[0])


def run_cpu(cmd, cwd):
    """Wall time and CPU time (user + system, the child's own rusage) of one run: on a
    machine other work loads, CPU time moves less than wall time."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"benchmark command failed ({code}): {' '.join(cmd)}\n{err}")
    return elapsed, usage.ru_utime + usage.ru_stime


def evidence_configs(workload_cmd, run_dir):
    record = [CT_RECORD, "--quiet", "--shadow-compare", "--evidence-only", "--trace-dir", run_dir]
    return {
        "untraced": [PY] + workload_cmd,
        "floor": [PY, os.path.join(HERE, "floor_runner.py")] + workload_cmd,
        "evidence": record + workload_cmd,
        "evidence/globals": record + ["--module-name-from-globals"] + workload_cmd,
    }


def evidence_benchmarks(repeat, quick):
    """Evidence-only against untraced python and the floor, runs interleaved; then
    instruction counts (callgrind) at a reduced size."""
    floor_kind = ("C PY_START callback returning DISABLE" if sys.version_info >= (3, 12)
                  else "no-op C profile function")
    work = tempfile.mkdtemp(prefix="ct-bench-evidence-")
    try:
        wl = os.path.join(HERE, "workloads")
        listing, n_real = real_module_list(work)
        fib_n = 27 if quick else 32
        workloads = {
            f"call-heavy fib({fib_n})": ("call-heavy", [os.path.join(wl, "call_heavy.py"), str(fib_n)]),
            f"import-real ({n_real} modules)": ("import-real", [os.path.join(wl, "import_real.py"), listing]),
        }
        run_dir = os.path.join(work, "run")
        # Untimed: compiles the packages' bytecode, so every timed run reads the same files.
        run([PY, os.path.join(wl, "import_real.py"), listing], work)
        names = list(evidence_configs([], "").keys())
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"evidence-only (--shadow-compare --evidence-only, no trace): median wall time and "
              f"CPU time (user + sys) of {repeat} interleaved runs, python "
              f"{sys.version.split()[0]}; floor = {floor_kind}; evidence = default primary "
              f"(rollout.toml), evidence/globals = globals primary; load average {load}")
        print(f"{'workload':30} " + " ".join(f"{c:>16}" for c in names))
        for label, (kind, cmd) in workloads.items():
            cmds = evidence_configs(cmd, run_dir)
            samples = {c: [] for c in names}
            cpu_samples = {c: [] for c in names}
            for _ in range(repeat):
                for c in names:
                    wall_s, cpu_s = run_cpu(cmds[c], work)
                    samples[c].append(wall_s)
                    cpu_samples[c].append(cpu_s)
            wall = {c: statistics.median(v) for c, v in samples.items()}
            cpu = {c: statistics.median(v) for c, v in cpu_samples.items()}
            base, floor = wall["untraced"], wall["floor"]
            print(f"{label:30} " + " ".join(f"{wall[c]:15.2f}s" for c in names))
            print(f"{'  / untraced':30} " + " ".join(f"{wall[c] / base:15.3f}x" for c in names))
            print(f"{'  / floor':30} " + " ".join(f"{wall[c] / floor:15.3f}x" for c in names))
            print(f"{'  CPU time':30} " + " ".join(f"{cpu[c]:15.2f}s" for c in names))
            print(f"{'  CPU / untraced':30} "
                  + " ".join(f"{cpu[c] / cpu['untraced']:15.3f}x" for c in names))
            if sys.version_info >= (3, 12):
                target = EVIDENCE_TARGETS[kind]
                worst = max(wall["evidence"], wall["evidence/globals"]) / base
                print(f"  target (3.12+): evidence <= {target:.2f}x untraced: "
                      f"{'ok' if worst <= target else 'OVER'} ({worst:.3f}x)")
            else:
                worst = max(wall["evidence"], wall["evidence/globals"]) / floor
                print(f"  target (3.11): evidence <= the floor: {'ok' if worst <= 1.0 else 'OVER'} "
                      f"({worst:.3f}x the floor)")
        if shutil.which("valgrind") is None:
            raise SystemExit("valgrind is needed for the instruction counts (apt-get install valgrind)")
        tree = os.path.join(work, "tree")
        generate_tree(tree, 200)
        compile_tree(tree)
        run([PY, os.path.join(wl, "import_heavy.py"), tree, "200"], work)
        # The real packages' import at a size callgrind runs in a minute: mpmath's modules
        # (about 90), a slice of the real-import workload above. The legacy engine's
        # per-module scan grows with sys.modules, so this slice understates its share.
        mp_listing = os.path.join(work, "real-mpmath.txt")
        with open(listing, encoding="utf-8") as f, open(mp_listing, "w", encoding="utf-8") as out:
            mp = [n for n in f.read().split() if n == "mpmath" or n.startswith("mpmath.")]
            out.write("\n".join(mp) + "\n")
        small = {
            "call-heavy fib(20)": [os.path.join(wl, "call_heavy.py"), "20"],
            "import-heavy (200 generated)": [os.path.join(wl, "import_heavy.py"), tree, "200"],
            f"import-real (mpmath, {len(mp)})": [os.path.join(wl, "import_real.py"), mp_listing],
        }
        print()
        print("evidence-only instructions (callgrind, all threads, reduced size); ratios to untraced "
              "and to the floor")
        print(f"{'workload':30} " + " ".join(f"{c:>16}" for c in names))
        for label, cmd in small.items():
            cmds = evidence_configs(cmd, run_dir)
            counts = {c: callgrind_instructions(cmds[c], work, os.path.join(work, "cg.out")) for c in names}
            print(f"{label:30} " + " ".join(f"{counts[c] / 1e6:15.1f}M" for c in names))
            print(f"{'  / untraced':30} " + " ".join(f"{counts[c] / counts['untraced']:15.3f}x" for c in names))
            print(f"{'  / floor':30} " + " ".join(f"{counts[c] / counts['floor']:15.3f}x" for c in names))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
