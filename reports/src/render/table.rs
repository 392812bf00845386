//! [`Format::Table`](super::Format::Table): aligned plain text, at most
//! [`TABLE_WIDTH`] columns, worst news first.

use crate::aggregate::{Aggregate, DivergenceGroup};
use crate::format::{count, elide, n_of, name_or_none, rate, width, wrap};
use crate::gates::{all_passed, GateResult};

use super::grid::{terminal, Align, REST};
use super::{rule_text, TABLE_WIDTH};

const W: usize = TABLE_WIDTH;

/// `text` after `indent` spaces, elided to fit [`W`].
fn indented(indent: usize, text: &str) -> String {
    format!("{:indent$}{}", "", elide(text, W - indent))
}

pub(super) fn render(agg: &Aggregate, gates: &[GateResult]) -> String {
    let mut out: Vec<String> = Vec::new();
    headline(agg, &mut out);
    out.push(String::new());
    gates_section(gates, &mut out);
    out.push(String::new());
    confidence_section(agg, gates, &mut out);
    kinds_section(agg, &mut out);
    out.push(String::new());
    filter_section(agg, &mut out);
    out.push(String::new());
    top_section(agg, &mut out);
    out.push(String::new());
    engines_section(agg, &mut out);
    out.push(String::new());
    runs_section(agg, &mut out);
    let mut text = out.join("\n");
    text.push('\n');
    debug_assert!(text.lines().all(|l| width(l) <= W), "{text}");
    text
}

fn headline(agg: &Aggregate, out: &mut Vec<String>) {
    let d = &agg.divergences;
    let rate_text = agg
        .unexpected_rate
        .map_or_else(|| "no rate".to_owned(), rate);
    out.push(elide(
        &format!(
            "ROLLOUT REPORT: {} · {} · {} ({} unexpected = {rate_text})",
            n_of(agg.run_count, "run", "runs"),
            n_of(agg.comparisons, "comparison", "comparisons"),
            n_of(d.total, "divergence", "divergences"),
            count(d.unexpected),
        ),
        W,
    ));
    out.push(format!(
        "  {} · not compared: {} sampled out, {} after the time budget ran out",
        n_of(
            agg.filter_decision_changes.total,
            "filter decision change",
            "filter decision changes"
        ),
        count(agg.skipped.sampled_out),
        count(agg.skipped.budget_exhausted)
    ));
}

fn gates_section(gates: &[GateResult], out: &mut Vec<String>) {
    if gates.is_empty() {
        out.push("GATES: none checked".to_owned());
        return;
    }
    let failed = gates.iter().filter(|g| !g.passed).count();
    out.push(if all_passed(gates) {
        format!("GATES: PASSED (all {})", gates.len())
    } else {
        format!("GATES: FAILED ({failed} of {})", gates.len())
    });
    let rows: Vec<Vec<String>> = gates
        .iter()
        .map(|g| {
            vec![
                g.name.clone(),
                g.actual.to_string(),
                format!("{} {}", g.relation(), g.threshold),
                if g.passed { "pass" } else { "FAIL" }.to_owned(),
            ]
        })
        .collect();
    let mut lines = terminal(
        &[
            (32, Align::Left),
            (12, Align::Right),
            (14, Align::Right),
            (7, Align::Left),
        ],
        &["gate", "actual", "threshold", "verdict"],
        &rows,
    )
    .into_iter();
    out.extend(lines.next());
    // Each failing gate's row is followed by why it failed.
    for (g, line) in gates.iter().zip(lines) {
        out.push(line);
        if !g.passed {
            out.extend(wrap(&g.explanation, "      ", W));
        }
    }
}

/// `text` wrapped at [`W`], indented by two, continuation lines by four.
fn hanging(text: &str) -> Vec<String> {
    let mut lines = wrap(text, "    ", W);
    if let Some(first) = lines.first_mut() {
        *first = format!("  {}", first.trim_start());
    }
    lines
}

/// The rate with its bound, and the runs counted once (see `super::evidence`).
fn confidence_section(agg: &Aggregate, gates: &[GateResult], out: &mut Vec<String>) {
    let lines = super::evidence::confidence_lines(agg, gates);
    if !lines.is_empty() {
        out.push(super::evidence::confidence_heading().to_uppercase());
        for l in lines {
            out.extend(hanging(&l));
        }
        out.push(String::new());
    }
    if agg.run_count > 0 {
        out.push(super::evidence::programs_heading().to_uppercase());
        out.extend(hanging(&super::evidence::programs_line(agg)));
        out.push(String::new());
    }
    let dups = super::evidence::duplicate_notes(agg);
    if !dups.is_empty() {
        out.push("EVIDENCE (EACH RUN COUNTED ONCE)".to_owned());
        for d in dups {
            out.extend(hanging(&d));
        }
        out.push(String::new());
    }
}

