"""Run a program under the recorder exactly as ``python`` would run it.

``ct-record SCRIPT`` and ``ct-record -m MODULE`` must be indistinguishable, from inside the
program, from ``python SCRIPT`` / ``python -m MODULE``: the same ``sys.argv``,
``sys.path[0]``, a fresh ``__main__`` module with the same attributes, the same output,
tracebacks (without recorder frames) and exit status. This module builds that
environment, starts the recorder at the last moment (so nothing of its own is recorded)
and maps the program's end to an exit status the way the interpreter does.

Exit paths:
- normal end: status 0;
- ``SystemExit``: re-raised untouched, so the interpreter prints and exits as usual;
- any other exception: printed by ``sys.excepthook`` with our frames cut off, status 1;
- ``KeyboardInterrupt``: printed likewise, then the process kills itself with SIGINT after
  interpreter shutdown, as CPython does, so the parent sees death by SIGINT;
- SIGTERM: the trace is finished, then the default action runs (death by SIGTERM).

The trace is finished in an ``atexit`` handler registered before the program runs, so it
runs after the program's own ``atexit`` handlers (which are recorded) and on every exit
path that runs ``atexit``.
"""

# Only builtin and frozen modules here: they can never be shadowed by a file next to the
# program. A `.py` stdlib module imported by the launcher (types, signal, zipfile, runpy...)
# would be in sys.modules before the program runs, so the program's own `types.py` would
# lose to it — under python it wins.
import _signal
import atexit
import os
import sys
import zipimport
from _frozen_importlib_external import MAGIC_NUMBER, SourceFileLoader, SourcelessFileLoader

from . import _native

if sys.version_info < (3, 12):
    # The 3.11 back ends set threading.settrace / threading.setprofile, so `threading` is
    # imported before the purge below and the program shares that copy. On 3.12+
    # sys.monitoring covers every thread and nothing of the recorder's needs `threading`:
    # the program imports it itself if it uses it, as under python (and start-up is about
    # 17 M instructions cheaper).
    import threading  # noqa: F401

_OWN_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep

# Set when the program ended with an uncaught KeyboardInterrupt.
_sigint_exit = False
# The program's exit status once known (for the shadow run metadata).
_exit_status = None
# `--on-recorder-error abort`: a failed stop step ends the process with status 70.
_abort_on_error = False
# Set when a stop step failed.
_stop_failed = False


def _say(text):
    """Write a line to stderr; a stderr that cannot be written (closed pipe, full disk) is
    never a reason to skip the rest of the stop."""
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except Exception:
        pass


def _finish_recording():
    """Stop the recorder and write the trace; report recorder trouble on stderr. Every step
    of the stop runs inside ``_native.stop`` even when one fails; the error names them."""
    global _stop_failed
    try:
        summary = _native.stop(exit_code=_exit_status)
    except Exception as exc:  # the trace could not be written: say so
        _say(f"ct-record: error: writing the trace failed: {exc}\n")
        _stop_failed = True
        return
    if summary and summary.get("recorder_error_count"):
        _say(
            f"ct-record: warning: the recorder hit {summary['recorder_error_count']} error(s) and "
            f"stopped recording early: {summary['recorder_errors'][0]}\n"
        )


def _at_exit():
    _finish_recording()
    if _stop_failed and _abort_on_error and not _sigint_exit:
        # As documented for abort: a recorder failure exits with status 70, a failed stop
        # step included. atexit cannot change the status; this is the last handler that
        # matters (it was registered before the program's, so theirs have run), so the
        # streams are flushed and the process ends here.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(70)
    if _sigint_exit:
        # What CPython does after an uncaught KeyboardInterrupt: die by SIGINT.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
        os.kill(os.getpid(), _signal.SIGINT)


# Modules that must stay: the recorder's own, and `threading`, whose settrace hook the
# recorder sets (a second copy imported by the program would start untraced threads).
_KEEP = ("ct_recorder", "threading", "_weakrefset")


