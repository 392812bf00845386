//! Cost of naming one newly imported module, per engine, with 100 / 1,000 / 5,000 modules
//! already in `sys.modules` (the in-memory table).
//!
//! - `globals`: the ADR 0016 engine (reads only the code object's facts);
//! - `legacy_cached`: the legacy engine as shipped (cached per-entry scan);
//! - `legacy_reference`: the literal L4 scan, every entry read on every lookup — what the
//!   cache saves.
//!
//! Each legacy iteration imports a fresh module (appended to the table, as `sys.modules`
//! does before the body runs) and names its `<module>` code object; only the naming call
//! is timed. The module is then removed again, so the table keeps its size.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

use ct_recorder::naming::{
    AttrValue, CodeFacts, GlobalsName, GlobalsNamer, MemObject, MemTable, ModuleNamer, ObjectAttrs,
    SpecValue,
};

const SIZES: [usize; 3] = [100, 1_000, 5_000];

fn module(i: usize) -> (String, MemObject) {
    let name = format!("pkg{}.mod{i}", i % 37);
    let file = format!("/site/pkg{}/mod{i}.py", i % 37);
    let object = MemObject::new(ObjectAttrs {
        spec: SpecValue::object(AttrValue::str(&file), AttrValue::str(&name)),
        cached: AttrValue::str(format!(
            "/site/pkg{}/__pycache__/mod{i}.cpython-311.pyc",
            i % 37
        )),
        file: AttrValue::Str(file),
        name: AttrValue::str(&name),
    });
    (name, object)
}

fn table_of(size: usize) -> MemTable {
    let mut table = MemTable::new();
    for i in 0..size {
        let (name, object) = module(i);
        table.set(&name, object);
    }
    table
}

fn module_facts(i: usize) -> CodeFacts {
    let (name, _) = module(i);
    CodeFacts::new(
        format!("/site/pkg{}/mod{i}.py", i % 37),
        "<module>",
        GlobalsName::Str(name),
        None,
    )
}

/// Times only `engine.name(..)` for a module imported just before.
#[cfg(feature = "legacy-resolver")]
fn time_new_modules(
    engine: &mut dyn ModuleNamer,
    table: &mut MemTable,
    iters: u64,
    next: &mut usize,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let i = *next;
        *next += 1;
        let (name, object) = module(i);
        table.set(&name, object);
        let facts = module_facts(i);
        let start = std::time::Instant::now();
        let naming = engine.name(black_box(&facts), table);
        total += start.elapsed();
        assert_eq!(naming.name.as_deref(), Some(name.as_str()));
        table.remove_at(table.len() - 1);
    }
    total
}

fn bench_engines(c: &mut Criterion) {
    let mut group = c.benchmark_group("name_new_module");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for size in SIZES {
        // Only the legacy benches import modules into the table.
        #[cfg_attr(not(feature = "legacy-resolver"), allow(unused_mut))]
        let mut table = table_of(size);

        let mut globals = GlobalsNamer::new();
        let facts = module_facts(size);
        group.bench_with_input(BenchmarkId::new("globals", size), &size, |b, _| {
            b.iter(|| globals.name(black_box(&facts), &table))
        });

        #[cfg(feature = "legacy-resolver")]
        {
            use ct_recorder::naming::legacy::{
                LegacyNamer, LegacyResolver, ScanStrategy, SysPathEntry,
            };
            for (label, strategy) in [
                ("legacy_cached", ScanStrategy::Cached),
                ("legacy_reference", ScanStrategy::Reference),
            ] {
                let mut resolver = LegacyResolver::new(&[SysPathEntry::from("/site")], Some("/"));
                resolver.set_scan_strategy(strategy);
                let mut engine = LegacyNamer::new(resolver);
                let mut next = size;
                group.bench_with_input(BenchmarkId::new(label, size), &size, |b, _| {
                    b.iter_custom(|iters| {
                        time_new_modules(&mut engine, &mut table, iters, &mut next)
                    })
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench_engines);
criterion_main!(benches);
