//! `delete-legacy`: the legacy engine out of the code, syntactically.
//!
//! Rust sources are parsed with `syn` (proc-macro2 span locations on), and every item,
//! statement, field, variant or match arm carrying `#[cfg(feature = "legacy-resolver")]`
//! loses its exact source range (with its doc comments and the `//` comment lines right
//! above it). `#[cfg(not(feature = "legacy-resolver"))]` attributes are dropped (their item
//! stays), `#[cfg_attr(not(feature = "legacy-resolver"), X)]` becomes `#[X]` and
//! `#[cfg_attr(feature = "legacy-resolver", X)]` goes. A file whose inner attribute is
//! `#![cfg(feature = "legacy-resolver")]` is deleted. The results go through rustfmt. Any
//! other mention of the feature in code (`cfg!(..)`, `any(..)`, a shape not handled) is a
//! refusal naming the file and line, never a guess. No line regex touches Rust code.

use std::path::Path;
use std::process::{Command, Stdio};

use proc_macro2::LineColumn;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::visit::Visit;

use super::change::ChangeSet;
use super::LifecycleError;

/// The cargo feature of the legacy engine.
pub const FEATURE: &str = "legacy-resolver";
/// The legacy engine's folder.
pub const LEGACY_DIR: &str = "src/naming/legacy";
/// Doc sections about the legacy engine sit between these markers (removed with them).
pub const DOC_BEGIN: &str = "<!-- legacy-resolver:begin -->";
pub const DOC_END: &str = "<!-- legacy-resolver:end -->";

/// Directories never searched.
const SKIP_DIRS: [&str; 6] = [
    "target",
    ".git",
    ".venv",
    ".stamps",
    "node_modules",
    "__pycache__",
];

/// The result of removing gated code from one Rust source.
#[derive(Debug, PartialEq)]
pub enum RustEdit {
    Unchanged,
    /// The whole file is gated on the feature.
    DeleteFile,
    Edited(String),
}

/// Adds to `changes` everything `delete-legacy` removes in the repository at `root`.
pub fn plan_removal(root: &Path, changes: &mut ChangeSet) -> Result<(), LifecycleError> {
    let mut rust = Vec::new();
    let mut docs = Vec::new();
    walk(root, root, &mut rust, &mut docs)?;
    let mut problems = Vec::new();
    for rel in &rust {
        if rel.starts_with(&format!("{LEGACY_DIR}/")) {
            changes.delete(rel)?;
            continue;
        }
        let text = std::fs::read_to_string(root.join(rel))
            .map_err(|e| LifecycleError::Io(format!("{rel}: {e}")))?;
        if !text.contains(FEATURE) {
            continue;
        }
        match remove_gated(&text) {
            Ok(RustEdit::Unchanged) => {}
            Ok(RustEdit::DeleteFile) => changes.delete(rel)?,
            Ok(RustEdit::Edited(new)) => changes.write(
                rel,
                rustfmt(&new).map_err(|e| {
                    LifecycleError::Usage(format!("{rel}: rustfmt after the removal failed: {e}"))
                })?,
            )?,
            Err(lines) => problems.extend(lines.into_iter().map(|l| format!("{rel}:{l}"))),
        }
    }
    if !problems.is_empty() {
        return Err(LifecycleError::Refused(
            problems
                .into_iter()
                .map(|p| {
                    format!(
                        "{p}: mentions the `{FEATURE}` feature in a form delete-legacy cannot \
                         remove syntactically; move it behind the legacy engine's interface"
                    )
                })
                .collect(),
        ));
    }
    for rel in &docs {
        let text = std::fs::read_to_string(root.join(rel))
            .map_err(|e| LifecycleError::Io(format!("{rel}: {e}")))?;
        match without_doc_sections(&text) {
            Ok(Some(new)) => changes.write(rel, new)?,
            Ok(None) => {}
            Err(e) => return Err(LifecycleError::Usage(format!("{rel}: {e}"))),
        }
    }
    let cargo = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&cargo)
        .map_err(|e| LifecycleError::Io(format!("Cargo.toml: {e}")))?;
    changes.write("Cargo.toml", without_feature(&text)?)?;
    Ok(())
}