def _forget_launcher_imports():
    """Drop from ``sys.modules`` the Python modules that the console script and the launcher
    imported after interpreter start-up (``re``, ``enum``, ``types``...), so that the
    program imports them afresh — and a ``types.py`` next to the program wins, as under
    python. ``sys.modules`` is in order of completion (importlib moves a module to the end
    once it has loaded), and ``site`` is the last module to complete during start-up: it
    imports everything the ``.pth`` files ask for before it finishes. Without ``site``
    (``python -S``), the first module of the launcher path marks the cut. Builtin, frozen
    and extension modules stay: no file next to the program can shadow an already
    imported one, and extension modules do not take well to a second initialisation."""
    names = list(sys.modules)
    if "site" in sys.modules:
        cut = names.index("site") + 1
    else:
        cut = next((i for i, n in enumerate(names) if n in ("re", "runpy", "ct_recorder")), len(names))

    def origin(name):
        spec = getattr(sys.modules.get(name), "__spec__", None)
        found = getattr(spec, "origin", None)
        return found if isinstance(found, str) else None

    gone = set()
    for name in names[cut:]:
        if name.partition(".")[0] in _KEEP:
            continue
        found = origin(name)
        if found is not None and found.endswith(".py"):
            gone.add(name)
    # A submodule left behind while its package goes would break the program's import of
    # it: the package is imported afresh, the submodule is found in sys.modules, and
    # importlib binds a submodule to its package only when it loads it, so
    # `package.submodule` is missing. (`python -m ct_recorder` leaves runpy's frozen
    # `importlib.machinery` and `importlib.util` behind their `.py` package `importlib`.)
    # A frozen submodule goes too, as it would be imported again under python; any other
    # (builtin, extension) keeps its packages instead.
    changed = True
    while changed:
        changed = False
        for name in list(sys.modules):
            if name in gone or "." not in name:
                continue
            parents = [name.rsplit(".", depth)[0] for depth in range(1, name.count(".") + 1)]
            if not any(p in gone for p in parents):
                continue
            if origin(name) == "frozen":
                gone.add(name)
            else:
                gone.difference_update(parents)
            changed = True
    for name in gone:
        del sys.modules[name]


def _os_thread_count():
    """The process's OS thread count (Linux: /proc/self/stat), or None where unknown."""
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        return int(stat[stat.rindex(b")") + 2 :].split()[17])
    except (OSError, ValueError, IndexError):
        return None


_FORK_WARNING = r"This process \(pid=\d+\) is multi-threaded, use of fork\(\) may lead to deadlocks in the child\."
_fork_filter = []


def _hide_recorder_threads_at_fork(threads_before):
    """CPython 3.12+ warns at os.fork() when the process has more than one OS thread. The
    recorder's own threads (trace writer, signal watcher, metrics server) must not make a
    single-threaded program see that warning: before each fork, a filter for exactly that
    warning is put in place when the threads beyond the recorder's are just the one that
    forks, and taken away otherwise. 3.12 warns before the after-fork hooks run, so the
    filter goes at once; 3.13 warns after them, so it stays until the next fork decides."""
    if sys.version_info < (3, 12) or threads_before is None:
        return
    after = _os_thread_count()
    if after is None or after <= threads_before:
        return
    recorder_threads = after - threads_before

    def remove():
        if _fork_filter:
            import warnings

            entry = _fork_filter.pop()
            try:
                warnings.filters.remove(entry)
            except ValueError:
                pass
            mutated = getattr(warnings, "_filters_mutated", None)
            if mutated is not None:
                mutated()

    def before():
        remove()
        now = _os_thread_count()
        if now is not None and now - recorder_threads <= 1:
            import warnings

            warnings.filterwarnings("ignore", message=_FORK_WARNING, category=DeprecationWarning)
            _fork_filter.append(warnings.filters[0])

    def after_in_parent():
        if sys.version_info < (3, 13):
            remove()

    os.register_at_fork(before=before, after_in_parent=after_in_parent, after_in_child=remove)


# What _native._recursion_depth() reads in the bottom frame python itself starts (a
# script's module frame; runpy's _run_module_as_main for -m), measured under plain CPython
# (tests/python compare RecursionError depths with python's). 3.11 counts the C call to
# _recursion_depth too; 3.12+ count Python frames only.
_BOTTOM_DEPTH = 2 if sys.version_info < (3, 12) else 1
# Measures the recursion depth at which the program's first frame will run.
_DEPTH_PROBE = compile("_depth = _d()", "<ct-record depth probe>", "exec")


def _entry_depth_probe():
    return _native._recursion_depth()


def _fresh_main_module():
    """A new ``__main__`` like the one the interpreter creates, installed in sys.modules
    (same keys in the same order: ``__annotations__`` before ``__builtins__``)."""
    main = type(sys)("__main__")
    main.__dict__["__annotations__"] = {}
    main.__dict__["__builtins__"] = sys.modules["builtins"]
    sys.modules["__main__"] = main
    return main


