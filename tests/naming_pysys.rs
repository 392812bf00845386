//! The PyO3 side against an embedded CPython: hook-free reads of the real `sys.modules`
//! (L4.7) — no PEP 562 `__getattr__`, `__getattribute__`, property or `LazyLoader` may
//! run — stamps that notice every kind of change, `sys.path` read once (L2.1), and the
//! globals facts (N1).

use std::ffi::CString;
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use ct_recorder::naming::{
    read_attr_hook_free, read_globals_facts, read_module_attrs_hook_free, AttrValue, GlobalsName,
    SpecValue,
};

/// The tests share one interpreter and `sys.modules`: run them one at a time.
static PYTHON: Mutex<()> = Mutex::new(());

fn with_py<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    let _guard = PYTHON.lock().unwrap_or_else(|e| e.into_inner());
    pyo3::prepare_freethreaded_python();
    Python::with_gil(f)
}

/// Runs `code` in fresh globals and returns them.
fn exec<'py>(py: Python<'py>, code: &str) -> Bound<'py, PyDict> {
    let globals = PyDict::new(py);
    let code = CString::new(code).expect("no NUL in test code");
    py.run(&code, Some(&globals), None)
        .unwrap_or_else(|e| panic!("python failed: {e}"));
    globals
}

fn get<'py>(globals: &Bound<'py, PyDict>, name: &str) -> Bound<'py, PyAny> {
    globals.get_item(name).unwrap().expect(name)
}

#[cfg(feature = "legacy-resolver")]
fn get_bool(globals: &Bound<'_, PyDict>, name: &str) -> bool {
    get(globals, name).extract().unwrap()
}

const PEP562: &str = r#"
import sys, types
calls = []
m = types.ModuleType("ct_pep562")
def __getattr__(name):
    calls.append(name)
    import colorsys
    sys.modules["ct_pep562_side_effect"] = m
    raise AttributeError(name)
m.__getattr__ = __getattr__
m.__file__ = "/ct/pep562.py"
sys.modules["ct_pep562"] = m
had_colorsys = "colorsys" in sys.modules
"#;

#[test]
fn l4_7_pep562_getattr_is_never_triggered_by_reads() {
    with_py(|py| {
        let g = exec(py, PEP562);
        let attrs = read_module_attrs_hook_free(&get(&g, "m"));
        // types.ModuleType sets __spec__ = None and __name__; __file__ was assigned;
        // __cached__ could only come from the hook.
        assert_eq!(attrs.spec, SpecValue::None);
        assert_eq!(attrs.file, AttrValue::str("/ct/pep562.py"));
        assert_eq!(attrs.name, AttrValue::str("ct_pep562"));
        assert_eq!(attrs.cached, AttrValue::HookOnly);
        assert_eq!(get(&g, "calls").len().unwrap(), 0);
        exec(py, "import sys; sys.modules.pop('ct_pep562', None)");
    })
}

#[cfg(feature = "legacy-resolver")]
#[test]
fn l4_7_scanning_real_sys_modules_runs_no_hook() {
    use ct_recorder::naming::legacy::LegacyResolver;
    use ct_recorder::naming::PySysModules;
    with_py(|py| {
        let g = exec(py, PEP562);
        let sys_modules = PySysModules::new();
        let mut resolver = LegacyResolver::new(&[], None);
        let before = exec(py, "import sys; n = len(sys.modules)");
        assert_eq!(
            resolver.resolve("/ct/pep562.py", &sys_modules),
            Some("ct_pep562".into())
        );
        // A target nobody has: every entry of sys.modules gets read.
        assert_eq!(resolver.scan("/ct/nobody.py", &sys_modules), None);
        assert_eq!(get(&g, "calls").len().unwrap(), 0, "PEP 562 hook ran");
        let after = exec(
            py,
            "import sys; n = len(sys.modules); side = 'ct_pep562_side_effect' in sys.modules",
        );
        assert!(!get_bool(&after, "side"));
        assert_eq!(
            get(&before, "n").extract::<usize>().unwrap(),
            get(&after, "n").extract::<usize>().unwrap()
        );
        if !get_bool(&g, "had_colorsys") {
            let now = exec(py, "import sys; c = 'colorsys' in sys.modules");
            assert!(!get_bool(&now, "c"), "the hook's import ran");
        }
        // io (PEP 562 __getattr__) and the hook-only __cached__ above are counted.
        assert!(resolver.stats().scan.hook_only_attrs >= 1);
        exec(py, "import sys; sys.modules.pop('ct_pep562', None)");
    })
}

