//! The tables of the human formats, laid out by `tabled`: column widths, alignment and wide
//! glyphs (display width via `unicode-width`) are its job; what a cell says is the caller's.

use tabled::builder::Builder;
use tabled::grid::config::Offset;
use tabled::settings::object::Columns;
use tabled::settings::style::LineChar;
use tabled::settings::{Alignment, Margin, Padding, Style};

use super::TABLE_WIDTH;
use crate::format::{elide, elide_head, width};

/// How a column lines up its cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
    Center,
}

/// A cell on one line: a line break or tab in a name would split a row.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r', '\t'], " ")
}

/// The `max` width of a terminal column that takes whatever room the others leave within
/// [`TABLE_WIDTH`] (at least [`REST_MIN`] columns). Meant for a path: a cell too wide for it
/// keeps only its tail (`…/runs/nightly-3`), the part that tells runs apart.
pub(crate) const REST: usize = 0;
const REST_MIN: usize = 12;

/// A terminal table: columns two spaces apart, indented by two, each column as wide as its
/// widest cell but at most its `max` width (wider cells lose their middle, so a path keeps its
/// file name; [`REST`]: the room left). Returns the lines, header first, then one line per
/// row, without trailing blanks.
pub(crate) fn terminal(
    columns: &[(usize, Align)],
    header: &[&str],
    rows: &[Vec<String>],
) -> Vec<String> {
    // The widest cell of each fixed column, after its cap.
    let mut used = 1 + 2 * columns.len();
    for (i, (max, _)) in columns.iter().enumerate() {
        if *max == REST {
            continue;
        }
        let widest = std::iter::once(header.get(i).copied().unwrap_or(""))
            .chain(rows.iter().map(|r| r.get(i).map_or("", String::as_str)))
            .map(|c| width(&one_line(c)).min(*max))
            .max()
            .unwrap_or(0);
        used += widest;
    }
    let rest = TABLE_WIDTH.saturating_sub(used).max(REST_MIN);
    let fit = |cells: &mut dyn Iterator<Item = &str>| -> Vec<String> {
        cells
            .zip(columns)
            .map(|(c, (max, _))| {
                if *max == REST {
                    elide_head(&one_line(c), rest)
                } else {
                    elide(&one_line(c), *max)
                }
            })
            .collect()
    };
    let mut b = Builder::default();
    b.push_record(fit(&mut header.iter().copied()));
    for row in rows {
        b.push_record(fit(&mut row.iter().map(String::as_str)));
    }
    let mut t = b.build();
    t.with(Style::empty())
        .with(Padding::new(1, 1, 0, 0))
        .with(Margin::new(1, 0, 0, 0));
    for (i, (_, align)) in columns.iter().enumerate() {
        t.modify(Columns::one(i), alignment(*align));
    }
    t.to_string()
        .lines()
        .map(|l| l.trim_end().to_owned())
        .collect()
}

/// A GitHub-flavoured Markdown table; cells are Markdown already (escaped by the caller). The
/// delimiter row carries each column's alignment (`---:` right, `:---:` centre).
pub(crate) fn markdown(columns: &[Align], header: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let mut b = Builder::default();
    b.push_record(header.iter().map(|h| one_line(h)));
    for row in rows {
        b.push_record(row.iter().map(|c| one_line(c)));
    }
    let mut t = b.build();
    t.with(Style::markdown());
    for (i, align) in columns.iter().enumerate() {
        // The delimiter row is the line above the first body row.
        let cell = (1, i);
        match align {
            Align::Left => {}
            Align::Right => {
                t.modify(cell, LineChar::horizontal(':', Offset::End(0)));
            }
            Align::Center => {
                t.modify(
                    cell,
                    (
                        LineChar::horizontal(':', Offset::Start(0)),
                        LineChar::horizontal(':', Offset::End(0)),
                    ),
                );
            }
        }
        t.modify(Columns::one(i), alignment(*align));
    }
    t.to_string().lines().map(str::to_owned).collect()
}

fn alignment(a: Align) -> Alignment {
    match a {
        Align::Left => Alignment::left(),
        Align::Right => Alignment::right(),
        Align::Center => Alignment::center(),
    }
}