def _script_paths(script):
    """``__file__`` and ``sys.path[0]`` as CPython computes them for ``python SCRIPT``:
    ``__file__`` is the path joined to the working directory without normalising it;
    ``sys.path[0]`` is the directory of the script with symlinks resolved."""
    file = script if os.path.isabs(script) else os.path.join(os.getcwd(), script)
    return file, os.path.dirname(os.path.realpath(script))


def _compile_script(file):
    """Code object for a source or sourceless (.pyc) script, or raise."""
    with open(file, "rb") as f:
        data = f.read()
    if data[:4] == MAGIC_NUMBER:
        loader = SourcelessFileLoader("__main__", file)
        return loader.get_code("__main__"), loader
    loader = SourceFileLoader("__main__", file)
    return compile(data, file, "exec", dont_inherit=True), loader


def _is_zip_app(path):
    """Whether ``python PATH`` would run PATH as a zip application."""
    try:
        zipimport.zipimporter(path)
        return True
    except (zipimport.ZipImportError, OSError):
        return False


_FILE_LOADERS = (SourceFileLoader, SourcelessFileLoader)


def _module_findable(name):
    """Whether ``python -m name`` can get as far as running the module, decided without
    importing anything (no code of the program runs here). False only when it certainly
    cannot: the top-level name is not found, a part of the dotted name is found nowhere a
    package could look for it, or the module is a package without ``__main__``. Then the
    launcher lets runpy fail exactly as ``python -m`` does, with nothing recorded.

    A parent package's ``__path__`` is only known once its ``__init__`` has run; without
    running it, a sub-module is looked for in the package's own directories and, as
    ``pkgutil.extend_path`` would add them, in the same sub-directory of every ``sys.path``
    entry. A package that builds ``__path__`` some other way is given the benefit of the
    doubt (recorded as usual)."""
    import importlib.util  # `python -m` imports it too (through runpy)
    import importlib.machinery

    parts = name.split(".")
    top = parts[0]
    if not top:
        return False
    if top in sys.modules or not all(parts):
        return True  # runpy decides; nothing to tell without importing
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    if spec.origin is not None and not isinstance(spec.loader, _FILE_LOADERS):
        return True  # a built-in, frozen, zipped or custom module: runpy decides
    locations = spec.submodule_search_locations
    for i in range(1, len(parts) + 1):
        if locations is None:
            # A plain module: runnable when it is the target, else "'a' is not a package".
            return i == len(parts)
        part = parts[i] if i < len(parts) else "__main__"  # a package runs its __main__
        search = list(locations) + [os.path.join(entry or os.getcwd(), *parts[:i])
                                    for entry in sys.path if isinstance(entry, str)]
        found, locations = _find_in_dirs(part, search)
        if not found:
            return False
        if part == "__main__":
            return True
    return True


def _find_in_dirs(part, dirs):
    """Looks for the module or package ``part`` in ``dirs`` as the path finder does, on the
    file system only: ``(found, sub-module locations)``; the locations are None for a plain
    module, the package's directories for a package (all portions of a namespace package)."""
    from importlib.machinery import all_suffixes

    portions = []
    for d in dirs:
        base = os.path.join(d, part)
        if os.path.isfile(os.path.join(base, "__init__.py")) or os.path.isfile(os.path.join(base, "__init__.pyc")):
            return True, [base]
        if any(os.path.isfile(base + suffix) for suffix in all_suffixes()):
            return True, None
        if os.path.isdir(base):
            portions.append(base)
    return bool(portions), portions or None


def _enter_as_python_does(func, *args):
    """Calls ``func`` the way the interpreter calls runpy for ``python -m``: from C, at the
    bottom of the stack. The launcher's frames stay underneath but are cut off from the
    program's view (the recorder clears the entry frame's ``previous`` link), and the
    recursion limit is shifted by their depth, so ``inspect.stack()`` and RecursionError
    look as they do under python."""
    depth = _native._call_as_entry(_entry_depth_probe)
    if depth:
        _native._shift_recursion_limit(depth - _BOTTOM_DEPTH)
    _native._set_entry_code(func.__code__)
    return _native._call_as_entry(func, *args)


def _report_uncaught(exc):
    """Print like the interpreter does for an uncaught exception, minus our frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_OWN_DIR):
        tb = tb.tb_next
    exc.__traceback__ = tb
    sys.excepthook(type(exc), exc, tb)


def main(opts):
    """Entry point used by ``ct-record`` (``_native.main`` parses the command line)."""
    global _exit_status
    status = _run(opts)
    _exit_status = status
    return status


def _exit_code_of(exc):
    """The process status a SystemExit leads to, as the interpreter computes it."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    return 1