#[cfg(feature = "legacy-resolver")]
#[test]
fn l4_7_lazy_loader_module_is_not_executed_by_the_scan() {
    use ct_recorder::naming::legacy::LegacyResolver;
    use ct_recorder::naming::PySysModules;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ct_lazy_mod.py");
    std::fs::write(
        &path,
        "import builtins\nbuiltins.CT_LAZY_EXECUTED = True\nvalue = 1\n",
    )
    .unwrap();
    let path = path.to_str().unwrap().to_string();
    with_py(|py| {
        let code = format!(
            r#"
import importlib.util, sys, builtins
spec = importlib.util.spec_from_file_location("ct_lazy_mod", {path:?})
loader = importlib.util.LazyLoader(spec.loader)
spec.loader = loader
module = importlib.util.module_from_spec(spec)
sys.modules["ct_lazy_mod"] = module
loader.exec_module(module)
executed = hasattr(builtins, "CT_LAZY_EXECUTED")
"#
        );
        let g = exec(py, &code);
        assert!(!get_bool(&g, "executed"));
        let sys_modules = PySysModules::new();
        let mut resolver = LegacyResolver::new(&[], None);
        assert_eq!(
            resolver.resolve(&path, &sys_modules),
            Some("ct_lazy_mod".into())
        );
        resolver.scan("/ct/nobody.py", &sys_modules);
        let check = exec(
            py,
            "import builtins; executed = hasattr(builtins, 'CT_LAZY_EXECUTED')",
        );
        assert!(
            !get_bool(&check, "executed"),
            "the scan executed the lazy module"
        );
        // The premise holds: an ordinary attribute access does execute it.
        let check = exec(
            py,
            "import sys, builtins\nsys.modules['ct_lazy_mod'].value\nexecuted = hasattr(builtins, 'CT_LAZY_EXECUTED')\ndel builtins.CT_LAZY_EXECUTED\ndel sys.modules['ct_lazy_mod']",
        );
        assert!(get_bool(&check, "executed"));
    })
}

#[test]
fn l4_7_getattribute_and_getattr_on_a_module_subclass_are_not_called() {
    with_py(|py| {
        let g = exec(
            py,
            r#"
import types
calls = []
class Hooked(types.ModuleType):
    def __getattribute__(self, name):
        calls.append(name)
        return object.__getattribute__(self, name)
    def __getattr__(self, name):
        calls.append("getattr:" + name)
        return "/ct/from_hook.py"
m = Hooked("ct_hooked")
m.__dict__["__file__"] = "/ct/hooked.py"
calls.clear()
"#,
        );
        let attrs = read_module_attrs_hook_free(&get(&g, "m"));
        assert_eq!(attrs.file, AttrValue::str("/ct/hooked.py"));
        assert_eq!(attrs.name, AttrValue::str("ct_hooked"));
        assert_eq!(attrs.cached, AttrValue::HookOnly);
        assert_eq!(get(&g, "calls").len().unwrap(), 0);
    })
}

#[test]
fn l4_7_class_descriptors_are_not_invoked_and_the_instance_dict_wins() {
    with_py(|py| {
        let g = exec(
            py,
            r#"
import types
calls = []
class WithProps(types.ModuleType):
    @property
    def __cached__(self):
        calls.append("cached")
        return "/ct/prop.pyc"
    @property
    def __file__(self):
        calls.append("file")
        return "/ct/prop_file.py"
m = WithProps("ct_props")
m.__dict__["__file__"] = "/ct/real.py"
"#,
        );
        let attrs = read_module_attrs_hook_free(&get(&g, "m"));
        assert_eq!(
            attrs.file,
            AttrValue::str("/ct/real.py"),
            "instance dict first"
        );
        assert_eq!(attrs.cached, AttrValue::HookOnly, "property not invoked");
        assert_eq!(get(&g, "calls").len().unwrap(), 0);
    })
}

#[test]
fn l4_7_plain_class_data_and_slots_are_read() {
    with_py(|py| {
        let g = exec(
            py,
            r#"
import types
class WithClassFile(types.ModuleType):
    __file__ = "/ct/class_level.py"
m = WithClassFile("ct_class_level")
class Slotted:
    __slots__ = ("__file__", "__name__")
s = Slotted()
s.__file__ = "/ct/slotted.py"
"#,
        );
        let attrs = read_module_attrs_hook_free(&get(&g, "m"));
        assert_eq!(attrs.file, AttrValue::str("/ct/class_level.py"));
        let attrs = read_module_attrs_hook_free(&get(&g, "s"));
        assert_eq!(attrs.file, AttrValue::str("/ct/slotted.py"));
        assert_eq!(attrs.name, AttrValue::Absent, "empty slot, no hook");
        assert_eq!(attrs.spec, SpecValue::Absent);
    })
}

#[test]
fn l4_7_a_builtin_type_is_read_from_its_own_dict_on_every_version() {
    // From 3.12 a static builtin type keeps its dict in the interpreter (its `tp_dict` slot
    // is null): the reader must find it there, and must not put a fresh dict in the slot.
    with_py(|py| {
        let g = exec(py, "t = int\nbefore = sorted(int.__dict__)");
        let t = get(&g, "t");
        assert_eq!(read_attr_hook_free(&t, "__add__"), AttrValue::NotStr);
        assert_eq!(read_attr_hook_free(&t, "__name__"), AttrValue::str("int"));
        let attrs = read_module_attrs_hook_free(&t);
        assert_eq!(attrs.file, AttrValue::Absent);
        assert_eq!(attrs.spec, SpecValue::Absent);
        let after = exec(py, "after = sorted(int.__dict__)\nadd = (1).__add__(2)");
        assert_eq!(
            get(&g, "before").extract::<Vec<String>>().unwrap(),
            get(&after, "after").extract::<Vec<String>>().unwrap()
        );
        assert_eq!(get(&after, "add").extract::<i64>().unwrap(), 3);
    })
}