fn walk(
    root: &Path,
    dir: &Path,
    rust: &mut Vec<String>,
    docs: &mut Vec<String>,
) -> Result<(), LifecycleError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| LifecycleError::Io(format!("{}: {e}", dir.display())))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            if !SKIP_DIRS.contains(&name.as_str()) && !name.starts_with('.') {
                walk(root, &path, rust, docs)?;
            }
        } else if kind.is_file() {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            if name.ends_with(".rs") {
                rust.push(rel);
            } else if name.ends_with(".md") {
                docs.push(rel);
            }
        }
    }
    Ok(())
}

/// What an attribute says about the feature.
#[derive(Debug, PartialEq)]
enum Gate {
    /// Not about the feature.
    None,
    /// `cfg(feature = ...)`: the node goes.
    Remove,
    /// `cfg(not(feature = ...))` or `cfg_attr(feature = ..., X)`: the attribute goes.
    DropAttr,
    /// `cfg_attr(not(feature = ...), X)`: becomes `#[X]` (the source range of `X`).
    Unwrap(LineColumn, LineColumn),
    /// Mentions the feature some other way.
    Unknown,
}

fn is_feature(meta: &syn::Meta) -> bool {
    matches!(meta, syn::Meta::NameValue(nv) if nv.path.is_ident("feature")
        && matches!(&nv.value, syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) if s.value() == FEATURE))
}

fn is_not_feature(meta: &syn::Meta) -> bool {
    match meta {
        syn::Meta::List(l) if l.path.is_ident("not") => l
            .parse_args::<syn::Meta>()
            .map(|m| is_feature(&m))
            .unwrap_or(false),
        _ => false,
    }
}

fn classify(attr: &syn::Attribute) -> Gate {
    if attr.path().is_ident("doc") {
        return Gate::None;
    }
    let text = quote_tokens(attr);
    if !text.contains(FEATURE) {
        return Gate::None;
    }
    let syn::Meta::List(list) = &attr.meta else {
        return Gate::Unknown;
    };
    if list.path.is_ident("cfg") {
        return match list.parse_args::<syn::Meta>() {
            Ok(m) if is_feature(&m) => Gate::Remove,
            Ok(m) if is_not_feature(&m) => Gate::DropAttr,
            _ => Gate::Unknown,
        };
    }
    if list.path.is_ident("cfg_attr") {
        let parsed = list.parse_args_with(
            syn::punctuated::Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated,
        );
        if let Ok(parts) = parsed {
            let mut it = parts.iter();
            if let Some(pred) = it.next() {
                if is_feature(pred) {
                    return Gate::DropAttr;
                }
                let rest: Vec<&syn::Meta> = it.collect();
                if let (true, Some(first), Some(last)) =
                    (is_not_feature(pred), rest.first(), rest.last())
                {
                    return Gate::Unwrap(first.span().start(), last.span().end());
                }
            }
        }
    }
    Gate::Unknown
}

fn quote_tokens<T: ToTokens>(t: &T) -> String {
    t.to_token_stream().to_string()
}

/// An edit of the source: replace bytes `start..end` with `with`.
#[derive(Debug, Clone)]
struct Edit {
    start: usize,
    end: usize,
    with: String,
}

struct Finder<'a> {
    src: &'a Src,
    edits: Vec<Edit>,
    unknown: Vec<usize>,
}

/// A source with line starts, to turn span line/columns into byte offsets.
struct Src {
    text: String,
    lines: Vec<usize>,
}

impl Src {
    fn new(text: &str) -> Src {
        let mut lines = vec![0];
        lines.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Src {
            text: text.to_owned(),
            lines,
        }
    }

    fn offset(&self, lc: LineColumn) -> usize {
        let start = self
            .lines
            .get(lc.line.saturating_sub(1))
            .copied()
            .unwrap_or(self.text.len());
        let line = &self.text[start..];
        start
            + line
                .char_indices()
                .nth(lc.column)
                .map(|(i, _)| i)
                .unwrap_or(line.len())
    }
}

