//! Spec L1: the path helpers, shared by the legacy engine and the trace filters (so they
//! stay when the legacy engine is deleted). All lexical: no filesystem access, no symlink
//! resolution.

/// L1.1 POSIX normalisation.
///
/// Splits on `/`, drops empty and `.` segments, keeps `..` as it is (`/a/../b` stays),
/// keeps one leading `/` for an absolute input. Quirks kept: the root on its own gives the
/// **empty string**; an empty input, or one made only of `.` segments, gives nothing.
/// Backslashes are ordinary characters.
pub fn normalise(input: &str) -> Option<String> {
    if input.is_empty() {
        return None;
    }
    if is_normal(input) {
        return Some(input.to_string());
    }
    let absolute = input.starts_with('/');
    let mut out = String::with_capacity(input.len());
    for segment in input.split('/').filter(|s| !s.is_empty() && *s != ".") {
        if absolute || !out.is_empty() {
            out.push('/');
        }
        out.push_str(segment);
    }
    if out.is_empty() && !absolute {
        return None;
    }
    Some(out)
}

/// True when [`normalise`] would return `input` unchanged: at least one segment, every
/// segment non-empty and not `.` (one leading `/` allowed). Most paths a recorder sees are
/// already normal; this check is one pass over the bytes, without building the output.
fn is_normal(input: &str) -> bool {
    let bytes = input.as_bytes();
    let body = bytes.strip_prefix(b"/").unwrap_or(bytes);
    !body.is_empty()
        && body
            .split(|&b| b == b'/')
            .all(|segment| !segment.is_empty() && segment != b".")
}

/// L1.2 relative path to dotted name, not validated.
///
/// Empty segments are dropped; a last segment ending in `.py` loses the suffix, and is
/// dropped entirely when what remains is `__init__`; any other last segment (`mod.pyc`,
/// `data.txt`) is kept word for word. Nothing is returned only when no segment is left
/// (so `a/.py` gives `a.`, following the reference code, see docs/module-naming.md).
pub fn relative_to_dotted(relative: &str) -> Option<String> {
    // One pass, no list of segments: this runs for every code object a legacy filter
    // decision or path candidate names.
    let mut out = String::with_capacity(relative.len());
    let mut parts = 0usize;
    let mut segments = relative.split('/').filter(|s| !s.is_empty()).peekable();
    while let Some(segment) = segments.next() {
        let segment = if segments.peek().is_some() {
            segment
        } else {
            match segment.strip_suffix(".py") {
                Some("__init__") => break,
                Some(stem) => stem,
                None => segment,
            }
        };
        if parts > 0 {
            out.push('.');
        }
        out.push_str(segment);
        parts += 1;
    }
    (parts > 0).then_some(out)
}

/// L1.3 filesystem-shaped name of a target: leading `/`s removed, a first segment ending in
/// `:` (a drive) removed, the rest converted with L1.2.
pub fn filesystem_shaped_name(target: &str) -> Option<String> {
    let rest = target.trim_start_matches('/');
    let rest = match rest.split_once('/') {
        Some((first, tail)) if first.ends_with(':') => tail,
        None if rest.ends_with(':') => "",
        _ => rest,
    };
    relative_to_dotted(rest)
}