#[test]
fn l4_3_str_subclasses_are_used_and_other_values_are_not_str() {
    with_py(|py| {
        let g = exec(
            py,
            r#"
import types
class S(str):
    def __eq__(self, other):
        raise RuntimeError("no comparisons on values")
    __hash__ = str.__hash__
m = types.ModuleType("ct_sub")
m.__file__ = S("/ct/sub.py")
m.__cached__ = 42
m.__spec__ = types.SimpleNamespace(origin=b"/ct/bytes.py", name=S("ct.sub"))
surrogate = types.ModuleType("ct_surrogate")
surrogate.__file__ = "/ct/\udcff.py"
"#,
        );
        let attrs = read_module_attrs_hook_free(&get(&g, "m"));
        assert_eq!(attrs.file, AttrValue::str("/ct/sub.py"));
        assert_eq!(attrs.cached, AttrValue::NotStr);
        assert_eq!(
            attrs.spec,
            SpecValue::object(AttrValue::NotStr, AttrValue::str("ct.sub"))
        );
        let attrs = read_module_attrs_hook_free(&get(&g, "surrogate"));
        assert_eq!(
            attrs.file,
            AttrValue::NotStr,
            "not encodable, as the reference's extract"
        );
    })
}

/// Builds a cached and a reference resolver over the real sys.modules and checks that
/// they agree on `target` (scan only, no path cache), returning the answer.
#[cfg(feature = "legacy-resolver")]
fn scan_both(
    fast: &mut ct_recorder::naming::legacy::LegacyResolver,
    table: &ct_recorder::naming::PySysModules,
    target: &str,
) -> Option<String> {
    use ct_recorder::naming::legacy::{LegacyResolver, ScanStrategy};
    let mut slow = LegacyResolver::new(&[], None);
    slow.set_scan_strategy(ScanStrategy::Reference);
    let expected = slow.scan(target, table);
    assert_eq!(
        fast.scan(target, table),
        expected,
        "cached scan differs for {target}"
    );
    expected
}

#[cfg(feature = "legacy-resolver")]
#[test]
fn stamps_notice_every_kind_of_change_in_real_sys_modules() {
    use ct_recorder::naming::legacy::LegacyResolver;
    use ct_recorder::naming::PySysModules;
    with_py(|py| {
        let table = PySysModules::new();
        let mut fast = LegacyResolver::new(&[], None);
        let some = |s: &str| Some(s.to_string());
        // Inserted before its body runs: no __file__ yet.
        let g = exec(
            py,
            "import sys, types\nm = types.ModuleType('ct_stamp')\nsys.modules['ct_stamp'] = m",
        );
        assert_eq!(scan_both(&mut fast, &table, "/ct/stamp.py"), None);
        exec(
            py,
            "import sys\nsys.modules['ct_stamp'].__file__ = '/ct/stamp.py'",
        );
        assert_eq!(
            scan_both(&mut fast, &table, "/ct/stamp.py"),
            some("ct_stamp")
        );
        // __spec__ set, then its origin and name changed in place.
        exec(
            py,
            "import sys, importlib.machinery as im\nm = sys.modules['ct_stamp']\nm.__spec__ = im.ModuleSpec('ct.spec', None, origin='/ct/origin.py')",
        );
        assert_eq!(
            scan_both(&mut fast, &table, "/ct/stamp.py"),
            some("ct.spec")
        );
        assert_eq!(
            scan_both(&mut fast, &table, "/ct/origin.py"),
            some("ct.spec")
        );
        exec(py, "import sys\ns = sys.modules['ct_stamp'].__spec__\ns.origin = '/ct/origin2.py'\ns.name = 'ct.spec2'");
        assert_eq!(scan_both(&mut fast, &table, "/ct/origin.py"), None);
        assert_eq!(
            scan_both(&mut fast, &table, "/ct/origin2.py"),
            some("ct.spec2")
        );
        // The spec object's __dict__ rebound (ModuleSpec instances are ordinary objects).
        exec(py, "import sys\ns = sys.modules['ct_stamp'].__spec__\ns.__dict__ = {'origin': '/ct/origin3.py', 'name': 'ct.spec3'}");
        assert_eq!(
            scan_both(&mut fast, &table, "/ct/origin3.py"),
            some("ct.spec3")
        );
        // __class__ assignment to a heap type with a class-level __cached__, then a class
        // attribute change.
        exec(
            py,
            "import sys, types\nclass K(types.ModuleType):\n    __cached__ = '/ct/klass.pyc'\nsys.modules['ct_stamp'].__class__ = K\nKK = K",
        );
        assert_eq!(
            scan_both(&mut fast, &table, "/ct/klass.py"),
            some("ct.spec3")
        );
        exec(
            py,
            "import sys\ntype(sys.modules['ct_stamp']).__cached__ = '/ct/klass2.pyc'",
        );
        assert_eq!(scan_both(&mut fast, &table, "/ct/klass.py"), None);
        assert_eq!(
            scan_both(&mut fast, &table, "/ct/klass2.py"),
            some("ct.spec3")
        );
        // A class-level __getattr__ added later makes the missing attribute hook-only
        // (no answer change, but the stamp must not claim the old read is current).
        exec(
            py,
            "import sys\ntype(sys.modules['ct_stamp']).__getattr__ = lambda self, n: '/ct/hook.py'",
        );
        assert_eq!(scan_both(&mut fast, &table, "/ct/hook.py"), None);
        // Value replaced under the same key; a non-module object with its own __dict__.
        exec(
            py,
            "import sys\nclass Obj: pass\no = Obj()\no.__file__ = '/ct/obj.py'\nsys.modules['ct_stamp'] = o",
        );
        assert_eq!(scan_both(&mut fast, &table, "/ct/klass2.py"), None);
        assert_eq!(scan_both(&mut fast, &table, "/ct/obj.py"), some("ct_stamp"));
        exec(
            py,
            "import sys\nsys.modules['ct_stamp'].__dict__ = {'__file__': '/ct/obj2.py'}",
        );
        assert_eq!(scan_both(&mut fast, &table, "/ct/obj.py"), None);
        assert_eq!(
            scan_both(&mut fast, &table, "/ct/obj2.py"),
            some("ct_stamp")
        );
        // A `__slots__` object: slot writes change no dict, the entry must be re-read.
        exec(
            py,
            "import sys\nclass Slotted:\n    __slots__ = ('__file__',)\nz = Slotted()\nz.__file__ = '/ct/slot.py'\nsys.modules['ct_slotted'] = z",
        );
        assert_eq!(
            scan_both(&mut fast, &table, "/ct/slot.py"),
            some("ct_slotted")
        );
        exec(
            py,
            "import sys\nsys.modules['ct_slotted'].__file__ = '/ct/slot2.py'",
        );
        assert_eq!(scan_both(&mut fast, &table, "/ct/slot.py"), None);
        assert_eq!(
            scan_both(&mut fast, &table, "/ct/slot2.py"),
            some("ct_slotted")
        );
        // A class stored in sys.modules: `__name__` comes from `type`'s getset, and a
        // rename touches no dict.
        exec(
            py,
            "import sys\nclass Klass:\n    __file__ = '/ct/klassobj.py'\nsys.modules['ct.klass'] = Klass",
        );
        assert_eq!(
            scan_both(&mut fast, &table, "/ct/klassobj.py"),
            some("Klass")
        );
        exec(
            py,
            "import sys\nsys.modules['ct.klass'].__name__ = 'Renamed'",
        );
        assert_eq!(
            scan_both(&mut fast, &table, "/ct/klassobj.py"),
            some("Renamed")
        );
        exec(
            py,
            "import sys\ndel sys.modules['ct_slotted'], sys.modules['ct.klass']",
        );
        // Deleted, then re-inserted under a new key.
        exec(
            py,
            "import sys\no = sys.modules.pop('ct_stamp')\nsys.modules['ct_stamp_again'] = o",
        );
        assert_eq!(
            scan_both(&mut fast, &table, "/ct/obj2.py"),
            some("ct_stamp_again")
        );
        exec(py, "import sys\nsys.modules.pop('ct_stamp_again')");
        assert_eq!(scan_both(&mut fast, &table, "/ct/obj2.py"), None);
        drop(g);
    })
}

