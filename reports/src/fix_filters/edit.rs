//! Filter-file edits that keep comments and layout (`toml_edit`): find a rule, copy a rule,
//! insert a new rule right after another one.
//!
//! `[[scope.rules]]` entries are rendered in the order of their `position`s (the order their
//! headers had in the file). A new rule gets the largest position found in its anchor's block
//! (the anchor and its `[[scope.rules.value_patterns]]`), and so do its own sub-tables: the
//! renderer sorts stably by position, so the new block lands right after the anchor's block,
//! and several new rules after one anchor keep the order they were added in. Inline arrays
//! (`rules = [{...}]`) get the new rule inserted at the index after the anchor.

use toml_edit::{value, ArrayOfTables, DocumentMut, Item, Table, Value};

/// A parsed filter file, ready to take new rules.
pub struct FilterDoc {
    doc: DocumentMut,
    /// New rules, by anchor index (rules are inserted after them, in this order).
    pending: Vec<(usize, Table, String)>,
}

impl FilterDoc {
    /// Parses `text`; `Err` is the parser's message.
    pub fn parse(text: &str) -> Result<FilterDoc, String> {
        let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            e.to_string().trim().lines().collect::<Vec<_>>().join("; ")
        })?;
        Ok(FilterDoc {
            doc,
            pending: Vec::new(),
        })
    }

    /// The number of `[[scope.rules]]` entries.
    pub fn rule_count(&self) -> usize {
        match self.rules_item() {
            Some(Item::ArrayOfTables(a)) => a.len(),
            Some(Item::Value(Value::Array(a))) => a.len(),
            _ => 0,
        }
    }

    /// A copy of rule `index` as a table (an inline rule becomes a table), without its
    /// comments.
    pub fn rule(&self, index: usize) -> Option<Table> {
        match self.rules_item()? {
            Item::ArrayOfTables(a) => {
                let mut t = a.get(index)?.clone();
                t.decor_mut().clear();
                for (_, item) in t.iter_mut() {
                    if let Item::ArrayOfTables(sub) = item {
                        for s in sub.iter_mut() {
                            s.decor_mut().clear();
                        }
                    }
                }
                Some(t)
            }
            Item::Value(Value::Array(a)) => match a.get(index)? {
                Value::InlineTable(t) => Some(t.clone().into_table()),
                _ => None,
            },
            _ => None,
        }
    }

    /// The selector of rule `index`, as written.
    pub fn selector(&self, index: usize) -> Option<String> {
        self.rule(index)?
            .get("selector")
            .and_then(Item::as_str)
            .map(str::to_owned)
    }

    /// Queues `rule` to go right after rule `anchor`, preceded by `comment` (lines without
    /// the leading `# `).
    pub fn insert_after(&mut self, anchor: usize, rule: Table, comment: &str) {
        self.pending.push((anchor, rule, comment.to_owned()));
    }

    /// The file's new text: the original with the queued rules in place.
    pub fn render(mut self) -> String {
        let pending = std::mem::take(&mut self.pending);
        let Some(item) = self.rules_item_mut() else {
            return self.doc.to_string();
        };
        match item {
            Item::ArrayOfTables(rules) => insert_tables(rules, pending),
            Item::Value(Value::Array(rules)) => {
                // Highest anchor first, so earlier indices stay valid; the same anchor keeps
                // the order the rules were queued in.
                let mut by_anchor = pending;
                by_anchor.sort_by_key(|(anchor, _, _)| std::cmp::Reverse(*anchor));
                let mut offset_at: Vec<(usize, usize)> = Vec::new();
                for (anchor, table, _) in by_anchor {
                    let already = offset_at
                        .iter()
                        .find(|(a, _)| *a == anchor)
                        .map_or(0, |(_, n)| *n);
                    let at = (anchor + 1 + already).min(rules.len());
                    rules.insert(at, Value::InlineTable(table.into_inline_table()));
                    match offset_at.iter_mut().find(|(a, _)| *a == anchor) {
                        Some((_, n)) => *n += 1,
                        None => offset_at.push((anchor, 1)),
                    }
                }
                rules.fmt();
            }
            _ => {}
        }
        self.doc.to_string()
    }

    fn rules_item(&self) -> Option<&Item> {
        self.doc.get("scope")?.get("rules")
    }

    fn rules_item_mut(&mut self) -> Option<&mut Item> {
        self.doc.get_mut("scope")?.get_mut("rules")
    }
}