impl Finder<'_> {
    /// Handles the attributes of one node spanning `node`; true when the node goes.
    fn node(
        &mut self,
        attrs: &[syn::Attribute],
        node: proc_macro2::Span,
        trailing_comma: bool,
    ) -> bool {
        let mut remove = false;
        let mut attr_edits = Vec::new();
        for a in attrs {
            let (s, e) = (
                self.src.offset(a.span().start()),
                self.src.offset(a.span().end()),
            );
            match classify(a) {
                Gate::None => {}
                Gate::Remove => remove = true,
                Gate::DropAttr => attr_edits.push(self.line_range(s, e, false, false)),
                Gate::Unwrap(from, to) => {
                    let inner = &self.src.text[self.src.offset(from)..self.src.offset(to)];
                    attr_edits.push(Edit {
                        start: s,
                        end: e,
                        with: format!("#[{inner}]"),
                    })
                }
                Gate::Unknown => self.unknown.push(a.span().start().line),
            }
        }
        if remove {
            let start = attrs
                .iter()
                .map(|a| self.src.offset(a.span().start()))
                .min()
                .unwrap_or_else(|| self.src.offset(node.start()));
            let end = self.src.offset(node.end()).max(start);
            let edit = self.line_range(start, end, trailing_comma, true);
            self.edits.push(edit);
            return true;
        }
        self.edits.extend(attr_edits);
        false
    }

    /// `start..end` widened to whole lines when nothing else shares them, with the
    /// following comma and (`comments`) the `//` lines right above.
    fn line_range(&self, start: usize, mut end: usize, comma: bool, comments: bool) -> Edit {
        let t = self.src.text.as_str();
        if comma {
            let rest = &t[end..];
            let skip = rest.len() - rest.trim_start_matches([' ', '\t']).len();
            if rest[skip..].starts_with(',') {
                end += skip + 1;
            }
        }
        let line_start = t[..start].rfind('\n').map_or(0, |i| i + 1);
        let mut s = start;
        if t[line_start..start].trim().is_empty() {
            s = line_start;
        }
        let rest = &t[end..];
        let trail = rest.len() - rest.trim_start_matches([' ', '\t', '\r']).len();
        if rest[trail..].starts_with('\n') && s == line_start {
            end += trail + 1;
        }
        if comments && s == line_start {
            // `//` comment lines directly above belong to the removed node.
            while s > 0 {
                let prev_start = t[..s - 1].rfind('\n').map_or(0, |i| i + 1);
                let prev = t[prev_start..s - 1].trim_start();
                if prev.starts_with("//") && !prev.starts_with("///") && !prev.starts_with("//!") {
                    s = prev_start;
                } else {
                    break;
                }
            }
        }
        Edit {
            start: s,
            end,
            with: String::new(),
        }
    }
}

fn expr_attrs(e: &syn::Expr) -> &[syn::Attribute] {
    use syn::Expr::*;
    match e {
        Array(x) => &x.attrs,
        Assign(x) => &x.attrs,
        Async(x) => &x.attrs,
        Await(x) => &x.attrs,
        Binary(x) => &x.attrs,
        Block(x) => &x.attrs,
        Break(x) => &x.attrs,
        Call(x) => &x.attrs,
        Closure(x) => &x.attrs,
        Continue(x) => &x.attrs,
        Field(x) => &x.attrs,
        ForLoop(x) => &x.attrs,
        If(x) => &x.attrs,
        Index(x) => &x.attrs,
        Let(x) => &x.attrs,
        Lit(x) => &x.attrs,
        Loop(x) => &x.attrs,
        Macro(x) => &x.attrs,
        Match(x) => &x.attrs,
        MethodCall(x) => &x.attrs,
        Paren(x) => &x.attrs,
        Path(x) => &x.attrs,
        Reference(x) => &x.attrs,
        Return(x) => &x.attrs,
        Struct(x) => &x.attrs,
        Try(x) => &x.attrs,
        Tuple(x) => &x.attrs,
        Unary(x) => &x.attrs,
        Unsafe(x) => &x.attrs,
        While(x) => &x.attrs,
        _ => &[],
    }
}