#[cfg(feature = "legacy-resolver")]
#[test]
fn l4_2_non_str_key_in_real_sys_modules_aborts_the_scan() {
    use ct_recorder::naming::legacy::LegacyResolver;
    use ct_recorder::naming::PySysModules;
    with_py(|py| {
        exec(
            py,
            "import sys, types\nm = types.ModuleType('ct_late')\nm.__file__ = '/ct/late.py'\nsys.modules[12345] = types.ModuleType('x')\nsys.modules['ct_late'] = m",
        );
        let table = PySysModules::new();
        let mut r = LegacyResolver::new(&[], None);
        assert_eq!(scan_both(&mut r, &table, "/ct/late.py"), None);
        assert_eq!(r.stats().scan.non_str_key_aborts, 1);
        exec(py, "import sys\ndel sys.modules[12345]");
        assert_eq!(
            scan_both(&mut r, &table, "/ct/late.py"),
            Some("ct_late".into())
        );
        exec(py, "import sys\ndel sys.modules['ct_late']");
    })
}

#[cfg(feature = "legacy-resolver")]
#[test]
fn l7_runtime_engine_names_a_real_stdlib_module() {
    use ct_recorder::naming::legacy::{LegacyNamer, LegacyResolver};
    use ct_recorder::naming::{CodeFacts, ModuleNamer, PySysModules};
    with_py(|py| {
        let g = exec(
            py,
            "import json, json.decoder\nfile = json.decoder.__file__",
        );
        let file: String = get(&g, "file").extract().unwrap();
        let mut namer = LegacyNamer::new(LegacyResolver::from_python(py));
        let facts = CodeFacts::new(file, "<module>", GlobalsName::Missing, None);
        let naming = namer.name(&facts, &PySysModules::new());
        assert_eq!(naming.name.as_deref(), Some("json.decoder"));
    })
}

#[cfg(feature = "legacy-resolver")]
#[test]
fn l2_1_from_python_reads_sys_path_and_cwd_once() {
    use ct_recorder::naming::legacy::LegacyResolver;
    with_py(|py| {
        let g = exec(
            py,
            "import sys, os, pathlib\nsaved = list(sys.path)\nsys.path[:] = ['/ct_root//probe/', pathlib.Path('/ct_path_obj'), b'/ct_bytes', '', '.']\ncwd = os.getcwd()",
        );
        let resolver = LegacyResolver::from_python(py);
        exec(py, "import sys\nsys.path.append('/ct_later')");
        let cwd: String = get(&g, "cwd").extract().unwrap();
        let mut expected = vec!["/ct_root/probe".to_string(), cwd];
        expected.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        let restore = g.clone();
        py.run(c"import sys\nsys.path[:] = saved", Some(&restore), None)
            .unwrap();
        assert_eq!(resolver.roots(), expected.as_slice());
    })
}

