//! An in-memory [`ModuleTable`] for tests and benchmarks.
//!
//! It models what the legacy scan can observe of `sys.modules`: an insertion-ordered map
//! whose keys are `str` or not, and whose values are `None` or objects with (possibly
//! absent, non-`str` or hook-only) attributes. Objects have an identity and can be shared
//! by several keys (`sys.modules["a"] = sys.modules["b"]`), and their attributes can change
//! after insertion (`__file__` set while the module body runs), exactly the situations the
//! scan cache has to survive.

use std::cell::{Cell, RefCell};
use std::ops::ControlFlow;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::table::{EntryId, EntryRead, ModuleEntry, ModuleTable, ObjectAttrs, Stamp};

/// Identities of keys and objects: unique in the process, never reused.
fn fresh_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The identity used for a `None` value.
const NONE_ID: u64 = 0;

struct ObjectInner {
    id: u64,
    attrs: RefCell<ObjectAttrs>,
    version: Cell<u64>,
}

/// A module-like object: shared, mutable, with an identity.
#[derive(Clone)]
pub struct MemObject(Rc<ObjectInner>);

impl MemObject {
    /// A new object with the given attributes.
    pub fn new(attrs: ObjectAttrs) -> Self {
        MemObject(Rc::new(ObjectInner {
            id: fresh_id(),
            attrs: RefCell::new(attrs),
            version: Cell::new(0),
        }))
    }

    /// A typical imported module: `__spec__` with `name` and `origin`, `__file__`,
    /// `__name__`, no `__cached__`.
    pub fn module(name: &str, file: &str) -> Self {
        use super::table::{AttrValue, SpecValue};
        MemObject::new(ObjectAttrs {
            spec: SpecValue::object(AttrValue::str(file), AttrValue::str(name)),
            file: AttrValue::str(file),
            cached: AttrValue::Absent,
            name: AttrValue::str(name),
        })
    }

    /// The object's identity.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// A copy of the current attributes.
    pub fn attrs(&self) -> ObjectAttrs {
        self.0.attrs.borrow().clone()
    }

    /// Changes attributes (like assigning `module.__file__`), which changes the version.
    pub fn update(&self, change: impl FnOnce(&mut ObjectAttrs)) {
        change(&mut self.0.attrs.borrow_mut());
        self.0.version.set(self.0.version.get() + 1);
    }

    /// Number of updates so far.
    pub fn version(&self) -> u64 {
        self.0.version.get()
    }
}

impl std::fmt::Debug for MemObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemObject")
            .field("id", &self.0.id)
            .field("attrs", &*self.0.attrs.borrow())
            .finish()
    }
}

/// A `sys.modules` value.
#[derive(Clone, Debug)]
pub enum MemValue {
    /// `None` (an import blocker).
    None,
    /// Any other object.
    Object(MemObject),
}

impl MemValue {
    fn id(&self) -> u64 {
        match self {
            MemValue::None => NONE_ID,
            MemValue::Object(o) => o.id(),
        }
    }
}

impl From<MemObject> for MemValue {
    fn from(object: MemObject) -> Self {
        MemValue::Object(object)
    }
}

#[derive(Clone, Debug)]
enum MemKey {
    Str { id: u64, text: String },
    NotStr { id: u64 },
}

impl MemKey {
    fn id(&self) -> u64 {
        match self {
            MemKey::Str { id, .. } | MemKey::NotStr { id } => *id,
        }
    }
}

/// An insertion-ordered, in-memory `sys.modules`.
#[derive(Default, Debug)]
pub struct MemTable {
    entries: Vec<(MemKey, MemValue)>,
}