fn item_attrs(i: &syn::Item) -> &[syn::Attribute] {
    use syn::Item::*;
    match i {
        Const(x) => &x.attrs,
        Enum(x) => &x.attrs,
        ExternCrate(x) => &x.attrs,
        Fn(x) => &x.attrs,
        ForeignMod(x) => &x.attrs,
        Impl(x) => &x.attrs,
        Macro(x) => &x.attrs,
        Mod(x) => &x.attrs,
        Static(x) => &x.attrs,
        Struct(x) => &x.attrs,
        Trait(x) => &x.attrs,
        TraitAlias(x) => &x.attrs,
        Type(x) => &x.attrs,
        Union(x) => &x.attrs,
        Use(x) => &x.attrs,
        _ => &[],
    }
}

impl<'ast> Visit<'ast> for Finder<'_> {
    fn visit_item(&mut self, i: &'ast syn::Item) {
        if !self.node(item_attrs(i), i.span(), false) {
            syn::visit::visit_item(self, i);
        }
    }
    fn visit_impl_item(&mut self, i: &'ast syn::ImplItem) {
        let attrs: &[syn::Attribute] = match i {
            syn::ImplItem::Const(x) => &x.attrs,
            syn::ImplItem::Fn(x) => &x.attrs,
            syn::ImplItem::Type(x) => &x.attrs,
            syn::ImplItem::Macro(x) => &x.attrs,
            _ => &[],
        };
        if !self.node(attrs, i.span(), false) {
            syn::visit::visit_impl_item(self, i);
        }
    }
    fn visit_trait_item(&mut self, i: &'ast syn::TraitItem) {
        let attrs: &[syn::Attribute] = match i {
            syn::TraitItem::Const(x) => &x.attrs,
            syn::TraitItem::Fn(x) => &x.attrs,
            syn::TraitItem::Type(x) => &x.attrs,
            syn::TraitItem::Macro(x) => &x.attrs,
            _ => &[],
        };
        if !self.node(attrs, i.span(), false) {
            syn::visit::visit_trait_item(self, i);
        }
    }
    fn visit_stmt(&mut self, s: &'ast syn::Stmt) {
        let attrs: &[syn::Attribute] = match s {
            syn::Stmt::Local(l) => &l.attrs,
            syn::Stmt::Item(i) => item_attrs(i),
            syn::Stmt::Expr(e, _) => expr_attrs(e),
            syn::Stmt::Macro(m) => &m.attrs,
        };
        if !self.node(attrs, s.span(), false) {
            syn::visit::visit_stmt(self, s);
        }
    }
    fn visit_field(&mut self, f: &'ast syn::Field) {
        if !self.node(&f.attrs, f.span(), true) {
            syn::visit::visit_field(self, f);
        }
    }
    fn visit_field_value(&mut self, f: &'ast syn::FieldValue) {
        if !self.node(&f.attrs, f.span(), true) {
            syn::visit::visit_field_value(self, f);
        }
    }
    fn visit_variant(&mut self, v: &'ast syn::Variant) {
        if !self.node(&v.attrs, v.span(), true) {
            syn::visit::visit_variant(self, v);
        }
    }
    fn visit_arm(&mut self, a: &'ast syn::Arm) {
        if !self.node(&a.attrs, a.span(), true) {
            syn::visit::visit_arm(self, a);
        }
    }
}

