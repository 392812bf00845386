//! `flip-default` and `flip-default --revert`: the change sets, and the edits of
//! `CHANGELOG.md` and ADR 0016 they include.

use super::change::ChangeSet;
use super::manifest::{edited_manifest, new_entry, RepoManifest, MANIFEST_FILE};
use super::LifecycleError;
use crate::GateResult;

/// The ADR whose status the flip accepts.
pub const ADR_PATH: &str = "docs/adr/0016-module-names-from-globals.md";
/// The changelog (Keep a Changelog).
pub const CHANGELOG_PATH: &str = "CHANGELOG.md";

/// What a flip (or a revert) will do, or why it does nothing.
pub enum Plan {
    /// Already there: `ct-rollout` says so and exits 0.
    NothingToDo(String),
    /// The change set, and the audit note for the terminal.
    Change { changes: ChangeSet, summary: String },
}

/// How a forced command records itself.
pub struct Force<'a> {
    pub force: bool,
    pub reason: Option<&'a str>,
}

/// Options of `flip-default`.
pub struct FlipRequest<'a> {
    pub force: Force<'a>,
    /// The evidence's run ids and the gates as `report --check` evaluated them.
    pub run_ids: &'a [String],
    pub results: &'a [GateResult],
}

/// The opt-outs, as the changelog gives them.
const OPT_OUTS: &str =
    "`module-name-from-globals = false` under `[tool.ct-recorder]` in `pyproject.toml`, \
`CODETRACER_MODULE_NAME_FROM_GLOBALS=0`, `ct-record --no-module-name-from-globals` or \
`ct_recorder.configure_policy(module_name_from_globals=False)`";

/// `flip-default`: phase `shadow` → `globals-default`, refused on failing gates unless
/// forced with a reason.
pub fn plan_flip(m: &RepoManifest, req: &FlipRequest<'_>) -> Result<Plan, LifecycleError> {
    match m.phase.as_str() {
        "globals-default" | "legacy-deleted" => {
            return Ok(Plan::NothingToDo(format!(
                "nothing to do: phase is already {} (the globals engine is the default)",
                m.phase
            )))
        }
        "legacy" => {
            return Err(LifecycleError::Refused(vec![format!(
                "phase is legacy: the flip needs shadow evidence first; set [rollout] phase = \
                 \"shadow\" in {MANIFEST_FILE} and record shadow runs (ct-record \
                 --shadow-compare)"
            )]))
        }
        _ => {}
    }
    let failing: Vec<String> = req
        .results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| format!("gate {} failed: {}", r.name, r.explanation))
        .collect();
    if !failing.is_empty() && !req.force.force {
        let mut reasons = failing;
        reasons.push(
            "fix the above and run again, or override with --force --reason TEXT (recorded \
             in the audit trail)"
                .to_owned(),
        );
        return Err(LifecycleError::Refused(reasons));
    }
    let forced = req.force.force && req.results.iter().any(|r| !r.passed);
    let entry = new_entry(
        "flip-default",
        &m.phase,
        "globals-default",
        forced,
        req.force.reason,
        req.run_ids,
        req.results,
    );
    let mut changes = ChangeSet::new(&m.repo.root);
    changes.write(
        MANIFEST_FILE,
        edited_manifest(&m.text, "globals-default", true, &entry)?,
    )?;
    let line = format!(
        "- Module names now come from `__name__` in the frame globals by default (ADR 0016; \
         `rollout.toml` phase `globals-default`, {}). To keep the legacy resolver for a \
         while, opt out with {OPT_OUTS}.",
        &entry.time[..10]
    );
    edit_changelog(&mut changes, "Changed", &line)?;
    let adr_path = m.repo.path(ADR_PATH);
    if let Ok(adr) = std::fs::read_to_string(&adr_path) {
        if let Some(accepted) = accept_adr(&adr, &super::utc_today()) {
            changes.write(ADR_PATH, accepted)?;
        }
    }
    Ok(Plan::Change {
        changes,
        summary: format!(
            "phase shadow -> globals-default, default = true{}",
            if forced { " (forced)" } else { "" }
        ),
    })
}

