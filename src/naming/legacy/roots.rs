//! L2 (session roots) and L3 (path candidate, heuristics).

use std::path::Path;

use crate::naming::paths::{filesystem_shaped_name, normalise, relative_to_dotted};

/// One `sys.path` entry as read when the session starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SysPathEntry {
    /// A `str` entry (subclasses included).
    Str(String),
    /// Anything else (`Path` objects, bytes...): skipped (L2.2).
    NotStr,
}

impl From<&str> for SysPathEntry {
    fn from(value: &str) -> Self {
        SysPathEntry::Str(value.to_string())
    }
}

/// L2: the session roots, longest first.
///
/// `cwd` is the working directory when the session starts (`None` when unknown).
pub fn session_roots(entries: &[SysPathEntry], cwd: Option<&str>) -> Vec<String> {
    // L2.2: "" stands for the cwd in normalised form.
    let cwd_normalised = cwd.and_then(normalise);
    let mut roots: Vec<String> = entries
        .iter()
        .filter_map(|entry| match entry {
            SysPathEntry::NotStr => None,
            SysPathEntry::Str(s) if s.is_empty() => {
                Some(cwd_normalised.clone().unwrap_or_default())
            }
            SysPathEntry::Str(s) => normalise(s),
        })
        .map(|root| {
            // L2.3: the empty string (what `/` normalises to) becomes the cwd, or `/` when
            // the cwd is unknown (or is `/` itself, whose normalised form is empty too).
            let mut root = if root.is_empty() {
                match &cwd_normalised {
                    Some(c) if !c.is_empty() => c.clone(),
                    _ => "/".to_string(),
                }
            } else {
                root
            };
            while root.len() > 1 && root.ends_with('/') {
                root.pop();
            }
            root
        })
        .collect();
    // L2.4: longest first, ties in ascending string order, then exact duplicates removed.
    roots.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    roots.dedup();
    roots
}

/// L3.1 root match, by characters, not path components (Quirk): the remainder of `target`
/// after `root`, with at most one leading `/` removed; `None` when `root` is empty, does
/// not prefix `target`, or leaves nothing.
pub fn root_remainder<'t>(root: &str, target: &'t str) -> Option<&'t str> {
    if root.is_empty() {
        return None;
    }
    if root == "/" {
        return target.strip_prefix('/');
    }
    let rest = target.strip_prefix(root)?;
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    (!rest.is_empty()).then_some(rest)
}

/// L3.2: the first root (in L2 order) whose remainder converts to a name.
pub fn candidate_from_roots(roots: &[String], target: &str) -> Option<String> {
    roots
        .iter()
        .filter_map(|root| root_remainder(root, target))
        .find_map(relative_to_dotted)
}

/// The files and directories whose presence makes a directory a project root (L3.4).
pub const PROJECT_MARKERS: [&str; 6] = [
    ".git",
    ".hg",
    ".svn",
    "pyproject.toml",
    "setup.cfg",
    "setup.py",
];

fn has_marker(dir: &str) -> bool {
    let dir = Path::new(dir);
    // `exists` follows symlinks: a dangling symlink is not a marker.
    PROJECT_MARKERS.iter().any(|m| dir.join(m).exists())
}

/// Lexical parent: `/a/b` → `/a`, `/a` → `/`, `a/b` → `a`, `a` → `` (the empty dir).
fn lexical_parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "",
    }
}

/// L3.4 heuristic root of a target, before normalisation: the first ancestor directory
/// (starting at the lexical parent) holding a project marker, else the parent. For a
/// relative target the walk stops at the empty directory (a marker there, i.e. in the
/// process's cwd, is ignored); a bare relative file name has none. Reads the filesystem.
pub fn heuristic_root(target: &str) -> Option<String> {
    if target.is_empty() || target == "/" {
        return None;
    }
    let parent = lexical_parent(target);
    if parent.is_empty() {
        return None;
    }
    let mut dir = parent;
    loop {
        if dir.is_empty() {
            return Some(parent.to_string());
        }
        if has_marker(dir) {
            return Some(dir.to_string());
        }
        if dir == "/" {
            return Some(parent.to_string());
        }
        dir = lexical_parent(dir);
    }
}

/// L3.4: the heuristic name. The heuristic root is normalised (so a root of `/` becomes
/// the empty root and gives nothing, Quirk), then matched with L3.1 and converted with
/// L1.2.
pub fn heuristic_name(target: &str) -> Option<String> {
    let root = normalise(&heuristic_root(target)?)?;
    relative_to_dotted(root_remainder(&root, target)?)
}

/// L3: the path candidate, heuristics included. The heuristics run when no root gave a
/// name or the name equals the filesystem-shaped name (L3.3); their name, if any, wins.
pub fn path_candidate(roots: &[String], target: &str) -> Option<String> {
    let candidate = candidate_from_roots(roots, target);
    let run_heuristics = match &candidate {
        None => true,
        Some(name) => filesystem_shaped_name(target).as_deref() == Some(name.as_str()),
    };
    if run_heuristics {
        if let Some(name) = heuristic_name(target) {
            return Some(name);
        }
    }
    candidate
}