def _run(opts):
    global _sigint_exit, _exit_status, _abort_on_error
    kind, target, args = opts["kind"], opts["target"], list(opts["args"])
    _abort_on_error = opts.get("on_error") == "abort"
    _forget_launcher_imports()

    if kind == "script":
        if os.path.isdir(target) or (os.path.isfile(target) and _is_zip_app(target)):
            # `python DIR` / `python app.zip`: run its __main__ with it on sys.path, as an
            # absolute path (CPython makes sys.path[0] absolute).
            import runpy  # python imports it too for this case

            sys.argv = [target] + args
            sys.path[0] = os.path.abspath(target)
            program = program_dir = sys.path[0]
            import importlib.machinery

            if importlib.machinery.PathFinder.find_spec("__main__", [sys.path[0]]) is None:
                # Let runpy say it exactly as python does; nothing is recorded.
                _fresh_main_module()
                runpy._run_module_as_main("__main__", alter_argv=False)
                return 1

            def runner():
                _enter_as_python_does(runpy._run_module_as_main, "__main__", False)

        else:
            file, path0 = _script_paths(target)
            compile_error = None
            try:
                code, loader = _compile_script(file)
            except OSError as exc:
                sys.stderr.write(f"ct-record: can't open file {file!r}: [Errno {exc.errno}] {exc.strerror}\n")
                return 2
            except (SyntaxError, ValueError, UnicodeDecodeError) as exc:
                compile_error = exc
            if compile_error is not None:
                # As python: the error alone, in python's own words, with no traceback
                # (asked outside the except block, so it carries no __context__).
                exc = _native.file_compile_error(file) or compile_error
                exc.__traceback__ = None
                exc.__context__ = None
                sys.excepthook(type(exc), exc, None)
                return 1
            sys.argv = [target] + args
            sys.path[0] = path0
            main_module = _fresh_main_module()
            g = main_module.__dict__
            g.update(__file__=file, __cached__=None, __doc__=None, __loader__=loader,
                     __package__=None, __spec__=None)

            def runner():
                # The program's module frame must start at depth 1, as under python: the
                # probe runs through the very same path (this frame, exec) to measure ours.
                probe = {"_d": _native._recursion_depth}
                exec(_DEPTH_PROBE, probe)
                if probe["_depth"]:
                    _native._shift_recursion_limit(probe["_depth"] - _BOTTOM_DEPTH)
                _native._set_entry_code(code)
                exec(code, g)

            program = file
            program_dir = path0
    else:
        import runpy  # `python -m` imports it too

        sys.argv = ["-m"] + args
        sys.path[0] = os.getcwd()
        _fresh_main_module()
        if not _module_findable(target):
            # Let runpy say it exactly as `python -m` does; nothing is recorded.
            runpy._run_module_as_main(target)
            return 1
        program = f"-m {target}"
        program_dir = os.getcwd()

        def runner():
            _enter_as_python_does(runpy._run_module_as_main, target)

    # Everything the launcher itself calls happens before the hook is installed. SIGTERM is
    # handled by the recorder below Python's signal table (see docs/recording.md).
    threads_before = _os_thread_count()
    try:
        _native.start(
            opts["trace_dir"],
            format=opts["format"],
            program=program,
            args=args,
            own_dir=_OWN_DIR,
            on_error=opts["on_error"],
            skip_current_stack=True,
            finish_on_sigterm=True,
            trace_filters=opts.get("trace_filters", []),
            default_filter=opts.get("default_filter", True),
            program_dir=program_dir,
            **opts.get("recorder", {}),
        )
        _hide_recorder_threads_at_fork(threads_before)
    except (OSError, _native.ConfigError) as exc:
        sys.stderr.write(f"ct-record: error: {exc}\n")
        return 2
    atexit.register(_at_exit)

    try:
        runner()
    except SystemExit as exc:
        _exit_status = _exit_code_of(exc)
        raise
    except _native.RecorderError as exc:
        sys.stderr.write(f"{exc}\n")
        return 70
    except KeyboardInterrupt as exc:
        _report_uncaught(exc)
        _sigint_exit = True
        return 130
    except BaseException as exc:
        _report_uncaught(exc)
        return 1
    return 0
