//! The three renderings of one realistic aggregate: gates first, readable in 100 columns,
//! Markdown that survives odd names, JSON that machines can rely on.

mod common;

use common::*;
use ct_reports::{aggregate, check, load_run, render, Aggregate, Format, GateResult, Gates};
use ct_shadow::{Engine, Exec};

const LONG: &str = "/home/ci/builds/runtime-team/monorepo/services/billing/src/billing/\
                    adapters/legacy/very_long_module_name_for_invoices.py";

/// Two runs with a bit of everything, and the documented gates (some fail).
fn report() -> (Aggregate, Vec<GateResult>) {
    let runs = Runs::new();
    let a = runs.record(
        "nightly-2024-05-01",
        Engine::Globals,
        &[
            agree(0),
            root_ambiguity(1),
            other(LONG),
            other("/srv/app/weird|name.py"),
            legacy_error("/srv/app/pkg/flaky.py"),
            filter_change(
                2,
                Exec::Skip,
                rule(
                    "/srv/app/.codetracer/trace-filter.toml",
                    3,
                    "pkg:glob:mypkg.*",
                ),
            ),
        ],
    );
    let b = runs.record(
        "nightly-2024-05-02",
        Engine::Globals,
        &[agree(0), other(LONG)],
    );
    let reports: Vec<_> = [a, b].iter().map(|d| load_run(d).unwrap()).collect();
    let agg = aggregate(&reports);
    let gates = Gates::from_manifest(
        "[gates]\nmin_runs = 2\nmin_comparisons = 10000\n\
         max_unexpected_divergence_rate = 0.001\nmax_filter_decision_changes = 0\n",
    )
    .unwrap();
    let results = check(&agg, &gates);
    (agg, results)
}

fn width(line: &str) -> usize {
    line.chars().count()
}

#[test]
fn table_fits_100_columns_and_leads_with_the_gates() {
    let (agg, gates) = report();
    let text = render(&agg, &gates, Format::Table);
    for line in text.lines() {
        assert!(width(line) <= 100, "{} columns: {line}", width(line));
    }
    assert!(text.ends_with('\n'));
    let at = |s: &str| {
        text.find(s)
            .unwrap_or_else(|| panic!("no {s:?} in\n{text}"))
    };
    assert!(at("GATES: FAILED (3 of 4)") < at("DIVERGENCES BY KIND"));
    assert!(at("DIVERGENCES BY KIND") < at("TOP UNEXPECTED DIVERGENCES"));
    assert!(text.contains("4 unexpected = 50%"), "{text}");
    // Passing gates say pass; failing ones say FAIL and why.
    let row = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap()
    };
    assert!(row("min_runs").ends_with("pass"), "{}", row("min_runs"));
    assert!(row("min_comparisons").ends_with("FAIL"));
    assert!(row("max_unexpected_divergence_rate").contains("≤ 0.1%"));
    assert!(
        text.contains("8 comparisons, at least 10,000 required"),
        "{text}"
    );
    // Worst kinds first; the rule pair behind the filter change; the long path keeps its tail.
    assert!(at("  other ") < at("  root_ambiguity "));
    assert!(text.contains("pkg:glob:mypkg.* (/srv/app/.codetracer/trace-filter.toml #3)"));
    assert!(text.contains("(chain default)"));
    assert!(
        text.contains("…module_name_for_invoices.py <module>"),
        "{text}"
    );
    // An engine error is wrapped, not cut.
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        joined.contains("legacy error: sys.modules entry raised on attribute access"),
        "{text}"
    );
    assert!(text.contains("nightly-2024-05-02"));
}

#[test]
fn table_keeps_a_rule_selector_whole_when_its_source_path_is_long() {
    // The rule line used to lose its middle, selector included ("pkg:glob:shop.…p/ci...").
    let source = "/home/ci/builds/runtime-team/monorepo/services/billing/.codetracer/\
                  trace-filter.toml";
    let runs = Runs::new();
    let dir = runs.record(
        "long-rule",
        Engine::Legacy,
        &[filter_change(
            0,
            Exec::Skip,
            rule(source, 3, "pkg:glob:billing.adapters.*"),
        )],
    );
    let text = render(&aggregate(&[load_run(&dir).unwrap()]), &[], Format::Table);
    for line in text.lines() {
        assert!(width(line) <= 100, "{} columns: {line}", width(line));
    }
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with("globals rule:"))
        .unwrap_or_else(|| panic!("no globals rule line in\n{text}"));
    assert!(
        lines[at]
            .trim_end()
            .ends_with("pkg:glob:billing.adapters.*"),
        "{}",
        lines[at]
    );
    let source_line = lines[at + 1].trim();
    assert!(source_line.starts_with("(/home/"), "{source_line}");
    assert!(
        source_line.ends_with(".codetracer/trace-filter.toml #3)"),
        "{source_line}"
    );
}

