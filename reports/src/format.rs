//! Number and text formatting shared by the gates and the renderers.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// `12345` → `12,345`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` and the noun that goes with it: `1 run`, `2 runs`, `1,000 runs`.
pub(crate) fn n_of(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// A fraction as a percentage with three significant digits: `0.001` → `0.1%`,
/// `0.000123` → `0.0123%`, `0.5` → `50%`.
pub(crate) fn rate(r: f64) -> String {
    let p = r * 100.0;
    if p == 0.0 || !p.is_finite() {
        return format!("{p}%");
    }
    let decimals = (2 - p.abs().log10().floor() as i32).clamp(0, 6) as usize;
    let mut s = format!("{p:.decimals$}");
    if s.contains('.') {
        s.truncate(s.trim_end_matches('0').trim_end_matches('.').len());
    }
    if s == "0" {
        // Too small for six decimals: say so rather than print a misleading zero.
        return format!("{p:.1e}%");
    }
    s + "%"
}

/// Display width in terminal columns: a CJK ideograph or an emoji takes two, a combining
/// mark none (`unicode-width`, as `tabled` measures cells).
pub(crate) fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

fn char_width(c: char) -> usize {
    UnicodeWidthChar::width(c).unwrap_or(0)
}

/// `s` cut to at most `max` columns by replacing its middle with `…`; the tail, which for a
/// path is the file name, keeps two thirds of the room. A wide glyph is never split: the cut
/// may leave the result one column short of `max`.
pub(crate) fn elide(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    if max == 1 {
        return "…".to_owned();
    }
    let head_room = max - 1 - (max - 1) * 2 / 3;
    let mut head = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = char_width(c);
        if used + w > head_room {
            break;
        }
        used += w;
        head.push(c);
    }
    // What a wide glyph left of the head's room goes to the tail.
    let tail_room = max - 1 - used;
    let mut tail: Vec<char> = Vec::new();
    let mut used = 0;
    for c in s.chars().rev() {
        let w = char_width(c);
        if used + w > tail_room {
            break;
        }
        used += w;
        tail.push(c);
    }
    head.push('…');
    head.extend(tail.into_iter().rev());
    head
}

/// `s` cut to at most `max` columns by replacing its start with `…`.
pub(crate) fn elide_head(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_owned();
    }
    let mut tail: Vec<char> = Vec::new();
    let mut used = 1;
    for c in s.chars().rev() {
        let w = char_width(c);
        if used + w > max {
            break;
        }
        used += w;
        tail.push(c);
    }
    let mut out = String::from(if max == 0 { "" } else { "…" });
    out.extend(tail.into_iter().rev());
    out
}

/// Greedy word wrap of `text` to lines of at most `max` columns, each starting with
/// `indent`; a word longer than the room is elided.
pub(crate) fn wrap(text: &str, indent: &str, max: usize) -> Vec<String> {
    let room = max.saturating_sub(width(indent)).max(10);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let word = elide(word, room);
        if !line.is_empty() && width(&line) + 1 + width(&word) > room {
            lines.push(format!("{indent}{line}"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        lines.push(format!("{indent}{line}"));
    }
    lines
}

/// An engine's name for display: the name, or `none`.
pub(crate) fn name_or_none(n: Option<&str>) -> &str {
    n.unwrap_or("none")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(n_of(1, "run", "runs"), "1 run");
        assert_eq!(n_of(0, "run", "runs"), "0 runs");
    }

    #[test]
    fn rates_have_three_significant_digits() {
        assert_eq!(rate(0.0), "0%");
        assert_eq!(rate(0.001), "0.1%");
        assert_eq!(rate(0.000123), "0.0123%");
        assert_eq!(rate(0.0012345), "0.123%");
        assert_eq!(rate(0.5), "50%");
        assert_eq!(rate(1.0), "100%");
        assert_eq!(rate(1e-12), "1.0e-10%");
    }

    #[test]
    fn elide_keeps_both_ends_within_the_width() {
        let p = "/srv/app/src/very/deep/package/tree/module_name.py";
        let e = elide(p, 30);
        assert_eq!(width(&e), 30);
        assert!(e.starts_with("/srv/app/"), "{e}");
        assert!(e.ends_with("module_name.py"), "{e}");
        assert_eq!(elide("short", 30), "short");
        assert_eq!(elide_head("/srv/ci/runs/nightly-3", 11), "…/nightly-3");
        assert_eq!(elide_head("short", 12), "short");
    }

    #[test]
    fn wide_glyphs_count_two_columns_and_are_never_split() {
        assert_eq!(width("价格"), 4);
        assert_eq!(width("✅ pass"), 7);
        let s = "/srv/应用/价格/模块/非常长的文件名.py";
        for max in 5..width(s) {
            let e = elide(s, max);
            assert!(width(&e) <= max && width(&e) + 1 >= max, "{max}: {e}");
            assert!(e.contains('…'), "{e}");
        }
        assert!(elide(s, 12).ends_with(".py"));
    }

    #[test]
    fn wrap_respects_the_width_and_indent() {
        let text = "one two three four five six seven eight nine ten eleven twelve";
        let lines = wrap(text, "    ", 24);
        assert!(lines.len() > 2);
        for l in &lines {
            assert!(width(l) <= 24, "{l:?}");
            assert!(l.starts_with("    "));
        }
        assert_eq!(
            lines.join(" ").split_whitespace().collect::<Vec<_>>(),
            text.split_whitespace().collect::<Vec<_>>()
        );
    }
}
