//! Differential test of the cached `sys.modules` scan against the literal one (L4): random
//! tables and random mutation sequences (seeded, reproducible), identical answers required
//! after every step, for the scan alone and for whole resolvers (L5 path cache included).
#![cfg(feature = "legacy-resolver")]

use ct_recorder::naming::legacy::scan::{reference_scan, ScanCache, ScanStats};
use ct_recorder::naming::legacy::{LegacyResolver, ScanStrategy, SysPathEntry};
use ct_recorder::naming::{AttrValue, MemObject, MemTable, MemValue, ObjectAttrs, SpecValue};

/// SplitMix64: small, seedable, good enough for test-case generation.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Candidate paths, raw (normalisation, `.pyc`, `__pycache__`, `..`, root, empty...).
const PATHS: &[&str] = &[
    "/p/a.py",
    "/p/a.pyc",
    "/p//a.py",
    "/p/./b.py",
    "/p/b.py",
    "/p/__pycache__/a.cpython-311.pyc",
    "/q/c.py",
    "/q/c.pyc",
    "/p/x/../a.py",
    "rel/a.py",
    "/",
    "",
    ".",
];

/// Targets (already normalised, as the resolver gets them).
const TARGETS: &[&str] = &[
    "/p/a.py",
    "/p/b.py",
    "/q/c.py",
    "/q/c.pyc",
    "/p/a.pyc",
    "/p/x/../a.py",
    "rel/a.py",
    "",
    "/nope.py",
];

/// Names: valid, invalid, empty, `__main__`.
const NAMES: &[&str] = &[
    "a",
    "pkg.a",
    "__main__",
    "my-mod",
    "",
    "b",
    "x..y",
    "<run_path>",
    " a",
];

/// `sys.modules` keys (a small pool, so keys collide and get replaced).
const KEYS: &[&str] = &[
    "a", "pkg.a", "__main__", "b", "my-mod", "", "c", "d", "e", "f",
];

fn attr(rng: &mut Rng, pool: &[&str]) -> AttrValue {
    match rng.below(100) {
        0..=24 => AttrValue::Absent,
        25..=79 => AttrValue::str(rng.pick(pool)),
        80..=89 => AttrValue::NotStr,
        _ => AttrValue::HookOnly,
    }
}

fn spec(rng: &mut Rng) -> SpecValue {
    match rng.below(100) {
        0..=19 => SpecValue::Absent,
        20..=34 => SpecValue::None,
        35..=39 => SpecValue::HookOnly,
        _ => SpecValue::object(attr(rng, PATHS), attr(rng, NAMES)),
    }
}

fn attrs(rng: &mut Rng) -> ObjectAttrs {
    ObjectAttrs {
        spec: spec(rng),
        file: attr(rng, PATHS),
        cached: attr(rng, PATHS),
        name: attr(rng, NAMES),
    }
}

/// A value: a new object, `None`, or an object created earlier (alias, or a module that was
/// removed and comes back, possibly changed meanwhile).
fn value(rng: &mut Rng, objects: &mut Vec<MemObject>) -> MemValue {
    match rng.below(100) {
        0..=9 => MemValue::None,
        10..=39 if !objects.is_empty() => {
            MemValue::Object(objects[rng.below(objects.len())].clone())
        }
        _ => {
            let object = MemObject::new(attrs(rng));
            objects.push(object.clone());
            MemValue::Object(object)
        }
    }
}

/// One random change of the table or of an object in it (or out of it).
fn mutate(rng: &mut Rng, table: &mut MemTable, objects: &mut Vec<MemObject>) {
    match rng.below(100) {
        // Import: a new entry, or a value replaced under an existing key.
        0..=29 => {
            let key = rng.pick(KEYS);
            let v = value(rng, objects);
            table.set(key, v);
        }
        30..=31 => {
            let v = value(rng, objects);
            table.insert_non_str_key(v);
        }
        32..=44 if !table.is_empty() => {
            let i = rng.below(table.len());
            table.remove_at(i);
        }
        45..=54 if !table.is_empty() => {
            let i = rng.below(table.len());
            let v = value(rng, objects);
            table.set_at(i, v);
        }
        // Re-insertion moves a key to the end (new key object).
        55..=59 if !table.is_empty() => {
            let i = rng.below(table.len());
            let (key, v) = table.entry_at(i);
            let (key, v) = (key.map(str::to_string), v.clone());
            table.remove_at(i);
            match key {
                Some(key) => table.set(&key, v),
                None => {
                    table.insert_non_str_key(v);
                }
            }
        }
        // Attribute change on a live or dead object (`__file__` set during import...).
        _ if !objects.is_empty() => {
            let object = objects[rng.below(objects.len())].clone();
            let which = rng.below(6);
            let new_path = attr(rng, PATHS);
            let new_name = attr(rng, NAMES);
            let new_spec = spec(rng);
            object.update(|a| match which {
                0 => a.file = new_path,
                1 => a.cached = new_path,
                2 => a.name = new_name,
                3 => a.spec = new_spec,
                4 => {
                    if let SpecValue::Object { origin, .. } = &mut a.spec {
                        *origin = new_path;
                    } else {
                        a.spec = SpecValue::object(new_path, AttrValue::Absent);
                    }
                }
                _ => {
                    if let SpecValue::Object { name, .. } = &mut a.spec {
                        *name = new_name;
                    } else {
                        a.spec = SpecValue::object(AttrValue::Absent, new_name);
                    }
                }
            });
        }
        _ => {}
    }
}