#[test]
fn table_shows_engine_names_whole_in_either_role() {
    // The shadow column was one column short of "globals" and showed "gl…als".
    let runs = Runs::new();
    let dirs = [
        runs.record("legacy-first", Engine::Legacy, &[agree(0)]),
        runs.record("globals-first", Engine::Globals, &[agree(0)]),
    ];
    let reports: Vec<_> = dirs.iter().map(|d| load_run(d).unwrap()).collect();
    let text = render(&aggregate(&reports), &[], Format::Table);
    for (run, engines) in [
        ("legacy-first", ["legacy", "globals"]),
        ("globals-first", ["globals", "legacy"]),
    ] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(run))
            .unwrap_or_else(|| panic!("no row for {run} in\n{text}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&cells[1..3], &engines, "{line}");
    }
}

#[test]
fn a_runs_notes_reach_both_human_formats() {
    let runs = Runs::new();
    let dir = runs.record(
        "killed",
        Engine::Globals,
        &[other("/srv/a.py"), other("/srv/b.py")],
    );
    let log = log_path(&dir);
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, &text[..text.len() - 30]).unwrap();
    let agg = aggregate(&[load_run(&dir).unwrap()]);
    let gates = check(
        &agg,
        &Gates::from_manifest("[gates]\nmin_runz = 1\n").unwrap(),
    );

    let table = render(&agg, &gates, Format::Table);
    assert!(table.contains("NOTES"), "{table}");
    let flat = table.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("killed: divergences.ndjson: the last line was cut short"),
        "{table}"
    );
    // The unknown gate shows no threshold to compare with.
    let row = table.lines().find(|l| l.contains("min_runz")).unwrap();
    assert!(row.contains("? -") && row.ends_with("FAIL"), "{row}");

    let md = render(&agg, &gates, Format::Markdown);
    assert!(md.contains("the last line was cut short"), "{md}");
}

#[test]
fn table_of_nothing_still_reads() {
    let text = render(&aggregate(&[]), &[], Format::Table);
    assert!(text.contains("GATES: none checked"), "{text}");
    assert!(
        text.contains("0 divergences (0 unexpected = no rate)"),
        "{text}"
    );
    assert!(text.contains("RUNS (0)"), "{text}");
}

/// Pipes that end Markdown table cells (not escaped with a backslash).
fn cell_pipes(line: &str) -> usize {
    let b = line.as_bytes();
    (0..b.len())
        .filter(|&i| b[i] == b'|' && (i == 0 || b[i - 1] != b'\\'))
        .count()
}

/// The cells of a Markdown table row, trimmed (escaped pipes stay inside their cell).
fn md_cells(line: &str) -> Vec<String> {
    if !line.starts_with('|') {
        return Vec::new();
    }
    let mut cells = vec![String::new()];
    let mut prev = ' ';
    for c in line.chars() {
        if c == '|' && prev != '\\' {
            cells.push(String::new());
        } else {
            cells.last_mut().unwrap().push(c);
        }
        prev = c;
    }
    let n = cells.len();
    cells[1..n - 1]
        .iter()
        .map(|c| c.trim().to_owned())
        .collect()
}