fn insert_tables(rules: &mut ArrayOfTables, pending: Vec<(usize, Table, String)>) {
    for (anchor, mut table, comment) in pending {
        let Some(anchor_table) = rules.get(anchor) else {
            continue;
        };
        let position = block_end_position(anchor_table);
        let mut prefix = String::from("\n");
        for line in comment.lines() {
            prefix.push_str("# ");
            prefix.push_str(line);
            prefix.push('\n');
        }
        table.decor_mut().set_prefix(prefix);
        set_block_position(&mut table, position);
        rules.push(table);
    }
}

/// The largest position among a rule's table and its sub-tables (its block in the file).
fn block_end_position(t: &Table) -> usize {
    let mut max = t.position().unwrap_or(0);
    for (_, item) in t.iter() {
        match item {
            Item::Table(sub) => max = max.max(block_end_position(sub)),
            Item::ArrayOfTables(subs) => {
                for s in subs.iter() {
                    max = max.max(block_end_position(s));
                }
            }
            _ => {}
        }
    }
    max
}

fn set_block_position(t: &mut Table, position: usize) {
    t.set_position(position);
    for (_, item) in t.iter_mut() {
        match item {
            Item::Table(sub) => set_block_position(sub, position),
            Item::ArrayOfTables(subs) => {
                for s in subs.iter_mut() {
                    set_block_position(s, position);
                }
            }
            _ => {}
        }
    }
}

/// A new rule: `template` (a copy of the rule whose decision is kept, if any) with
/// `selector` and `exec` set.
pub fn new_rule(template: Option<Table>, selector: &str, exec: &str) -> Table {
    let mut t = template.unwrap_or_default();
    t.set_implicit(false);
    t.insert("selector", value(selector));
    t.insert("exec", value(exec));
    // `selector` first, `exec` second, as people write rules.
    t.sort_values_by(|a, _, b, _| key_rank(a.get()).cmp(&key_rank(b.get())));
    t
}

fn key_rank(key: &str) -> usize {
    match key {
        "selector" => 0,
        "exec" => 1,
        "value_default" => 2,
        "reason" => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"# Project filter.
[meta]
name = "p"
version = 1

[scope]
default_exec = "trace"
default_value_action = "allow"

# Skip the CLI.
[[scope.rules]]
selector = "pkg:literal:pkg.cli"
exec = "skip"

[[scope.rules.value_patterns]]
selector = "local:tmp_*"
action = "drop"

# Trace the rest.
[[scope.rules]]
selector = "pkg:glob:other.*"
exec = "trace"
"#;

    #[test]
    fn inserts_after_the_anchor_block_and_keeps_comments() {
        let mut doc = FilterDoc::parse(FILE).unwrap();
        assert_eq!(doc.rule_count(), 2);
        assert_eq!(doc.selector(0).as_deref(), Some("pkg:literal:pkg.cli"));
        let copy = doc.rule(0).unwrap();
        doc.insert_after(
            0,
            new_rule(Some(copy), "file:literal:pkg/cli.py", "skip"),
            "added",
        );
        let text = doc.render();
        assert!(text.starts_with(FILE.split("# Trace the rest.").next().unwrap()));
        let added = text.find("# added\n[[scope.rules]]\nselector = \"file:literal:pkg/cli.py\"");
        let rest = text.find("# Trace the rest.");
        assert!(added.is_some() && rest.is_some() && added < rest, "{text}");
        // The copy keeps the anchor's value patterns, under the copy.
        let parsed: toml::Value = toml::from_str(&text).unwrap();
        let rules = parsed["scope"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(
            rules[1]["selector"].as_str(),
            Some("file:literal:pkg/cli.py")
        );
        assert_eq!(rules[1]["value_patterns"].as_array().unwrap().len(), 1);
        assert_eq!(rules[0]["value_patterns"].as_array().unwrap().len(), 1);
        assert_eq!(rules[2]["selector"].as_str(), Some("pkg:glob:other.*"));
    }

    #[test]
    fn inline_rule_arrays_take_the_rule_at_the_next_index() {
        let text = "[meta]\nname = \"p\"\nversion = 1\n[scope]\ndefault_exec = \"trace\"\ndefault_value_action = \"allow\"\nrules = [\n  { selector = \"pkg:a\", exec = \"skip\" },\n  { selector = \"pkg:b\", exec = \"trace\" },\n]\n";
        let mut doc = FilterDoc::parse(text).unwrap();
        doc.insert_after(0, new_rule(doc.rule(0), "pkg:c", "skip"), "x");
        let out = doc.render();
        let parsed: toml::Value = toml::from_str(&out).unwrap();
        let sels: Vec<&str> = parsed["scope"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["selector"].as_str().unwrap())
            .collect();
        assert_eq!(sels, ["pkg:a", "pkg:c", "pkg:b"]);
    }

    #[test]
    fn invalid_toml_is_an_error() {
        assert!(FilterDoc::parse("[meta\nname=").is_err());
    }
}