#[test]
fn n1_globals_facts_accept_str_subclasses_raw_and_bypass_dict_hooks() {
    with_py(|py| {
        let g = exec(
            py,
            r#"
import types
calls = []
class S(str):
    pass
class D(dict):
    def __getitem__(self, k):
        calls.append(k)
        return "hooked"
    def __missing__(self, k):
        calls.append("missing:" + k)
        return "hooked"
class Spec:
    @property
    def name(self):
        calls.append("spec.name")
        return "from.property"
with_sub = D(__name__=S("  pkg.mod \n"), __spec__=types.SimpleNamespace(name="pkg.mod"))
missing = D()
not_str = {"__name__": 42, "__spec__": None}
hooked_spec = {"__name__": "x", "__spec__": Spec()}
empty_spec = {"__name__": "x", "__spec__": types.SimpleNamespace(name="")}
"#,
        );
        let facts = |name: &str| read_globals_facts(Some(&get(&g, name)));
        assert_eq!(
            facts("with_sub"),
            (
                GlobalsName::Str("  pkg.mod \n".into()),
                Some("pkg.mod".into())
            )
        );
        assert_eq!(facts("missing"), (GlobalsName::Missing, None));
        assert_eq!(
            facts("not_str"),
            (
                GlobalsName::NotStr {
                    type_name: "int".into()
                },
                None
            )
        );
        assert_eq!(facts("hooked_spec"), (GlobalsName::Str("x".into()), None));
        assert_eq!(facts("empty_spec"), (GlobalsName::Str("x".into()), None));
        assert_eq!(read_globals_facts(None), (GlobalsName::NoGlobals, None));
        assert_eq!(get(&g, "calls").len().unwrap(), 0);
        // The generic reader on a plain object.
        let spec = get(
            &get(&g, "with_sub").downcast_into::<PyDict>().unwrap(),
            "__spec__",
        );
        assert_eq!(
            read_attr_hook_free(&spec, "name"),
            AttrValue::str("pkg.mod")
        );
        assert_eq!(read_attr_hook_free(&spec, "nothing"), AttrValue::Absent);
    })
}

#[test]
fn n1_trims_and_accepts_str_subclass() {
    use ct_recorder::naming::{CodeFacts, GlobalsNamer, ModuleNamer};
    with_py(|py| {
        let g = exec(
            py,
            "class S(str):\n    def strip(self, *a):\n        raise RuntimeError('not called')\nglobs = {'__name__': S('\\t my-pkg.mod  ')}",
        );
        let (globals_name, spec_name) = read_globals_facts(Some(&get(&g, "globs")));
        assert_eq!(
            globals_name,
            GlobalsName::Str("\t my-pkg.mod  ".into()),
            "raw"
        );
        let facts = CodeFacts::new("/x/mod.py", "<module>", globals_name, spec_name);
        let naming = GlobalsNamer::new().name(&facts, &());
        assert_eq!(naming.label(true, "<module>"), "<my-pkg.mod>");
    })
}

/// Python side of the randomised differential test: one call of `step()` makes one random
/// change to the real `sys.modules` (only to keys it owns, prefixed `ctfz_`, plus the odd
/// non-`str` key), of the kinds the incremental scanner has to notice.
#[cfg(feature = "legacy-resolver")]
const FUZZ_STEP: &str = r#"
import random, sys, types, importlib.machinery as im

rng = random.Random(SEED)
PATHS = ['/fz/a.py', '/fz/b.py', '/fz/c.py', '/fz/a.pyc', '/fz/pkg/__init__.py', '/fz/d-x.py']
NAMES = ['fz.a', 'fz.b', 'bad name', '', 'fz_c', None, 3]
objects = []

class Sub(types.ModuleType):
    pass

class WithCached(types.ModuleType):
    __cached__ = '/fz/b.pyc'

def rand_attr_value():
    return rng.choice(PATHS + [None, 7, ''])

def new_object():
    kind = rng.random()
    if kind < 0.8:
        m = types.ModuleType('fz')
        if rng.random() < 0.8:
            m.__file__ = rand_attr_value()
        if rng.random() < 0.3:
            m.__cached__ = rand_attr_value()
        if rng.random() < 0.7:
            m.__spec__ = im.ModuleSpec(rng.choice(['fz.a', 'fz.b', 'x-y', '']), None,
                                       origin=rng.choice(PATHS + [None]))
        elif rng.random() < 0.5:
            m.__spec__ = None
        name = rng.choice(NAMES)
        if name is None:
            del m.__name__
        else:
            m.__name__ = name
    else:
        class Obj: pass
        m = Obj()
        m.__file__ = rand_attr_value()
    objects.append(m)
    return m

def own_keys():
    return [k for k in list(sys.modules) if isinstance(k, str) and k.startswith('ctfz_')]