fn kinds_section(agg: &Aggregate, out: &mut Vec<String>) {
    out.push("DIVERGENCES BY KIND (unexpected first, then by severity)".to_owned());
    let kinds = agg.divergences.worst_first();
    if kinds.is_empty() {
        out.push("  none".to_owned());
        return;
    }
    let rows: Vec<Vec<String>> = kinds
        .iter()
        .map(|(kind, c)| {
            vec![
                kind.to_string(),
                c.severity.as_str().to_owned(),
                count(c.expected + c.unexpected),
                count(c.expected),
                count(c.unexpected),
            ]
        })
        .collect();
    out.extend(terminal(
        &[
            (26, Align::Left),
            (8, Align::Left),
            (10, Align::Right),
            (10, Align::Right),
            (10, Align::Right),
        ],
        &["kind", "severity", "total", "expected", "unexpected"],
        &rows,
    ));
}

fn filter_section(agg: &Aggregate, out: &mut Vec<String>) {
    let f = &agg.filter_decision_changes;
    out.push(format!(
        "FILTER DECISION CHANGES (legacy → globals): {} · trace→skip {} · skip→trace {}",
        count(f.total),
        count(f.trace_to_skip),
        count(f.skip_to_trace)
    ));
    if f.total == 0 && f.rules.is_empty() {
        out.push("  none".to_owned());
        return;
    }
    if f.rules.is_empty() {
        out.push("  no divergence log records them: see the runs' notes".to_owned());
    }
    for r in &f.rules {
        let e = &r.example;
        let head = format!(
            "  {:>6}×  {}→{}  e.g. ",
            count(r.count),
            r.from.as_str(),
            r.to.as_str()
        );
        let code = format!("{} {}", e.filename, e.qualname);
        out.push(format!("{head}{}", elide(&code, W - width(&head))));
        let names = format!(
            "legacy {} · globals {}",
            name_or_none(e.legacy_name.as_deref()),
            name_or_none(e.globals_name.as_deref())
        );
        out.push(indented(12, &format!("names:          {names}")));
        if e.filters_judged_other_names() {
            // The filters tested other names than the labels: without them the rules below
            // would contradict the names above.
            let judged = format!(
                "legacy {} · globals {}",
                name_or_none(e.legacy_filter_name.as_deref()),
                name_or_none(e.globals_filter_name.as_deref())
            );
            out.push(indented(12, &format!("filters judged: {judged}")));
        }
        for (label, rule) in [
            ("legacy rule:", &r.legacy_rule),
            ("globals rule:", &r.globals_rule),
        ] {
            let prefix = format!("{label:<16}");
            let whole = format!("{prefix}{}", rule_text(rule));
            match rule {
                // Too long for one line: the selector whole on its own, the source below
                // (a long path loses its middle, never the selector or the file name).
                Some(rule) if 12 + width(&whole) > W => {
                    out.push(indented(12, &format!("{prefix}{}", rule.selector)));
                    out.push(indented(
                        12 + width(&prefix),
                        &format!("({} #{})", rule.source, rule.index),
                    ));
                }
                _ => out.push(indented(12, &whole)),
            }
        }
    }
}

fn top_section(agg: &Aggregate, out: &mut Vec<String>) {
    out.push(format!(
        "TOP UNEXPECTED DIVERGENCES ({} of {} distinct, by kind, file and qualname)",
        agg.top_unexpected.len(),
        count(agg.distinct_unexpected)
    ));
    if agg.top_unexpected.is_empty() {
        out.push(if agg.divergences.unexpected > 0 {
            "  none in the divergence logs: see the runs' notes".to_owned()
        } else {
            "  none".to_owned()
        });
        return;
    }
    let rows: Vec<Vec<String>> = agg
        .top_unexpected
        .iter()
        .map(|g| {
            vec![
                count(g.count),
                count(g.runs),
                g.kind.as_str().to_owned(),
                format!("{} {}", g.filename, g.qualname),
            ]
        })
        .collect();
    let mut lines = terminal(
        &[
            (7, Align::Right),
            (5, Align::Right),
            (23, Align::Left),
            (55, Align::Left),
        ],
        &["count", "runs", "kind", "code object"],
        &rows,
    )
    .into_iter();
    let header = lines.next().unwrap_or_default();
    // The example's details line up under the code object they belong to.
    let indent = header
        .find("code object")
        .map_or(4, |at| width(&header[..at]));
    out.push(header);
    for (g, line) in agg.top_unexpected.iter().zip(lines) {
        out.push(line);
        for detail in example_details(g) {
            out.extend(wrap(&detail, &" ".repeat(indent), W));
        }
    }
}

