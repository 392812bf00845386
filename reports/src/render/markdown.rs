//! [`Format::Markdown`](super::Format::Markdown): GitHub-flavoured Markdown for a pull-request
//! comment. Names, paths and rules go in code spans, so `<module>` or `a|b` cannot break the
//! page or a table.

use crate::aggregate::Aggregate;
use crate::format::{count, n_of, name_or_none, rate};
use crate::gates::{all_passed, GateResult};

use super::grid::{self, Align};
use super::rule_text;
use super::table::example_details;

/// `s` as an inline code span that survives any backticks in it and sits safely in a table
/// cell.
fn code(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ").replace('|', "\\|");
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    // CommonMark strips one space at each end when both are there: pad when the text starts
    // or ends with a backtick (and keep its own edge spaces).
    if s.starts_with('`') || s.ends_with('`') || (s.starts_with(' ') && s.ends_with(' ')) {
        format!("{fence} {s} {fence}")
    } else {
        format!("{fence}{s}{fence}")
    }
}

/// `s` as plain Markdown text: characters that would start markup are escaped.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '<' | '>' | '|' | '[' | ']' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// A table after the lines so far; `align` has one letter per column (`l`, `r`, `c`).
fn table(out: &mut Vec<String>, header: &[&str], align: &str, rows: Vec<Vec<String>>) {
    let columns: Vec<Align> = align
        .chars()
        .map(|a| match a {
            'r' => Align::Right,
            'c' => Align::Center,
            _ => Align::Left,
        })
        .collect();
    out.extend(grid::markdown(&columns, header, &rows));
}

/// The rate with its bound, and the runs counted once (see `super::evidence`).
fn evidence_sections(agg: &Aggregate, gates: &[GateResult], out: &mut Vec<String>) {
    let lines = super::evidence::confidence_lines(agg, gates);
    if !lines.is_empty() {
        out.push(String::new());
        out.push(format!("### {}", super::evidence::confidence_heading()));
        out.push(String::new());
        out.extend(lines.iter().map(|l| format!("- {}", text(l))));
    }
    if agg.run_count > 0 {
        out.push(String::new());
        out.push(format!("### {}", super::evidence::programs_heading()));
        out.push(String::new());
        out.push(text(&super::evidence::programs_line(agg)));
    }
    let dups = super::evidence::duplicate_notes(agg);
    if !dups.is_empty() {
        out.push(String::new());
        out.push("### Evidence (each run counted once)".to_owned());
        out.push(String::new());
        out.extend(dups.iter().map(|d| format!("- {}", text(d))));
    }
}