#[test]
fn markdown_tables_hold_together_around_odd_names() {
    let (agg, gates) = report();
    let text = render(&agg, &gates, Format::Markdown);
    assert!(
        text.starts_with("## Rollout report: ❌ gates failed\n"),
        "{text}"
    );
    // Every row of a table has as many cells as its header.
    let mut header = None;
    for line in text.lines() {
        if line.starts_with('|') {
            let n = cell_pipes(line);
            let h = *header.get_or_insert(n);
            assert_eq!(n, h, "row breaks its table: {line}");
        } else {
            header = None;
        }
    }
    assert!(text.contains("`/srv/app/weird\\|name.py`"), "{text}");
    // `<module>` would be swallowed as an HTML tag outside a code span.
    for (i, _) in text.match_indices("<module>") {
        assert_eq!(&text[i - 1..i], "`", "bare <module> at {i}");
    }
    // Cells are padded so the raw text lines up too; compare what each cell says.
    let has_row = |cells: &[&str]| {
        text.lines().any(|l| {
            let got = md_cells(l);
            got.len() >= cells.len() && got[..cells.len()] == *cells
        })
    };
    assert!(
        has_row(&["`max_filter_decision_changes`", "1", "≤ 0", "❌ **fail**"]),
        "{text}"
    );
    assert!(has_row(&["`min_runs`", "2", "≥ 2", "✅ pass"]), "{text}");
    assert!(has_row(&["`other`", "medium", "3", "0", "**3**"]), "{text}");
    // The delimiter rows carry the alignment: numbers to the right, verdicts centred.
    let delimiter = text
        .lines()
        .find(|l| l.starts_with("|-") || l.starts_with("|:"))
        .unwrap();
    let marks: Vec<&str> = delimiter.trim_matches('|').split('|').collect();
    assert!(
        marks[0].starts_with('-') && marks[0].ends_with('-'),
        "{delimiter}"
    );
    assert!(
        marks[1].starts_with('-') && marks[1].ends_with(':'),
        "{delimiter}"
    );
    assert!(
        marks[3].starts_with(':') && marks[3].ends_with(':'),
        "{delimiter}"
    );
}

#[test]
fn markdown_says_when_all_gates_pass() {
    let (agg, _) = report();
    let gates = check(
        &agg,
        &Gates::from_manifest("[gates]\nmin_runs = 1\n").unwrap(),
    );
    let text = render(&agg, &gates, Format::Markdown);
    assert!(
        text.starts_with("## Rollout report: ✅ all gates passed\n"),
        "{text}"
    );
}

#[test]
fn json_is_complete_and_stable() {
    let (agg, gates) = report();
    let text = render(&agg, &gates, Format::Json);
    assert_eq!(text, render(&agg, &gates, Format::Json));
    // Top-level fields in a fixed order.
    let pos = |k: &str| text.find(&format!("\"{k}\"")).unwrap();
    assert!(pos("schema") < pos("passed") && pos("passed") < pos("gates"));
    assert!(pos("gates") < pos("aggregate"));

    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["schema"], "ct-reports/report/v1");
    assert_eq!(v["passed"], false);
    let g = &v["gates"][2];
    assert_eq!(g["name"], "max_unexpected_divergence_rate");
    assert_eq!(g["passed"], false);
    // The gate compares the 95% Clopper–Pearson bound of 4 in 8, and shows the rate beside it.
    assert_eq!(g["actual"], ct_reports::confidence::upper_bound(4, 8));
    assert_eq!(g["threshold"], 0.001);
    assert_eq!(g["confidence"]["rate"], 0.5);
    assert_eq!(g["confidence"]["upper"], g["actual"]);
    assert_eq!(g["confidence"]["method"], "Clopper-Pearson");
    assert!(
        g["confidence"]["clean_comparisons_to_pass"]
            .as_u64()
            .unwrap()
            > 0
    );
    let a = &v["aggregate"];
    assert_eq!(a["run_count"], 2);
    assert_eq!(a["comparisons"], 8);
    assert_eq!(a["unexpected_rate"], 0.5);
    assert_eq!(a["divergences"]["by_kind"]["other"]["unexpected"], 3);
    assert_eq!(a["fallbacks"]["legacy"]["path_candidate"], 2);
    assert_eq!(a["engine_errors"]["legacy"], 1);
    let top = &a["top_unexpected"][0];
    assert_eq!(top["kind"], "other");
    assert_eq!(top["count"], 2);
    // The example is a whole divergence record, readable as one.
    let example: ct_shadow::Divergence = serde_json::from_value(top["example"].clone()).unwrap();
    assert_eq!(example.filename, LONG);
    let rule = &a["filter_decision_changes"]["rules"][0];
    assert_eq!(rule["from"], "skip");
    assert_eq!(rule["globals_rule"]["selector"], "pkg:glob:mypkg.*");
    assert_eq!(rule["legacy_rule"], serde_json::Value::Null);
    assert_eq!(a["runs"][0]["log"]["state"], "read");
}

