//! Hash maps and sets whose bytes depend on their contents only, for state that is stored: a
//! hasher with a fixed seed, so iteration in memory is the same on every run and machine, and
//! serialization in key order, so the bytes do not depend on the order of insertion or on the
//! capacity history either (a state loaded from a snapshot and folded on writes the same bytes
//! as one folded from nothing).
//!
//! Serialized, a map is still a map and a set still a sequence: the snapshot layout is what it
//! was with the standard collections, only the order of the entries is fixed.
//!
//! The seed is fixed, so someone who knows it could choose ids that collide; foldhash's fixed
//! seed still mixes keys well, ids are at most 256 characters, and the cost of a collision is a
//! longer probe, never a wrong answer.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::Hash;
use std::ops::{Deref, DerefMut};

use foldhash::fast::FixedState;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A hash map with a fixed-seed hasher, serialized in key order.
pub(crate) struct StableMap<K, V>(HashMap<K, V, FixedState>);

/// A hash set with a fixed-seed hasher, serialized in order.
pub(crate) struct StableSet<K>(HashSet<K, FixedState>);

impl<K, V> Default for StableMap<K, V> {
    fn default() -> Self {
        StableMap(HashMap::default())
    }
}

impl<K> Default for StableSet<K> {
    fn default() -> Self {
        StableSet(HashSet::default())
    }
}

impl<K, V> Deref for StableMap<K, V> {
    type Target = HashMap<K, V, FixedState>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<K, V> DerefMut for StableMap<K, V> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<K> Deref for StableSet<K> {
    type Target = HashSet<K, FixedState>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<K> DerefMut for StableSet<K> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<K: Clone, V: Clone> Clone for StableMap<K, V> {
    fn clone(&self) -> Self {
        StableMap(self.0.clone())
    }
}

impl<K: Clone> Clone for StableSet<K> {
    fn clone(&self) -> Self {
        StableSet(self.0.clone())
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for StableMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<K: fmt::Debug> fmt::Debug for StableSet<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<K: Eq + Hash, V: PartialEq> PartialEq for StableMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<K: Eq + Hash, V: Eq> Eq for StableMap<K, V> {}

impl<K: Eq + Hash> PartialEq for StableSet<K> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<K: Eq + Hash> Eq for StableSet<K> {}

impl<K: Ord + Serialize, V: Serialize> Serialize for StableMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entries: Vec<(&K, &V)> = self.0.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        serializer.collect_map(entries)
    }
}

impl<K: Ord + Serialize> Serialize for StableSet<K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut keys: Vec<&K> = self.0.iter().collect();
        keys.sort_unstable();
        serializer.collect_seq(keys)
    }
}

impl<'de, K: Deserialize<'de> + Eq + Hash, V: Deserialize<'de>> Deserialize<'de> for StableMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        HashMap::deserialize(deserializer).map(StableMap)
    }
}

impl<'de, K: Deserialize<'de> + Eq + Hash> Deserialize<'de> for StableSet<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        HashSet::deserialize(deserializer).map(StableSet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same contents inserted in another order, into a map that grew differently, give the
    /// same bytes.
    #[test]
    fn the_bytes_follow_the_contents_only() {
        let mut grown: StableMap<u64, u64> = StableMap::default();
        for k in 0..1000 {
            grown.insert(k, k * 2);
        }
        grown.retain(|k, _| k % 3 == 0);
        let mut direct: StableMap<u64, u64> = StableMap::default();
        for k in (0..1000).rev().filter(|k| k % 3 == 0) {
            direct.insert(k, k * 2);
        }
        assert_eq!(serde_json::to_string(&grown).unwrap(), serde_json::to_string(&direct).unwrap());
        let set = |keys: &[u32]| {
            let mut s: StableSet<u32> = StableSet::default();
            s.extend(keys.iter().copied());
            serde_json::to_string(&s).unwrap()
        };
        assert_eq!(set(&[3, 1, 2]), set(&[2, 3, 1]));
        assert_eq!(set(&[3, 1, 2]), "[1,2,3]");
    }

    #[test]
    fn a_map_reads_back_what_it_wrote() {
        let mut map: StableMap<String, u32> = StableMap::default();
        map.insert("b".into(), 2);
        map.insert("a".into(), 1);
        let text = serde_json::to_string(&map).unwrap();
        assert_eq!(text, r#"{"a":1,"b":2}"#);
        assert_eq!(serde_json::from_str::<StableMap<String, u32>>(&text).unwrap(), map);
    }
}
