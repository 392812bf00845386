//! [`Format::Markdown`](super::Format::Markdown): GitHub-flavoured Markdown for a pull-request
//! comment. Names, paths and rules go in code spans, so `<module>` or `a|b` cannot break the
//! page or a table.

use crate::aggregate::Aggregate;
use crate::format::{count, name_or_none, rate};
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
    out.push(format!(
        "**{}** runs · **{}** comparisons · **{}** divergences, **{}** unexpected ({}) · \
         **{}** filter decision changes · not compared: {} sampled out, {} after the time \
         budget",
        count(agg.run_count),
        count(agg.comparisons),
        count(d.total),
        count(d.unexpected),
        agg.unexpected_rate
            .map_or_else(|| "no rate".to_owned(), rate),
        count(agg.filter_decision_changes.total),
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
                    vec![
                        format!("{}→{}", r.from.as_str(), r.to.as_str()),
                        count(r.count),
                        code(&rule_text(&r.legacy_rule)),
                        code(&rule_text(&r.globals_rule)),
                        format!(
                            "{} {}: legacy {}, globals {}",
                            code(&e.filename),
                            code(&e.qualname),
                            code(name_or_none(e.legacy_name.as_deref())),
                            code(name_or_none(e.globals_name.as_deref()))
                        ),
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
        "<details><summary>{} runs</summary>",
        count(agg.run_count)
    ));
    out.push(String::new());
    let rows = agg
        .runs
        .iter()
        .map(|r| {
            vec![
                code(if r.run_id.is_empty() {
                    &r.dir
                } else {
                    &r.run_id
                }),
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
            "run",
            "primary / shadow",
            "compared",
            "divergences",
            "unexpected",
            "filter changes",
            "notes",
        ],
        "llrrrrl",
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
