//! Filter engine micro-benchmarks.
//!
//! - `new_code_object`: what the tracer pays at the first event of a code object: relative
//!   path, legacy module name (F4.3, resolver answer given), scope context and evaluation,
//!   with the builtin filter plus a generated 200-rule project filter.
//! - `value_action`: what it pays per recorded value on a cached decision.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ct_recorder::filters::{legacy_filter_module_name, FilterChain, LoadOptions, ValueKind};
use std::fmt::Write as _;

fn project_filter(rules: usize) -> String {
    let mut s = String::from(
        "[meta]\nname = \"bench\"\nversion = 1\n\n[scope]\ndefault_exec = \"trace\"\ndefault_value_action = \"allow\"\n\n",
    );
    for i in 0..rules {
        let selector = match i % 5 {
            0 => format!("pkg:svc{i}.*"),
            1 => format!("file:src/svc{i}/**/*.py"),
            2 => format!("obj:regex:^svc{i}\\.handlers\\.[A-Z]\\w+\\.run$"),
            3 => format!("pkg:literal:svc{i}.core"),
            _ => format!("pkg:regex:^(svc{i}|legacy{i})(\\.|$)"),
        };
        let exec = if i % 2 == 0 { "skip" } else { "trace" };
        write!(
            s,
            "[[scope.rules]]\nselector = '{selector}'\nexec = \"{exec}\"\n"
        )
        .unwrap();
        if i % 10 == 0 {
            write!(
                s,
                "[[scope.rules.value_patterns]]\nselector = 'local:tmp_*'\naction = \"drop\"\n\
                 [[scope.rules.value_patterns]]\nselector = 'arg:regex:(?i)secret'\naction = \"redact\"\n"
            )
            .unwrap();
        }
        s.push('\n');
    }
    s
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("proj");
    std::fs::create_dir_all(root.join(".codetracer")).unwrap();
    std::fs::write(
        root.join(".codetracer/trace-filter.toml"),
        project_filter(200),
    )
    .unwrap();
    let chain = FilterChain::load(&LoadOptions {
        program_dir: Some(root.clone()),
        ..LoadOptions::default()
    })
    .unwrap();
    assert_eq!(chain.rules().len(), 7 + 200);

    let root_s = root.display().to_string();
    let code_objects: Vec<(String, &str, &str)> = vec![
        (
            format!("{root_s}/src/svc42/handlers.py"),
            "svc42.handlers",
            "Handler.run",
        ),
        (format!("{root_s}/src/app/main.py"), "__main__", "<module>"),
        (
            format!("{root_s}/tests/test_x.py"),
            "tests.test_x",
            "test_it",
        ),
        (
            "/usr/lib/python3.11/json/decoder.py".to_string(),
            "json.decoder",
            "JSONDecoder.decode",
        ),
        (
            "/home/u/.venv/lib/python3.11/site-packages/requests/api.py".to_string(),
            "requests.api",
            "get",
        ),
        (
            "<frozen importlib._bootstrap>".to_string(),
            "importlib._bootstrap",
            "_find_and_load",
        ),
    ];

    c.bench_function("new_code_object/builtin+200_rules", |b| {
        let mut i = 0;
        b.iter(|| {
            let (file, answer, qualname) = &code_objects[i % code_objects.len()];
            i += 1;
            let rel = chain.relative_path(file);
            let name = legacy_filter_module_name(rel.as_deref(), Some(answer));
            let ctx = chain.scope_context(file, name.as_deref(), qualname);
            black_box(chain.evaluate(&ctx))
        })
    });

    let (file, answer, qualname) = &code_objects[0];
    let ctx = chain.scope_context(file, Some(answer), qualname);
    let decision = chain.evaluate(&ctx);
    let builtin = FilterChain::builtin_only();
    let builtin_decision =
        builtin.evaluate(&builtin.scope_context("/home/u/app/main.py", Some("main"), "main"));

    c.bench_function("value_action/builtin_redaction_patterns", |b| {
        b.iter(|| {
            builtin_decision.value_action(black_box(ValueKind::Local), black_box("user_count"))
        })
    });
    c.bench_function("value_action/no_patterns_default", |b| {
        b.iter(|| decision.value_action(black_box(ValueKind::Attr), black_box("user_count")))
    });
    let glob_decision =
        chain.evaluate(&chain.scope_context(&format!("{root_s}/src/x.py"), Some("svc0.core"), "f"));
    c.bench_function("value_action/glob_pattern_hit", |b| {
        b.iter(|| glob_decision.value_action(black_box(ValueKind::Local), black_box("tmp_file")))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