def step():
    keys = own_keys()
    op = rng.randrange(16)
    if op <= 2 or not keys:
        sys.modules['ctfz_%d' % rng.randrange(10**6)] = new_object()
    elif op == 3:
        del sys.modules[rng.choice(keys)]
    elif op == 4:                                   # importlib's pop and re-insert
        k = rng.choice(keys)
        sys.modules[k] = sys.modules.pop(k)
    elif op == 5:                                   # replaced in place
        sys.modules[rng.choice(keys)] = new_object() if rng.random() < 0.8 else None
    elif op == 6:                                   # an alias of an existing object
        if objects:
            sys.modules['ctfz_%d' % rng.randrange(10**6)] = rng.choice(objects)
    elif op == 7:
        o = rng.choice(objects) if objects else new_object()
        o.__file__ = rand_attr_value()
    elif op == 8:
        o = rng.choice(objects) if objects else new_object()
        spec = getattr(o, '__spec__', None)
        if spec is not None:
            if rng.random() < 0.5:
                spec.origin = rng.choice(PATHS + [None])
            else:
                spec.name = rng.choice(['fz.a', 'fz.b', 'x-y', ''])
    elif op == 9:
        o = rng.choice(objects) if objects else new_object()
        spec = getattr(o, '__spec__', None)
        if spec is not None:
            spec.__dict__ = {'origin': rng.choice(PATHS), 'name': rng.choice(['fz.c', 'q q'])}
    elif op == 10:
        mods = [o for o in objects if isinstance(o, types.ModuleType)]
        if mods:
            rng.choice(mods).__class__ = rng.choice([Sub, WithCached, types.ModuleType])
    elif op == 11:
        WithCached.__cached__ = rng.choice(['/fz/b.pyc', '/fz/c.pyc', '/fz/a.pyc'])
    elif op == 12:                                  # many at once: resizes the dict
        for _ in range(rng.randrange(20, 200)):
            sys.modules['ctfz_%d' % rng.randrange(10**6)] = new_object()
    elif op == 13 and rng.random() < 0.5:           # many deletions
        for k in keys[: rng.randrange(len(keys) + 1)]:
            del sys.modules[k]
    elif op == 13:
        # popitem() shrinks the entry array in place: later insertions reuse positions.
        last = next(reversed(sys.modules))
        if isinstance(last, str) and last.startswith('ctfz_'):
            sys.modules.popitem()
            sys.modules['ctfz_%d' % rng.randrange(10**6)] = new_object()
    elif op == 14 and rng.random() < 0.5:           # a change no read depends on
        o = rng.choice(objects) if objects else new_object()
        spec = getattr(o, '__spec__', None)
        target = spec if spec is not None and rng.random() < 0.5 else o
        try:
            setattr(target, 'unrelated_%d' % rng.randrange(5), rng.random())
        except AttributeError:
            pass
    elif op == 14:
        if 424242 in sys.modules:
            del sys.modules[424242]
        elif rng.random() < 0.3:
            sys.modules[424242] = types.ModuleType('nonstr')
    else:
        o = rng.choice(objects) if objects else new_object()
        if rng.random() < 0.5:
            o.__name__ = rng.choice(['fz.a', 'bad name', ''])
        else:
            o.__spec__ = None

def cleanup():
    for k in own_keys():
        del sys.modules[k]
    sys.modules.pop(424242, None)
"#;

#[cfg(feature = "legacy-resolver")]
#[test]
fn incremental_and_generic_scans_match_the_reference_over_random_changes_to_real_sys_modules() {
    use ct_recorder::naming::legacy::scan::{ScanCache, ScanStats};
    use ct_recorder::naming::legacy::{LegacyResolver, ScanStrategy};
    use ct_recorder::naming::PySysModules;
    const TARGETS: [&str; 6] = [
        "/fz/a.py",
        "/fz/b.py",
        "/fz/c.py",
        "/fz/pkg/__init__.py",
        "/fz/d-x.py",
        "/fz/none.py",
    ];
    with_py(|py| {
        for seed in 0..4u32 {
            let code = FUZZ_STEP.replace("SEED", &seed.to_string());
            let g = exec(py, &code);
            let step = get(&g, "step");
            let table = PySysModules::new();
            let mut fast = LegacyResolver::new(&[], None);
            let mut slow = LegacyResolver::new(&[], None);
            slow.set_scan_strategy(ScanStrategy::Reference);
            // The generic cached scan, which the incremental one falls back to.
            let mut generic = ScanCache::new();
            let mut generic_stats = ScanStats::default();
            let mut named = 0;
            for i in 0..400 {
                step.call0()
                    .unwrap_or_else(|e| panic!("seed {seed} step {i}: {e}"));
                for target in TARGETS {
                    let expected = slow.scan(target, &table);
                    named += usize::from(expected.is_some());
                    assert_eq!(
                        fast.scan(target, &table),
                        expected,
                        "seed {seed}, step {i}, target {target}"
                    );
                    assert_eq!(
                        generic.scan(target, &table, &mut generic_stats),
                        expected,
                        "generic cache: seed {seed}, step {i}, target {target}"
                    );
                }
            }
            get(&g, "cleanup").call0().unwrap();
            // The sequence must have exercised answers, not just `None` everywhere.
            assert!(named > 100, "seed {seed}: only {named} answers");
            // The shortcuts were taken: entries found again after a pop and re-insert, and
            // instance-dict changes settled by a deep check.
            assert!(fast.stats().scan.moved > 0, "seed {seed}: no moved entry");
            assert!(
                fast.stats().scan.deep_checks > 0,
                "seed {seed}: no deep check"
            );
            // Far fewer entries read than the reference reads.
            let (fast_reads, slow_reads) = (
                fast.stats().scan.entries_read,
                slow.stats().scan.entries_read,
            );
            assert!(
                fast_reads * 4 < slow_reads,
                "seed {seed}: {fast_reads} reads vs {slow_reads}"
            );
        }
    })
}

