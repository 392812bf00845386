"""What a legacy-engine recording leaves behind once it stops: imports a generated tree of
N modules while recording with the legacy engine (argv[3] == "record") or untraced, stops,
then writes to every module's dict argv[4] times. On CPython 3.12+ the legacy engine watches
those dicts while it records (a dict watcher); the writes after the stop show what the
watch still costs then (bench/run.py --naming-only, under callgrind).
"""
import importlib
import os
import sys
import tempfile

root, n, mode, rounds = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
sys.path.insert(0, root)
if mode == "record":
    import ct_recorder

    ct_recorder.configure_policy(module_name_from_globals=False, shadow_compare=False)
    ct_recorder.start(tempfile.mkdtemp(prefix="ct-after-stop-"))
mods = [importlib.import_module(f"gen_p{i // 50}.m{i}") for i in range(n)]
if mode == "record":
    ct_recorder.stop()
for r in range(rounds):
    for m in mods:
        m.__dict__["ct_after_stop"] = r
print(len(mods), os.getpid() > 0)
