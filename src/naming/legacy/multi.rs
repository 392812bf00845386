//! A hash multimap for the legacy scanners' indexes (`wscan.rs`, `pyscan.rs`).

use rustc_hash::FxHashMap;

/// A map from a key to the entries (positions, indexes) under it. Almost every key has one,
/// which is kept inline: a `Vec` per key cost an allocation per loaded module in each of
/// the scanners' indexes, and a free each when the session stopped.
pub(crate) struct Multi<K>(FxHashMap<K, Under>);

enum Under {
    One(u32),
    More(Vec<u32>),
}

impl<K> Default for Multi<K> {
    fn default() -> Self {
        Multi(FxHashMap::default())
    }
}

impl<K: std::hash::Hash + Eq> Multi<K> {
    pub(crate) fn get(&self, key: &K) -> &[u32] {
        match self.0.get(key) {
            Some(Under::One(idx)) => std::slice::from_ref(idx),
            Some(Under::More(list)) => list,
            None => &[],
        }
    }

    pub(crate) fn push(&mut self, key: K, idx: u32) {
        use std::collections::hash_map::Entry as Slot;
        match self.0.entry(key) {
            Slot::Vacant(slot) => {
                slot.insert(Under::One(idx));
            }
            Slot::Occupied(mut slot) => {
                let under = slot.get_mut();
                match under {
                    Under::One(first) => *under = Under::More(vec![*first, idx]),
                    Under::More(list) => list.push(idx),
                }
            }
        }
    }

    /// [`push`](Self::push), unless `idx` is already under `key`.
    pub(crate) fn push_unique(&mut self, key: K, idx: u32) {
        if !self.get(&key).contains(&idx) {
            self.push(key, idx);
        }
    }

    /// Takes every occurrence of `idx` out from under `key`.
    pub(crate) fn remove(&mut self, key: &K, idx: u32) {
        let empty = match self.0.get_mut(key) {
            Some(Under::One(first)) => *first == idx,
            Some(Under::More(list)) => {
                list.retain(|&i| i != idx);
                list.is_empty()
            }
            None => false,
        };
        if empty {
            self.0.remove(key);
        }
    }
}

impl<K> Multi<K> {
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_go_in_and_out_under_their_key_in_order() {
        let mut m = Multi::<u64>::default();
        assert!(m.get(&1).is_empty());
        m.push(1, 10);
        assert_eq!(m.get(&1), &[10]);
        m.push(1, 11);
        m.push_unique(1, 10);
        m.push_unique(1, 12);
        assert_eq!(m.get(&1), &[10, 11, 12]);
        m.push(2, 20);
        m.push(2, 20);
        m.remove(&2, 20);
        assert!(m.get(&2).is_empty(), "every occurrence goes");
        m.remove(&1, 11);
        assert_eq!(m.get(&1), &[10, 12]);
        m.remove(&1, 10);
        m.remove(&1, 12);
        assert!(m.get(&1).is_empty());
        assert!(m.0.is_empty(), "an emptied key leaves the map");
        m.push(3, 30);
        m.remove(&3, 31);
        assert_eq!(m.get(&3), &[30], "another entry is left alone");
        m.clear();
        assert!(m.get(&3).is_empty());
    }
}