/// Python side of the incremental-path differential test: a pool of real modules imported
/// by importlib from a generated tree (real specs, importlib's pop and re-insert), and the
/// changes a program makes between two lookups, several at a time: modules added, removed
/// and replaced in `sys.modules`, `__file__`, `__cached__`, `__spec__`, `spec.origin`,
/// `spec.name` and `spec.__dict__` changed, module bodies growing, and `sys.path` changed
/// (which the session roots must not see, L2.1).
#[cfg(feature = "legacy-resolver")]
const INCREMENTAL_STEP: &str = r#"
import importlib, random, sys, types, importlib.machinery as im

rng = random.Random(SEED)
ROOT = ROOT_DIR
saved_path = list(sys.path)
sys.path.insert(0, ROOT)
imported = []
N = COUNT

def path_of(i):
    return '%s/ctinc_p%d/m%d.py' % (ROOT, i % 7, i)

def targets():
    picks = [path_of(rng.randrange(N)) for _ in range(3)]
    picks.append('/inc/elsewhere.py')
    picks.append('%s/ctinc_p%d/__init__.py' % (ROOT, rng.randrange(7)))
    return picks

def own():
    return [k for k in list(sys.modules) if isinstance(k, str) and k.startswith('ctinc_')]

def step():
    op = rng.randrange(14)
    keys = own()
    if op <= 3 or not keys:                       # a real import: entry, body, pop, re-insert
        i = rng.randrange(N)
        try:
            imported.append(importlib.import_module('ctinc_p%d.m%d' % (i % 7, i)))
        except (ImportError, AttributeError):
            pass                                  # a package replaced by a plain module
    elif op == 4:                                 # removed
        del sys.modules[rng.choice(keys)]
    elif op == 5:                                 # replaced by a synthetic module
        k = rng.choice(keys)
        m = types.ModuleType(k)
        m.__file__ = path_of(rng.randrange(N))
        sys.modules[k] = m
    elif op == 6:                                 # an alias under a new key
        k = rng.choice(keys)
        sys.modules['ctinc_alias_%d' % rng.randrange(1000)] = sys.modules[k]
    elif op == 7:                                 # __file__ / __cached__ reassigned
        m = sys.modules[rng.choice(keys)]
        if rng.random() < 0.5:
            m.__file__ = path_of(rng.randrange(N))
        else:
            m.__cached__ = path_of(rng.randrange(N)) + 'c'
    elif op == 8:                                 # __spec__ replaced or set to None
        m = sys.modules[rng.choice(keys)]
        if rng.random() < 0.5:
            m.__spec__ = im.ModuleSpec(rng.choice(['inc.a', 'bad name', '']), None,
                                       origin=path_of(rng.randrange(N)))
        else:
            m.__spec__ = None
    elif op == 9:                                 # the spec changed in place
        spec = getattr(sys.modules[rng.choice(keys)], '__spec__', None)
        if spec is not None:
            if rng.random() < 0.5:
                spec.origin = path_of(rng.randrange(N))
            else:
                spec.name = rng.choice(['inc.b', 'x-y', ''])
    elif op == 10:                                # the spec's __dict__ rebound
        spec = getattr(sys.modules[rng.choice(keys)], '__spec__', None)
        if spec is not None:
            d = dict(vars(spec))                  # importlib still needs the other keys
            d.update(origin=path_of(rng.randrange(N)), name='inc.rebound')
            spec.__dict__ = d
    elif op == 11:                                # a module body grows (no fact changes)
        m = sys.modules[rng.choice(keys)]
        for j in range(rng.randrange(1, 20)):
            setattr(m, 'extra_%d' % j, j)
    elif op == 12:                                # sys.path changed
        ours = [i for i, p in enumerate(sys.path) if p.startswith(ROOT + '/')]
        if rng.random() < 0.5 or not ours:
            sys.path.insert(1, '%s/ctinc_p%d' % (ROOT, rng.randrange(7)))
        else:
            del sys.path[rng.choice(ours)]        # only entries this program added
    else:                                         # __name__ changed
        m = sys.modules[rng.choice(keys)]
        m.__name__ = rng.choice(['inc.c', 'bad name', ''])

def cleanup():
    for k in own():
        del sys.modules[k]
    sys.path[:] = saved_path
"#;