pub(super) fn render(agg: &Aggregate, gates: &[GateResult]) -> String {
    let mut out: Vec<String> = Vec::new();
    let verdict = if gates.is_empty() {
        "no gates checked"
    } else if all_passed(gates) {
        "✅ all gates passed"
    } else {
        "❌ gates failed"
    };
    out.push(format!("## Rollout report: {verdict}"));
    out.push(String::new());
    let d = &agg.divergences;
    // `**3** runs`, `**1** run`: the number bold, the noun agreeing with it.
    let bold = |n: u64, one: &str, many: &str| {
        format!("**{}** {}", count(n), if n == 1 { one } else { many })
    };
    out.push(format!(
        "{} · {} · {}, **{}** unexpected ({}) · {} · not compared: {} sampled out, {} after \
         the time budget",
        bold(agg.run_count, "run", "runs"),
        bold(agg.comparisons, "comparison", "comparisons"),
        bold(d.total, "divergence", "divergences"),
        count(d.unexpected),
        agg.unexpected_rate
            .map_or_else(|| "no rate".to_owned(), rate),
        bold(
            agg.filter_decision_changes.total,
            "filter decision change",
            "filter decision changes"
        ),
        count(agg.skipped.sampled_out),
        count(agg.skipped.budget_exhausted),
    ));

    if !gates.is_empty() {
        out.push(String::new());
        out.push("### Gates".to_owned());
        out.push(String::new());
        let rows = gates
            .iter()
            .map(|g| {
                vec![
                    code(&g.name),
                    g.actual.to_string(),
                    format!("{} {}", g.relation(), g.threshold),
                    if g.passed { "✅ pass" } else { "❌ **fail**" }.to_owned(),
                    text(&g.explanation),
                ]
            })
            .collect();
        table(
            &mut out,
            &["gate", "actual", "threshold", "verdict", "why"],
            "lrrcl",
            rows,
        );
    }
    evidence_sections(agg, gates, &mut out);

    let kinds = d.worst_first();
    if !kinds.is_empty() {
        out.push(String::new());
        out.push("### Divergences by kind".to_owned());
        out.push(String::new());
        let rows = kinds
            .iter()
            .map(|(k, c)| {
                vec![
                    code(k),
                    c.severity.as_str().to_owned(),
                    count(c.expected + c.unexpected),
                    count(c.expected),
                    if c.unexpected > 0 {
                        format!("**{}**", count(c.unexpected))
                    } else {
                        "0".to_owned()
                    },
                ]
            })
            .collect();
        table(
            &mut out,
            &["kind", "severity", "total", "expected", "unexpected"],
            "llrrr",
            rows,
        );
    }

    let f = &agg.filter_decision_changes;
    if f.total > 0 || !f.rules.is_empty() {
        out.push(String::new());
        out.push(format!(
            "### Filter decision changes (legacy → globals): {} · trace→skip {} · skip→trace {}",
            count(f.total),
            count(f.trace_to_skip),
            count(f.skip_to_trace)
        ));
        out.push(String::new());
        if f.rules.is_empty() {
            out.push("No divergence log records them; see the runs' notes.".to_owned());
        } else {
            let rows = f
                .rules
                .iter()
                .map(|r| {
                    let e = &r.example;
                    let mut example = format!(
                        "{} {}: legacy {}, globals {}",
                        code(&e.filename),
                        code(&e.qualname),
                        code(name_or_none(e.legacy_name.as_deref())),
                        code(name_or_none(e.globals_name.as_deref()))
                    );
                    if e.filters_judged_other_names() {
                        example.push_str(&format!(
                            "; filters judged legacy {}, globals {}",
                            code(name_or_none(e.legacy_filter_name.as_deref())),
                            code(name_or_none(e.globals_filter_name.as_deref()))
                        ));
                    }
                    vec![
                        format!("{}→{}", r.from.as_str(), r.to.as_str()),
                        count(r.count),
                        code(&rule_text(&r.legacy_rule)),
                        code(&rule_text(&r.globals_rule)),
                        example,
                    ]
                })
                .collect();
            table(
                &mut out,
                &["change", "count", "legacy rule", "globals rule", "example"],
                "lrlll",
                rows,
            );
        }
    }

    if d.unexpected > 0 || !agg.top_unexpected.is_empty() {
        out.push(String::new());
        out.push(format!(
            "### Top unexpected divergences ({} of {} distinct)",
            agg.top_unexpected.len(),
            count(agg.distinct_unexpected)
        ));
        out.push(String::new());
        if agg.top_unexpected.is_empty() {
            out.push("No divergence log records them; see the runs' notes.".to_owned());
        } else {
            let rows = agg
                .top_unexpected
                .iter()
                .map(|g| {
                    vec![
                        count(g.count),
                        count(g.runs),
                        code(g.kind.as_str()),
                        format!("{} {}", code(&g.filename), code(&g.qualname)),
                        example_details(g)
                            .iter()
                            .map(|l| code(l))
                            .collect::<Vec<_>>()
                            .join("<br>"),
                    ]
                })
                .collect();
            table(
                &mut out,
                &["count", "runs", "kind", "code object", "example"],
                "rrlll",
                rows,
            );
        }
    }

    let fallbacks: Vec<Vec<String>> = agg
        .fallbacks
        .iter()
        .flat_map(|(e, reasons)| {
            reasons
                .iter()
                .map(move |(r, n)| vec![e.as_str().to_owned(), code(r), count(*n)])
        })
        .collect();
    let errors: u64 = agg.engine_errors.values().sum();
    if !fallbacks.is_empty() || errors > 0 {
        out.push(String::new());
        out.push("### Engines".to_owned());
        out.push(String::new());
        let errors: Vec<String> = agg
            .engine_errors
            .iter()
            .map(|(e, n)| format!("{} {}", e.as_str(), count(*n)))
            .collect();
        out.push(format!("Engine errors: {}.", errors.join(" · ")));
        if !fallbacks.is_empty() {
            out.push(String::new());
            table(
                &mut out,
                &["engine", "fallback reason", "count"],
                "llr",
                fallbacks,
            );
        }
    }

    out.push(String::new());
    out.push(format!(
        "<details><summary>{}</summary>",
        n_of(agg.run_count, "run", "runs")
    ));
    out.push(String::new());
    let rows = agg
        .runs
        .iter()
        .map(|r| {
            vec![
                code(if r.run_id.is_empty() { "-" } else { &r.run_id }),
                code(&r.dir),
                format!(
                    "{} / {}",
                    r.primary.as_str(),
                    r.shadow.map_or("none", |e| e.as_str())
                ),
                count(r.comparisons),
                count(r.divergences),
                count(r.unexpected),
                count(r.filter_decision_changes),
                r.notes
                    .iter()
                    .map(|n| text(n))
                    .collect::<Vec<_>>()
                    .join("<br>"),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "run id",
            "directory",
            "primary / shadow",
            "compared",
            "divergences",
            "unexpected",
            "filter changes",
            "notes",
        ],
        "lllrrrrl",
        rows,
    );
    out.push(String::new());
    out.push("</details>".to_owned());
    let mut s = out.join("\n");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_survive_backticks_and_pipes() {
        assert_eq!(code("<module>"), "`<module>`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("a|b"), "`a\\|b`");
    }

    #[test]
    fn text_escapes_markup() {
        assert_eq!(text("a_b <x> *y*"), "a\\_b \\<x\\> \\*y\\*");
    }
}
