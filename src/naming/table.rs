//! `sys.modules` as the legacy scan (spec L4) sees it.
//!
//! A [`ModuleTable`] hands out the entries of a snapshot, in mapping order. Each
//! [`ModuleEntry`] can say cheaply whether its key is a `str` and whether its value is
//! `None`, and can be *read*: the hook-free attribute reads of L4.3/L4.5/L4.7, returned as
//! [`ObjectAttrs`] together with a [`Stamp`]. The stamp lets a caller that cached the read
//! ask later, cheaply, whether reading the same entry again would give the same result
//! ([`ModuleEntry::is_current`]); this is what makes the legacy scan's per-entry cache exact.

use super::python::PyStamp;

/// Identity of one `(key object, value object)` pair. Implementations guarantee that two
/// live pairs never share an identity, and that an identity is not reused while a
/// [`Stamp`] taken from it is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntryId {
    pub key: u64,
    pub value: u64,
}

/// One attribute as a hook-free read found it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AttrValue {
    /// Not there (no instance-dict entry, no plain class attribute, no hook that could
    /// produce it).
    #[default]
    Absent,
    /// A `str` (subclasses included), as UTF-8 text.
    Str(String),
    /// Something that is not a `str`, `None` included. (A Python `str` that cannot be
    /// encoded as UTF-8, i.e. one holding lone surrogates, also lands here, as it did in
    /// the reference, whose `extract::<String>()` failed on it.)
    NotStr,
    /// Only a hook (`__getattr__`, `__getattribute__`, a descriptor's `__get__`) could
    /// produce it. Treated as absent, and counted.
    HookOnly,
}

impl AttrValue {
    /// Shorthand for `AttrValue::Str`.
    pub fn str(value: impl Into<String>) -> Self {
        AttrValue::Str(value.into())
    }

    /// The text, when the value is a `str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Whether only a hook could have produced the attribute.
    pub fn is_hook_only(&self) -> bool {
        matches!(self, AttrValue::HookOnly)
    }
}

/// The `__spec__` attribute of a `sys.modules` value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SpecValue {
    /// No `__spec__`.
    #[default]
    Absent,
    /// `__spec__` is `None`.
    None,
    /// Only a hook could produce `__spec__`.
    HookOnly,
    /// Some object (normally a `ModuleSpec`), with its two attributes the scan uses.
    Object { origin: AttrValue, name: AttrValue },
}

impl SpecValue {
    /// A spec object with the given `origin` and `name`.
    pub fn object(origin: AttrValue, name: AttrValue) -> Self {
        SpecValue::Object { origin, name }
    }
}

/// The attributes of a `sys.modules` value that the legacy scan reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectAttrs {
    pub spec: SpecValue,
    pub file: AttrValue,
    pub cached: AttrValue,
    pub name: AttrValue,
}

impl ObjectAttrs {
    /// How many of the attributes (spec fields included) only a hook could produce.
    pub fn hook_only_count(&self) -> u64 {
        let spec = match &self.spec {
            SpecValue::HookOnly => 1,
            SpecValue::Object { origin, name } => {
                u64::from(origin.is_hook_only()) + u64::from(name.is_hook_only())
            }
            SpecValue::Absent | SpecValue::None => 0,
        };
        spec + u64::from(self.file.is_hook_only())
            + u64::from(self.cached.is_hook_only())
            + u64::from(self.name.is_hook_only())
    }
}

/// Proof of what a read depended on; see [`ModuleEntry::is_current`].
pub struct Stamp {
    pub(crate) inner: StampInner,
}

pub(crate) enum StampInner {
    /// A version that changes whenever anything the read depended on changes.
    Version(u64),
    /// Python: checks on the objects the read looked at (which the stamp keeps alive).
    Python(PyStamp),
}

impl Stamp {
    /// A stamp made of a single version number (used by [`super::MemTable`]).
    pub fn version(version: u64) -> Self {
        Stamp {
            inner: StampInner::Version(version),
        }
    }

    /// The version, for a stamp made by [`Stamp::version`].
    pub fn as_version(&self) -> Option<u64> {
        match self.inner {
            StampInner::Version(v) => Some(v),
            StampInner::Python(_) => None,
        }
    }
}

impl std::fmt::Debug for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            StampInner::Version(v) => write!(f, "Stamp::Version({v})"),
            StampInner::Python(p) => write!(f, "Stamp::Python({} checks)", p.len()),
        }
    }
}

/// The result of reading one entry.
#[derive(Debug)]
pub struct EntryRead {
    /// The key's text (the key is a `str` whenever an entry is read).
    pub key: String,
    pub attrs: ObjectAttrs,
    pub stamp: Stamp,
}

/// One entry of a [`ModuleTable`] snapshot.
pub trait ModuleEntry {
    /// The identity of the `(key, value)` pair.
    fn id(&self) -> EntryId;
    /// Whether the key is a `str` whose text can be had as UTF-8. A `false` here aborts
    /// the whole scan (L4.2).
    fn key_is_str(&self) -> bool;
    /// Whether the value is `None` (the scan skips it, L4.2).
    fn value_is_none(&self) -> bool;
    /// Reads the key text and the value's attributes without running any hook (L4.7).
    /// Only called when [`key_is_str`](Self::key_is_str) is true and the value is not
    /// `None`.
    fn read(&self) -> EntryRead;
    /// Whether [`read`](Self::read) would now return exactly what it returned when
    /// `stamp` was made for this same entry identity. Must never say `true` wrongly;
    /// may say `false` needlessly (that only costs a re-read).
    fn is_current(&self, stamp: &Stamp) -> bool;
}

/// `sys.modules` as it is at the moment of a lookup.
pub trait ModuleTable {
    /// The real `sys.modules` behind this table, if that is what it is (an engine may
    /// keep state beside it, see [`PySysModules`](crate::naming::PySysModules)).
    fn py_sys_modules(&self) -> Option<&crate::naming::PySysModules> {
        None
    }

    /// Calls `visit` for each entry of a snapshot of the mapping, in mapping (insertion)
    /// order, until `visit` breaks. The snapshot is taken when the call starts (L4.1).
    fn for_each_entry(&self, visit: &mut dyn FnMut(&dyn ModuleEntry) -> std::ops::ControlFlow<()>);
}

/// A table with no entries (for engines and callers that have no `sys.modules`).
impl ModuleTable for () {
    fn for_each_entry(
        &self,
        _visit: &mut dyn FnMut(&dyn ModuleEntry) -> std::ops::ControlFlow<()>,
    ) {
    }
}