fn initial_table(rng: &mut Rng, size: usize, objects: &mut Vec<MemObject>) -> MemTable {
    let mut table = MemTable::new();
    for _ in 0..size {
        let key = rng.pick(KEYS);
        let v = value(rng, objects);
        table.set(key, v);
    }
    table
}

#[test]
fn cached_scan_matches_reference_scan_on_random_tables_and_mutations() {
    let mut comparisons = 0u64;
    let mut found = 0u64;
    let mut aborted = 0u64;
    let (mut cached_reads, mut reference_reads) = (0u64, 0u64);
    for seed in 0..2500u64 {
        let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xC0FFEE);
        let mut objects = Vec::new();
        let size = rng.below(8);
        let mut table = initial_table(&mut rng, size, &mut objects);
        let mut cache = ScanCache::new();
        let mut cached_stats = ScanStats::default();
        let mut reference_stats = ScanStats::default();
        let steps = 10 + rng.below(40);
        for step in 0..steps {
            mutate(&mut rng, &mut table, &mut objects);
            for _ in 0..1 + rng.below(3) {
                let target = rng.pick(TARGETS);
                let expected = reference_scan(target, &table, &mut reference_stats);
                let got = cache.scan(target, &table, &mut cached_stats);
                assert_eq!(
                    got, expected,
                    "seed {seed} step {step} target {target:?}\ntable {table:#?}"
                );
                assert!(cache.len() <= table.len(), "cache swept to the table");
                comparisons += 1;
                found += u64::from(expected.is_some());
            }
        }
        aborted += reference_stats.non_str_key_aborts;
        cached_reads += cached_stats.entries_read;
        reference_reads += reference_stats.entries_read;
    }
    assert!(comparisons > 50_000, "{comparisons}");
    // The generator must exercise every outcome, or the test proves little.
    assert!(found > comparisons / 10, "found {found} of {comparisons}");
    assert!(
        found < comparisons * 9 / 10,
        "found {found} of {comparisons}"
    );
    assert!(aborted > 100, "non-str aborts {aborted}");
    assert!(
        cached_reads * 2 < reference_reads,
        "cache ineffective: {cached_reads} vs {reference_reads}"
    );
}

#[test]
fn cached_resolver_matches_reference_resolver_including_path_cache() {
    let roots: Vec<SysPathEntry> = ["/p", "/q/", "rel", ""]
        .iter()
        .map(|s| SysPathEntry::from(*s))
        .collect();
    for seed in 0..1000u64 {
        let mut rng = Rng(seed ^ 0x5EED_0000);
        let mut objects = Vec::new();
        let size = rng.below(10);
        let mut table = initial_table(&mut rng, size, &mut objects);
        let mut fast = LegacyResolver::new(&roots, Some("/p"));
        let mut slow = LegacyResolver::new(&roots, Some("/p"));
        slow.set_scan_strategy(ScanStrategy::Reference);
        for step in 0..30 {
            mutate(&mut rng, &mut table, &mut objects);
            let target = rng.pick(TARGETS);
            assert_eq!(
                fast.resolve(target, &table),
                slow.resolve(target, &table),
                "seed {seed} step {step} target {target:?}"
            );
        }
        assert_eq!(fast.stats().path_cache_hits, slow.stats().path_cache_hits);
    }
}

#[test]
fn cached_scan_matches_reference_on_large_tables() {
    for seed in 0..20u64 {
        let mut rng = Rng(seed ^ 0xB16_7AB1E);
        let mut objects = Vec::new();
        let mut table = MemTable::new();
        // Many distinct keys, so the table really grows.
        for i in 0..300 {
            let v = value(&mut rng, &mut objects);
            table.set(&format!("m{i}"), v);
        }
        let mut cache = ScanCache::new();
        let mut stats = ScanStats::default();
        for step in 0..200 {
            if rng.chance(50) {
                let i = rng.below(1000);
                let v = value(&mut rng, &mut objects);
                table.set(&format!("m{i}"), v);
            } else {
                mutate(&mut rng, &mut table, &mut objects);
            }
            let target = rng.pick(TARGETS);
            let expected = reference_scan(target, &table, &mut ScanStats::default());
            assert_eq!(
                cache.scan(target, &table, &mut stats),
                expected,
                "seed {seed} step {step}"
            );
        }
    }
}