impl MemTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|(k, _)| matches!(k, MemKey::Str { text, .. } if text == key))
    }

    /// `sys.modules[key] = value`: an existing key keeps its place and its key object, a
    /// new key goes to the end.
    pub fn set(&mut self, key: &str, value: impl Into<MemValue>) {
        let value = value.into();
        match self.position(key) {
            Some(i) => self.entries[i].1 = value,
            None => self.entries.push((
                MemKey::Str {
                    id: fresh_id(),
                    text: key.to_string(),
                },
                value,
            )),
        }
    }

    /// Adds an entry under a new non-`str` key (say a `Path` or an `int`) and returns the
    /// key's identity.
    pub fn insert_non_str_key(&mut self, value: impl Into<MemValue>) -> u64 {
        let id = fresh_id();
        self.entries.push((MemKey::NotStr { id }, value.into()));
        id
    }

    /// `del sys.modules[key]`.
    pub fn remove(&mut self, key: &str) -> Option<MemValue> {
        let i = self.position(key)?;
        Some(self.entries.remove(i).1)
    }

    /// Removes the entry at `index` (whatever its key).
    pub fn remove_at(&mut self, index: usize) -> MemValue {
        self.entries.remove(index).1
    }

    /// Replaces the value of the entry at `index`, keeping its key object.
    pub fn set_at(&mut self, index: usize, value: impl Into<MemValue>) {
        self.entries[index].1 = value.into();
    }

    /// The value under a `str` key.
    pub fn get(&self, key: &str) -> Option<&MemValue> {
        self.position(key).map(|i| &self.entries[i].1)
    }

    /// The entry at `index`: its key text (`None` for a non-`str` key) and its value.
    pub fn entry_at(&self, index: usize) -> (Option<&str>, &MemValue) {
        let (key, value) = &self.entries[index];
        let key = match key {
            MemKey::Str { text, .. } => Some(text.as_str()),
            MemKey::NotStr { .. } => None,
        };
        (key, value)
    }
}

struct MemEntry<'a> {
    key: &'a MemKey,
    value: &'a MemValue,
}

impl ModuleEntry for MemEntry<'_> {
    fn id(&self) -> EntryId {
        EntryId {
            key: self.key.id(),
            value: self.value.id(),
        }
    }

    fn key_is_str(&self) -> bool {
        matches!(self.key, MemKey::Str { .. })
    }

    fn value_is_none(&self) -> bool {
        matches!(self.value, MemValue::None)
    }

    fn read(&self) -> EntryRead {
        let key = match self.key {
            MemKey::Str { text, .. } => text.clone(),
            MemKey::NotStr { .. } => String::new(),
        };
        match self.value {
            MemValue::Object(object) => EntryRead {
                key,
                attrs: object.attrs(),
                stamp: Stamp::version(object.version()),
            },
            MemValue::None => EntryRead {
                key,
                attrs: ObjectAttrs::default(),
                stamp: Stamp::version(0),
            },
        }
    }

    fn is_current(&self, stamp: &Stamp) -> bool {
        match self.value {
            MemValue::Object(object) => stamp.as_version() == Some(object.version()),
            MemValue::None => stamp.as_version() == Some(0),
        }
    }
}

impl ModuleTable for MemTable {
    fn for_each_entry(&self, visit: &mut dyn FnMut(&dyn ModuleEntry) -> ControlFlow<()>) {
        for (key, value) in &self.entries {
            if visit(&MemEntry { key, value }).is_break() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::table::AttrValue;

    fn ids(table: &MemTable) -> Vec<EntryId> {
        let mut out = Vec::new();
        table.for_each_entry(&mut |e| {
            out.push(e.id());
            ControlFlow::Continue(())
        });
        out
    }

    #[test]
    fn set_on_existing_key_keeps_position_and_key_identity() {
        let mut t = MemTable::new();
        t.set("a", MemObject::module("a", "/a.py"));
        t.set("b", MemValue::None);
        let before = ids(&t);
        let replacement = MemObject::module("a", "/a2.py");
        t.set("a", replacement.clone());
        let after = ids(&t);
        assert_eq!(after.len(), 2);
        assert_eq!(after[0].key, before[0].key);
        assert_eq!(after[0].value, replacement.id());
        assert_ne!(after[0].value, before[0].value);
        assert_eq!(after[1], before[1]);
    }

    #[test]
    fn updates_invalidate_stamps_of_every_alias() {
        let mut t = MemTable::new();
        let m = MemObject::module("a", "/a.py");
        t.set("a", m.clone());
        t.set("alias", m.clone());
        let mut stamps = Vec::new();
        t.for_each_entry(&mut |e| {
            stamps.push(e.read().stamp);
            ControlFlow::Continue(())
        });
        let mut current = Vec::new();
        t.for_each_entry(&mut |e| {
            current.push(e.is_current(&stamps[current.len()]));
            ControlFlow::Continue(())
        });
        assert_eq!(current, [true, true]);
        m.update(|a| a.file = AttrValue::str("/b.py"));
        current.clear();
        t.for_each_entry(&mut |e| {
            current.push(e.is_current(&stamps[current.len()]));
            ControlFlow::Continue(())
        });
        assert_eq!(current, [false, false]);
    }
}