#[cfg(feature = "legacy-resolver")]
#[test]
fn incremental_path_matches_the_reference_with_several_changes_between_lookups() {
    use ct_recorder::naming::legacy::{watched_dict_count, LegacyResolver, ScanStrategy};
    use ct_recorder::naming::PySysModules;
    const COUNT: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    for p in 0..7 {
        let pkg = dir.path().join(format!("ctinc_p{p}"));
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(pkg.join("__init__.py"), "").unwrap();
    }
    for i in 0..COUNT {
        let file = dir.path().join(format!("ctinc_p{}/m{i}.py", i % 7));
        std::fs::write(
            &file,
            format!("def f(x):\n    return x + {i}\nVALUE = f(1)\n"),
        )
        .unwrap();
    }
    let root = dir.path().to_str().unwrap().to_string();
    with_py(|py| {
        for seed in 0..3u32 {
            let code = INCREMENTAL_STEP
                .replace("SEED", &seed.to_string())
                .replace("ROOT_DIR", &format!("{root:?}"))
                .replace("COUNT", &COUNT.to_string());
            let g = exec(py, &code);
            let (step, targets) = (get(&g, "step"), get(&g, "targets"));
            let table = PySysModules::new();
            // Both resolvers take their roots now; `sys.path` changes later (L2.1).
            let mut fast = LegacyResolver::from_python(py);
            let mut slow = LegacyResolver::from_python(py);
            slow.set_scan_strategy(ScanStrategy::Reference);
            let mut fast_l5 = LegacyResolver::from_python(py);
            let mut slow_l5 = LegacyResolver::from_python(py);
            slow_l5.set_scan_strategy(ScanStrategy::Reference);
            let roots = fast.roots().to_vec();
            let mut named = 0;
            for round in 0..120 {
                let changes = 1 + round % 5;
                for _ in 0..changes {
                    step.call0()
                        .unwrap_or_else(|e| panic!("seed {seed} round {round}: {e}"));
                }
                let picks: Vec<String> = targets.call0().unwrap().extract().unwrap();
                for target in &picks {
                    let expected = slow.scan(target, &table);
                    named += usize::from(expected.is_some());
                    assert_eq!(
                        fast.scan(target, &table),
                        expected,
                        "scan: seed {seed}, round {round}, target {target}"
                    );
                    // L5 (path cache, then the path candidate from the roots taken at
                    // the start, which must not follow `sys.path`).
                    assert_eq!(
                        fast_l5.resolve(target, &table),
                        slow_l5.resolve(target, &table),
                        "resolve: seed {seed}, round {round}, target {target}"
                    );
                }
            }
            get(&g, "cleanup").call0().unwrap();
            assert!(named > 100, "seed {seed}: only {named} answers");
            assert_eq!(fast_l5.roots(), roots.as_slice(), "roots taken once (L2.1)");
            let scan = &fast.stats().scan;
            if watched_dict_count().is_some() {
                // 3.12+: the watcher reported the changes; the mirror was built once and
                // kept up to date from the journal (a rebuild only for events it cannot
                // apply exactly, none in this program).
                assert!(scan.journal_events > 0, "seed {seed}: {scan:?}");
                assert!(scan.dirty_dicts > 0, "seed {seed}: {scan:?}");
                assert_eq!(scan.rebuilds, 1, "seed {seed}: {scan:?}");
                // importlib's pop and re-insert kept what was read.
                assert!(scan.moved > 0, "seed {seed}: {scan:?}");
            }
            assert!(scan.deep_checks > 0, "seed {seed}: {scan:?}");
            let slow_reads = slow.stats().scan.entries_read;
            assert!(
                scan.entries_read * 20 < slow_reads,
                "seed {seed}: {} reads vs {slow_reads}",
                scan.entries_read
            );
        }
    })
}

#[cfg(feature = "legacy-resolver")]
#[test]
fn the_watcher_unwatches_every_dict_when_the_last_reader_goes_and_stale_stamps_stay_exact() {
    use ct_recorder::naming::legacy::scan::{ScanCache, ScanStats};
    use ct_recorder::naming::legacy::{watched_dict_count, LegacyResolver, ScanStrategy};
    use ct_recorder::naming::PySysModules;
    with_py(|py| {
        exec(
            py,
            "import sys, types, importlib.machinery as im\nm = types.ModuleType('ct_quiet')\nm.__file__ = '/ct/quiet.py'\nm.__spec__ = im.ModuleSpec('ct.quiet', None, origin='/ct/quiet.py')\nsys.modules['ct_quiet'] = m",
        );
        let mut generic = ScanCache::new();
        let mut generic_stats = ScanStats::default();
        let mut slow = LegacyResolver::new(&[], None);
        slow.set_scan_strategy(ScanStrategy::Reference);
        {
            let table = PySysModules::new();
            let mut fast = LegacyResolver::new(&[], None);
            assert_eq!(fast.scan("/ct/quiet.py", &table), Some("ct.quiet".into()));
            // The generic cache's stamps watch the same dicts' counters.
            assert_eq!(
                generic.scan("/ct/quiet.py", &table, &mut generic_stats),
                Some("ct.quiet".into())
            );
            if let Some(n) = watched_dict_count() {
                assert!(n > 10, "sys.modules, module and spec dicts watched: {n}");
            }
        }
        // The session's reader is gone: nothing stays watched.
        if let Some(n) = watched_dict_count() {
            assert_eq!(n, 0, "dicts still watched after the last reader went");
        }
        // A change after that is not reported by any watcher; the stamps kept by the
        // generic cache must not vouch for the old read.
        exec(
            py,
            "import sys\nm = sys.modules['ct_quiet']\nm.__spec__.origin = '/ct/quiet2.py'\nm.__spec__.name = 'ct.quiet2'",
        );
        let table = PySysModules::new();
        for target in ["/ct/quiet.py", "/ct/quiet2.py"] {
            let expected = slow.scan(target, &table);
            assert_eq!(
                generic.scan(target, &table, &mut generic_stats),
                expected,
                "{target}"
            );
        }
        assert_eq!(slow.scan("/ct/quiet2.py", &table), Some("ct.quiet2".into()));
        exec(py, "import sys\ndel sys.modules['ct_quiet']");
    })
}