/// Removes what is gated on the feature from one Rust source (see the module
/// documentation). `Err`: the lines that mention the feature in a form not handled.
pub fn remove_gated(text: &str) -> Result<RustEdit, Vec<usize>> {
    let file = syn::parse_file(text).map_err(|e| vec![e.span().start().line])?;
    let src = Src::new(text);
    let mut finder = Finder {
        src: &src,
        edits: Vec::new(),
        unknown: Vec::new(),
    };
    for a in &file.attrs {
        match classify(a) {
            Gate::Remove => return Ok(RustEdit::DeleteFile),
            Gate::None => {}
            _ => finder.unknown.push(a.span().start().line),
        }
    }
    finder.visit_file(&file);
    if !finder.unknown.is_empty() {
        return Err(finder.unknown);
    }
    let mut edits = finder.edits;
    if edits.is_empty() {
        // Mentioned, but not in an attribute: a `cfg!` or a string. Only a comment is fine.
        return match mentions_outside_comments(&file) {
            Some(line) => Err(vec![line]),
            None => Ok(RustEdit::Unchanged),
        };
    }
    edits.sort_by_key(|e| (e.start, std::cmp::Reverse(e.end)));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for e in edits {
        if e.start < at {
            continue; // inside a removed range
        }
        out.push_str(&text[at..e.start]);
        out.push_str(&e.with);
        at = e.end;
    }
    out.push_str(&text[at..]);
    // Nothing about the feature may remain in the code.
    let again = syn::parse_file(&out).map_err(|e| vec![e.span().start().line])?;
    if let Some(line) = mentions_outside_comments(&again) {
        return Err(vec![line]);
    }
    Ok(RustEdit::Edited(out))
}

/// The line of a `cfg!(..)` naming the feature, if any (attributes are handled by
/// [`classify`]; strings and comments may name it freely).
fn mentions_outside_comments(file: &syn::File) -> Option<usize> {
    struct Macros(Option<usize>);
    impl<'ast> Visit<'ast> for Macros {
        fn visit_macro(&mut self, m: &'ast syn::Macro) {
            if self.0.is_none()
                && m.path.is_ident("cfg")
                && m.tokens.to_string().contains(&format!("\"{FEATURE}\""))
            {
                self.0 = Some(m.path.span().start().line);
            }
            syn::visit::visit_macro(self, m);
        }
    }
    let mut v = Macros(None);
    v.visit_file(file);
    v.0
}

/// rustfmt over a source (stdin to stdout).
pub fn rustfmt(text: &str) -> Result<String, String> {
    use std::io::Write;
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2021", "--emit", "stdout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run rustfmt: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped");
    let input = text.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let _ = writer.join();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    String::from_utf8(out.stdout).map_err(|e| e.to_string())
}

/// Markdown without its marked legacy sections (markers included). `Ok(None)`: none.
pub fn without_doc_sections(text: &str) -> Result<Option<String>, String> {
    if !text.contains(DOC_BEGIN) {
        return Ok(None);
    }
    let mut out = String::new();
    let mut inside: Option<usize> = None;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let t = line.trim();
        if t == DOC_BEGIN {
            if let Some(open) = inside {
                return Err(format!(
                    "line {}: {DOC_BEGIN} inside the section opened on line {}",
                    n + 1,
                    open + 1
                ));
            }
            inside = Some(n);
        } else if t == DOC_END {
            if inside.take().is_none() {
                return Err(format!("line {}: {DOC_END} without {DOC_BEGIN}", n + 1));
            }
        } else if inside.is_none() {
            out.push_str(line);
        }
    }
    if let Some(open) = inside {
        return Err(format!("line {}: {DOC_BEGIN} is never closed", open + 1));
    }
    // No run of blank lines where a section was.
    while out.contains("\n\n\n") {
        out = out.replace("\n\n\n", "\n\n");
    }
    Ok(Some(out))
}

/// `Cargo.toml` without the feature (its key, its comment, and its place in `default`).
pub fn without_feature(text: &str) -> Result<String, LifecycleError> {
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| LifecycleError::Usage(format!("Cargo.toml: {e}")))?;
    if let Some(features) = doc.get_mut("features").and_then(|f| f.as_table_like_mut()) {
        features.remove(FEATURE);
        if let Some(default) = features.get_mut("default").and_then(|d| d.as_array_mut()) {
            default.retain(|v| v.as_str() != Some(FEATURE));
        }
    }
    Ok(doc.to_string())
}