/// What the example record says beyond its kind and place: names, third opinion, errors.
pub(super) fn example_details(g: &DivergenceGroup) -> Vec<String> {
    let d = &g.example;
    let mut lines = vec![format!(
        "globals {} · legacy {}",
        name_or_none(d.globals().name.as_deref()),
        name_or_none(d.legacy().name.as_deref())
    )];
    let t = &d.third_opinion;
    if let Some(name) = &t.name {
        let sides = match (t.matches_globals, t.matches_legacy) {
            (true, false) => "sides with globals",
            (false, true) => "sides with legacy",
            (true, true) => "matches both",
            (false, false) => "matches neither",
        };
        lines.push(format!("third opinion {name} ({sides})"));
    }
    if let Some(cause) = d.cause {
        lines.push(format!("cause {cause}"));
    }
    for side in [&d.primary, &d.shadow] {
        if let Some(err) = &side.error {
            lines.push(format!("{} error: {err}", side.engine.as_str()));
        }
    }
    lines
}

fn engines_section(agg: &Aggregate, out: &mut Vec<String>) {
    let errors: Vec<String> = agg
        .engine_errors
        .iter()
        .map(|(e, n)| format!("{} {}", e.as_str(), count(*n)))
        .collect();
    out.push(format!(
        "ENGINE ERRORS: {}",
        if errors.is_empty() {
            "none".to_owned()
        } else {
            errors.join(" · ")
        }
    ));
    out.push("FALLBACKS (engine left its main path)".to_owned());
    let rows: Vec<_> = agg
        .fallbacks
        .iter()
        .flat_map(|(e, reasons)| reasons.iter().map(move |(r, n)| (e, r, n)))
        .collect();
    if rows.is_empty() {
        out.push("  none".to_owned());
        return;
    }
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(e, r, n)| vec![e.as_str().to_owned(), r.clone(), count(*n)])
        .collect();
    out.extend(terminal(
        &[(8, Align::Left), (24, Align::Left), (10, Align::Right)],
        &["engine", "reason", "count"],
        &rows,
    ));
}

fn runs_section(agg: &Aggregate, out: &mut Vec<String>) {
    out.push(format!("RUNS ({})", count(agg.run_count)));
    if agg.runs.is_empty() {
        out.push("  none".to_owned());
        return;
    }
    let label = |r: &crate::aggregate::RunLine| {
        if r.run_id.is_empty() {
            r.dir.clone()
        } else {
            r.run_id.clone()
        }
    };
    let rows: Vec<Vec<String>> = agg
        .runs
        .iter()
        .map(|r| {
            vec![
                if r.run_id.is_empty() {
                    "-".to_owned()
                } else {
                    r.run_id.clone()
                },
                r.primary.as_str().to_owned(),
                r.shadow.map_or("none", |e| e.as_str()).to_owned(),
                count(r.comparisons),
                count(r.divergences),
                count(r.unexpected),
                count(r.filter_decision_changes),
                r.dir.clone(),
            ]
        })
        .collect();
    // Engine columns fit the longest engine name ("globals") whole; the directory (where
    // the run's files are) gets the room that is left and keeps its tail.
    out.extend(terminal(
        &[
            (24, Align::Left),
            (7, Align::Left),
            (7, Align::Left),
            (10, Align::Right),
            (11, Align::Right),
            (10, Align::Right),
            (8, Align::Right),
            (REST, Align::Left),
        ],
        &[
            "run id",
            "primary",
            "shadow",
            "compared",
            "divergences",
            "unexpected",
            "filter",
            "directory",
        ],
        &rows,
    ));
    let noted: Vec<_> = agg.runs.iter().filter(|r| !r.notes.is_empty()).collect();
    if noted.is_empty() {
        return;
    }
    out.push("NOTES".to_owned());
    for r in noted {
        for note in &r.notes {
            let mut lines = wrap(&format!("{}: {note}", label(r)), "    ", W);
            if let Some(first) = lines.first_mut() {
                *first = format!("  {}", first.trim_start());
            }
            out.extend(lines);
        }
    }
}