#[test]
fn json_of_nothing_has_a_null_rate() {
    let text = render(&aggregate(&[]), &[], Format::Json);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["passed"], true);
    assert_eq!(v["gates"], serde_json::json!([]));
    assert_eq!(v["aggregate"]["unexpected_rate"], serde_json::Value::Null);
}

#[test]
fn formats_parse_from_their_names() {
    for f in Format::ALL {
        assert_eq!(f.as_str().parse::<Format>(), Ok(f));
    }
    assert_eq!("MD".parse::<Format>(), Ok(Format::Markdown));
    let e = "html".parse::<Format>().unwrap_err().to_string();
    assert!(
        e.contains("\"html\"") && e.contains("table, markdown or json"),
        "{e}"
    );
}

/// Display columns, as a terminal counts them: a CJK ideograph or an emoji takes two.
fn display_width(line: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(line)
}

#[test]
fn table_counts_wide_glyphs_as_two_columns() {
    // Each ideograph takes two columns: counted as one, rows overflowed and columns drifted.
    let wide = "/srv/应用/价格服务/计算模块/非常非常长的文件名字用来测试宽字符的显示宽度.py";
    let runs = Runs::new();
    let a = runs.record(
        "运行-一",
        Engine::Globals,
        &[other(wide), other("/srv/app/narrow.py")],
    );
    let b = runs.record("run-two", Engine::Legacy, &[other(wide)]);
    let reports: Vec<_> = [a, b].iter().map(|d| load_run(d).unwrap()).collect();
    let text = render(&aggregate(&reports), &[], Format::Table);
    for line in text.lines() {
        assert!(
            display_width(line) <= 100,
            "{} columns: {line}",
            display_width(line)
        );
    }
    // The wide path lost its middle, not its file name.
    assert!(text.contains("的显示宽度.py <module>"), "{text}");
    // In the RUNS table the engine column starts at the same display column on every row.
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| l.starts_with("RUNS")).unwrap();
    let starts: Vec<usize> = lines[at + 1..at + 4]
        .iter()
        .map(|l| {
            let i = [" primary", " globals", " legacy"]
                .iter()
                .filter_map(|e| l.find(e))
                .min()
                .unwrap_or_else(|| panic!("no engine in {l:?}\n{text}"));
            display_width(&l[..i])
        })
        .collect();
    assert!(starts.iter().all(|&s| s == starts[0]), "{starts:?}\n{text}");
}

#[test]
fn runs_table_names_each_run_by_id_and_directory() {
    let runs = Runs::new();
    let dirs = [
        runs.record("1796144562-14046", Engine::Legacy, &[agree(0)]),
        runs.record("1796144563-14054", Engine::Legacy, &[agree(0)]),
    ];
    let reports: Vec<_> = dirs.iter().map(|d| load_run(d).unwrap()).collect();
    let agg = aggregate(&reports);
    let text = render(&agg, &[], Format::Table);
    for (dir, id) in dirs.iter().zip(["1796144562-14046", "1796144563-14054"]) {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(id))
            .unwrap_or_else(|| panic!("no row for {id} in\n{text}"));
        // The directory is the last cell; a long one keeps its tail (the run's own name).
        let shown = line.split_whitespace().last().unwrap();
        let dir = dir.display().to_string();
        assert!(
            dir.ends_with(shown.trim_start_matches('…')),
            "{shown} vs {dir}"
        );
        assert!(display_width(line) <= 100, "{line}");
    }
    let md = render(&agg, &[], Format::Markdown);
    assert!(md.contains(&format!("`{}`", dirs[0].display())), "{md}");
    assert!(md.contains("<summary>2 runs</summary>"), "{md}");
    let one = render(&aggregate(&reports[..1]), &[], Format::Markdown);
    assert!(one.contains("<summary>1 run</summary>"), "{one}");
    assert!(one.contains("**1** run · "), "{one}");
}

#[test]
fn markdown_of_nothing_keeps_its_tables_whole() {
    let text = render(&aggregate(&[]), &[], Format::Markdown);
    // A header row without its delimiter row is not a table in GitHub-flavoured Markdown.
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with('|') && (i == 0 || !lines[i - 1].starts_with('|')) {
            let next = lines.get(i + 1).copied().unwrap_or("");
            assert!(
                next.starts_with("|-") || next.starts_with("|:"),
                "header without delimiter: {line}\n{text}"
            );
        }
    }
}
