//! The legacy engine over the *real* `sys.modules` of an embedded CPython: cost of naming
//! one newly imported module with 100 / 1,000 / 5,000 modules loaded, next to the
//! globals engine.
//!
//! `benches/naming.rs` measures the engines over the in-memory table; this one measures
//! what a recording pays: the incremental scanner (`naming::legacy::pyscan`) walking the
//! dict's entry array and checking each loaded module's watched words (its dict's version,
//! its spec's dict slot and version). With no change notification in CPython 3.11 that
//! walk is linear in the number of modules loaded; the figures show its cost per module.
//!
//! Each iteration imports a module the way importlib does (`sys.modules` entry first, body
//! next, then pop and re-insert), untimed, and names the `<module>` code object of the
//! next one, timed.

use std::ffi::CString;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use ct_recorder::naming::{CodeFacts, GlobalsName, GlobalsNamer, ModuleNamer, PySysModules};

const SIZES: [usize; 3] = [100, 1_000, 5_000];

const SETUP: &str = r#"
import sys, types, importlib.machinery as im

def make(i):
    name = 'ctbench_p%d.m%d' % (i % 37, i)
    path = '/site/ctbench_p%d/m%d.py' % (i % 37, i)
    m = types.ModuleType(name)
    m.__spec__ = im.ModuleSpec(name, None, origin=path)
    m.__file__ = path
    m.__cached__ = '/site/ctbench_p%d/__pycache__/m%d.cpython-311.pyc' % (i % 37, i)
    return name, m

def load(n):
    for k in [k for k in sys.modules if k.startswith('ctbench_')]:
        del sys.modules[k]
    for i in range(n):
        name, m = make(i)
        sys.modules[name] = m

def begin(i):
    name, m = make(i)
    sys.modules[name] = m
    m.__spec__._initializing = True
    return name

def end(name):
    m = sys.modules.pop(name)
    m.__spec__._initializing = False
    m.VALUE = 1
    sys.modules[name] = m
    del sys.modules[name]
"#;

fn facts(i: usize, name: &str) -> CodeFacts {
    CodeFacts::new(
        format!("/site/ctbench_p{}/m{i}.py", i % 37),
        "<module>",
        GlobalsName::Str(name.to_string()),
        None,
    )
}

fn bench(c: &mut Criterion) {
    pyo3::prepare_freethreaded_python();
    let mut group = c.benchmark_group("name_new_module_sys_modules");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    Python::with_gil(|py| {
        let g = PyDict::new(py);
        py.run(&CString::new(SETUP).unwrap(), Some(&g), None)
            .expect("bench setup");
        let call = |f: &str, arg: usize| -> String {
            let out = g.get_item(f).unwrap().unwrap().call1((arg,)).unwrap();
            out.extract::<Option<String>>().unwrap().unwrap_or_default()
        };
        for size in SIZES {
            call("load", size);
            let table = PySysModules::new();

            let mut globals = GlobalsNamer::new();
            let f = facts(size, "x");
            group.bench_with_input(BenchmarkId::new("globals", size), &size, |b, _| {
                b.iter(|| globals.name(black_box(&f), &table))
            });

            #[cfg(feature = "legacy-resolver")]
            {
                use ct_recorder::naming::legacy::{LegacyNamer, LegacyResolver, SysPathEntry};
                let resolver = LegacyResolver::new(&[SysPathEntry::from("/site")], Some("/"));
                let mut engine = LegacyNamer::new(resolver);
                let mut next = size;
                group.bench_with_input(BenchmarkId::new("legacy", size), &size, |b, _| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let i = next;
                            next += 1;
                            let name = call("begin", i);
                            let f = facts(i, &name);
                            let start = std::time::Instant::now();
                            let naming = engine.name(black_box(&f), &table);
                            total += start.elapsed();
                            assert_eq!(naming.name.as_deref(), Some(name.as_str()));
                            let end = g.get_item("end").unwrap().unwrap();
                            end.call1((name,)).unwrap();
                        }
                        total
                    })
                });
            }
            table.release();
        }
        call("load", 0);
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