/// `flip-default --revert --reason TEXT`: phase `globals-default` → `shadow`. The incident
/// path: no gate applies, the reason is required.
pub fn plan_revert(
    m: &RepoManifest,
    reason: &str,
    run_ids: &[String],
    results: &[GateResult],
) -> Result<Plan, LifecycleError> {
    match m.phase.as_str() {
        "globals-default" => {}
        "legacy-deleted" => {
            return Err(LifecycleError::Refused(vec![
                "phase is legacy-deleted: the legacy engine is gone from the code, so there is \
                 nothing to revert to (restore it from version control)"
                    .to_owned(),
            ]))
        }
        other => {
            return Ok(Plan::NothingToDo(format!(
                "nothing to do: phase is {other}, the legacy resolver is already the default"
            )))
        }
    }
    let entry = new_entry(
        "revert",
        &m.phase,
        "shadow",
        false,
        Some(reason),
        run_ids,
        results,
    );
    let mut changes = ChangeSet::new(&m.repo.root);
    changes.write(
        MANIFEST_FILE,
        edited_manifest(&m.text, "shadow", false, &entry)?,
    )?;
    let line = format!(
        "- Module names come from the legacy resolver again by default: the flip to \
         `__name__` was reverted ({}; reason: {reason}). `module-name-from-globals = true` \
         (or `CODETRACER_MODULE_NAME_FROM_GLOBALS=1`) keeps the globals engine.",
        &entry.time[..10]
    );
    edit_changelog(&mut changes, "Changed", &line)?;
    Ok(Plan::Change {
        changes,
        summary: "phase globals-default -> shadow, default = false (revert)".to_owned(),
    })
}

/// Adds `line` to the `### SECTION` of `## [Unreleased]` in `CHANGELOG.md`.
pub fn edit_changelog(
    changes: &mut ChangeSet,
    section: &str,
    line: &str,
) -> Result<(), LifecycleError> {
    let path = changes.root.join(CHANGELOG_PATH);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| LifecycleError::Usage(format!("{}: {e}", path.display())))?;
    let edited = changelog_with(&text, section, line).ok_or_else(|| {
        LifecycleError::Usage(format!(
            "{}: no `## [Unreleased]` section to add the entry to",
            path.display()
        ))
    })?;
    changes.write(CHANGELOG_PATH, edited)
}

/// Keep a Changelog's subsection order.
const SECTIONS: [&str; 6] = [
    "Added",
    "Changed",
    "Deprecated",
    "Removed",
    "Fixed",
    "Security",
];

/// `text` with `line` appended to the `### section` list of `## [Unreleased]` (the
/// subsection is created, in Keep a Changelog order, when missing). `None`: no
/// `## [Unreleased]`.
pub fn changelog_with(text: &str, section: &str, line: &str) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let start = lines
        .iter()
        .position(|l| l.trim_end().eq_ignore_ascii_case("## [Unreleased]"))?;
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with("## "))
        .map_or(lines.len(), |i| start + 1 + i);
    let heading = format!("### {section}");
    let rank = |name: &str| {
        SECTIONS
            .iter()
            .position(|s| *s == name)
            .unwrap_or(SECTIONS.len())
    };
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let entry = wrap_entry(line);
    if let Some(h) = (start + 1..end).find(|&i| lines[i].trim_end() == heading) {
        // The end of the subsection's list: before the next heading, after its last
        // non-blank line.
        let next = (h + 1..end)
            .find(|&i| lines[i].starts_with("### "))
            .unwrap_or(end);
        let mut at = next;
        while at > h + 1 && lines[at - 1].trim().is_empty() {
            at -= 1;
        }
        out.insert(at, entry);
    } else {
        // A new subsection before the first one that comes after it in the order.
        let before = (start + 1..end)
            .find(|&i| {
                lines[i]
                    .strip_prefix("### ")
                    .is_some_and(|n| rank(n.trim()) > rank(section))
            })
            .unwrap_or(end);
        let mut block = vec![format!("{heading}\n"), entry];
        if before < end {
            block.push("\n".to_owned());
        } else if !lines[end - 1].trim().is_empty() {
            block.insert(0, "\n".to_owned());
        }
        for (k, b) in block.into_iter().enumerate() {
            out.insert(before + k, b);
        }
    }
    Some(out.concat())
}

/// A changelog list entry wrapped at 92 columns, continuation lines indented by two.
fn wrap_entry(line: &str) -> String {
    let mut out = String::new();
    let mut current = String::new();
    for word in line.split_whitespace() {
        if !current.is_empty() && current.len() + 1 + word.len() > 92 {
            out.push_str(&current);
            out.push('\n');
            current = "  ".to_owned();
        } else if !current.is_empty() && current != "  " {
            current.push(' ');
        }
        current.push_str(word);
    }
    out.push_str(&current);
    out.push('\n');
    out
}

/// ADR text with `Status: **Proposed**` made `Status: **Accepted** (DATE)`; `None` when the
/// status is not Proposed (already accepted, or another form).
pub fn accept_adr(text: &str, date: &str) -> Option<String> {
    let mut done = false;
    let out: String = text
        .split_inclusive('\n')
        .map(|l| {
            let t = l.trim_end();
            if !done
                && t.starts_with("Status:")
                && t.contains("Proposed")
                && !t.contains("Accepted")
            {
                done = true;
                let nl = &l[t.len()..];
                format!("Status: **Accepted** ({date}; was Proposed){nl}")
            } else {
                l.to_owned()
            }
        })
        .collect();
    done.then_some(out)
}
