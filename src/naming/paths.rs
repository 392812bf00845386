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
    let mut out = String::new();
    normalise_into(input, &mut out).then_some(out)
}

/// [`normalise`], borrowing `input` when it is already normal (most paths are).
pub fn normalised(input: &str) -> Option<std::borrow::Cow<'_, str>> {
    if !input.is_empty() && is_normal(input) {
        return Some(std::borrow::Cow::Borrowed(input));
    }
    normalise(input).map(std::borrow::Cow::Owned)
}

/// [`normalise`], appending the result to `out`; false (and `out` unchanged) when it
/// gives nothing.
pub fn normalise_into(input: &str, out: &mut String) -> bool {
    if input.is_empty() {
        return false;
    }
    if is_normal(input) {
        out.push_str(input);
        return true;
    }
    let absolute = input.starts_with('/');
    let start = out.len();
    out.reserve(input.len());
    for segment in input.split('/').filter(|s| !s.is_empty() && *s != ".") {
        if absolute || out.len() > start {
            out.push('/');
        }
        out.push_str(segment);
    }
    absolute || out.len() > start
}

/// True when [`normalise`] would return `input` unchanged: at least one segment, every
/// segment non-empty and not `.` (one leading `/` allowed). Most paths a recorder sees are
/// already normal; this check is one pass over the bytes, without building the output.
fn is_normal(input: &str) -> bool {
    let bytes = input.as_bytes();
    let body = bytes.strip_prefix(b"/").unwrap_or(bytes);
    // A segment is empty or `.` exactly when a `/` (or the start) is followed by the end,
    // by `/`, or by `.` and then the end or `/`: only the bytes after each `/` are looked
    // at, and the `/`s are found a vector at a time.
    let bad_after = |at: usize| match body.get(at) {
        None | Some(b'/') => true,
        Some(b'.') => matches!(body.get(at + 1), None | Some(b'/')),
        Some(_) => false,
    };
    !bad_after(0) && !memchr::memchr_iter(b'/', body).any(|slash| bad_after(slash + 1))
}

/// L1.2 relative path to dotted name, not validated.
///
/// Empty segments are dropped; a last segment ending in `.py` loses the suffix, and is
/// dropped entirely when what remains is `__init__`; any other last segment (`mod.pyc`,
/// `data.txt`) is kept word for word. Nothing is returned only when no segment is left
/// (so `a/.py` gives `a.`, following the reference code, see docs/module-naming.md).
pub fn relative_to_dotted(relative: &str) -> Option<String> {
    // The usual shape (no empty segment: no leading, trailing or doubled `/`): the
    // directories with `/` turned into `.`, then the last segment. This runs for every
    // file a legacy filter decision or path candidate names.
    if !relative.is_empty()
        && !relative.starts_with('/')
        && !relative.ends_with('/')
        && memchr::memmem::find(relative.as_bytes(), b"//").is_none()
    {
        let (dir, last) = match relative.rfind('/') {
            Some(i) => (&relative[..i], &relative[i + 1..]),
            None => ("", relative),
        };
        let last = match last.strip_suffix(".py") {
            Some("__init__") => None,
            Some(stem) => Some(stem),
            None => Some(last),
        };
        if dir.is_empty() && last.is_none() {
            return None;
        }
        let mut out = String::with_capacity(relative.len());
        out.push_str(dir);
        // SAFETY: `/` and `.` are both ASCII, so the bytes stay UTF-8.
        for b in unsafe { out.as_mut_vec() } {
            if *b == b'/' {
                *b = b'.';
            }
        }
        if let Some(last) = last {
            if !dir.is_empty() {
                out.push('.');
            }
            out.push_str(last);
        }
        return Some(out);
    }
    // Any other shape: one pass over the segments, the empty ones dropped.
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
