//! Interned names: the ids of deals, payments and clients, each kept once in one string arena
//! and named by a dense `u32`. A million deals with their payments and clients would otherwise
//! be a few million separately allocated strings (an allocation, a reference count and a
//! pointer each, about 40 bytes before the text).
//!
//! The arena is written to the snapshot in the order the names were first met, which the log
//! determines, so the bytes are the same for the same log. The lookup table is not written: it
//! is rebuilt when a snapshot is read, and the names are checked then (each one once, on a char
//! boundary), so a damaged snapshot is refused rather than misread.

use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use hashbrown::HashTable;
use serde::{Deserialize, Serialize, Serializer};

/// A name's number: its position in the order names were first met.
pub(crate) type NameId = u32;

/// Every name met, once, with a table from name to number.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(try_from = "StoredNames")]
pub(crate) struct Names {
    /// The names, one after another.
    text: String,
    /// Where each name ends in `text` (it starts where the one before ends).
    ends: Vec<u32>,
    /// Numbers of the names, found by the hash of the text they name.
    table: HashTable<NameId>,
}

/// What a snapshot holds of [`Names`].
#[derive(Deserialize)]
struct StoredNames {
    text: String,
    ends: Vec<u32>,
}

fn hash_of(name: &str) -> u64 {
    FixedState::default().hash_one(name)
}

fn name_at<'a>(text: &'a str, ends: &[u32], id: NameId) -> &'a str {
    let i = id as usize;
    let start = if i == 0 { 0 } else { ends[i - 1] as usize };
    &text[start..ends[i] as usize]
}

impl Names {
    /// The number of `name`, if it was ever met.
    pub(crate) fn get(&self, name: &str) -> Option<NameId> {
        self.table.find(hash_of(name), |&id| name_at(&self.text, &self.ends, id) == name).copied()
    }

    /// The number of `name`, given it now when it is new.
    pub(crate) fn intern(&mut self, name: &str) -> NameId {
        let hash = hash_of(name);
        let Names { text, ends, table } = self;
        if let Some(&id) = table.find(hash, |&id| name_at(text, ends, id) == name) {
            return id;
        }
        let id = NameId::try_from(ends.len()).unwrap_or_else(|_| unreachable!("fewer than 2^32 names"));
        text.push_str(name);
        let end = u32::try_from(text.len())
            .unwrap_or_else(|_| unreachable!("names (at most 256 characters each) stay under 4 GiB in all"));
        ends.push(end);
        table.insert_unique(hash, id, |&id| hash_of(name_at(text, ends, id)));
        id
    }

    /// The name numbered `id`. Numbers are only ever given by [`intern`](Self::intern).
    pub(crate) fn name(&self, id: NameId) -> &str {
        name_at(&self.text, &self.ends, id)
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }
}

impl TryFrom<StoredNames> for Names {
    type Error = String;

    fn try_from(stored: StoredNames) -> Result<Names, String> {
        let StoredNames { text, ends } = stored;
        let mut start = 0usize;
        for (i, &end) in ends.iter().enumerate() {
            let end = end as usize;
            if end < start || end > text.len() || !text.is_char_boundary(end) {
                return Err(format!("name {i} of the snapshot does not lie within its names"));
            }
            start = end;
        }
        if start != text.len() {
            return Err("the snapshot's names do not end where their text does".to_string());
        }
        let mut table = HashTable::with_capacity(ends.len());
        for i in 0..ends.len() {
            let id = i as NameId;
            let name = name_at(&text, &ends, id);
            let hash = hash_of(name);
            if table.find(hash, |&other| name_at(&text, &ends, other) == name).is_some() {
                return Err(format!("the snapshot holds the name {name:?} twice"));
            }
            table.insert_unique(hash, id, |&other| hash_of(name_at(&text, &ends, other)));
        }
        Ok(Names { text, ends, table })
    }
}

impl Serialize for Names {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Stored<'a> {
            text: &'a str,
            ends: &'a [u32],
        }
        Stored { text: &self.text, ends: &self.ends }.serialize(s)
    }
}

/// The table follows from the names, so two sets of names are equal when their names are.
impl PartialEq for Names {
    fn eq(&self, other: &Names) -> bool {
        self.text == other.text && self.ends == other.ends
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_numbered_once_and_read_back() {
        let mut names = Names::default();
        let a = names.intern("D-1");
        let b = names.intern("клиент-7");
        assert_eq!((a, b), (0, 1));
        assert_eq!(names.intern("D-1"), a, "a name met again keeps its number");
        assert_eq!(names.name(b), "клиент-7");
        assert_eq!(names.get("D-2"), None);
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn names_read_back_are_checked() {
        let whole = StoredNames { text: "D-1C-1".into(), ends: vec![3, 6] };
        let names = Names::try_from(whole).expect("whole names read back");
        assert_eq!(names.get("C-1"), Some(1));
        let past_the_end = StoredNames { text: "D-1".into(), ends: vec![3, 6] };
        assert!(Names::try_from(past_the_end).is_err());
        let twice = StoredNames { text: "D-1D-1".into(), ends: vec![3, 6] };
        assert!(Names::try_from(twice).is_err());
        let inside_a_char = StoredNames { text: "ж".into(), ends: vec![1, 2] };
        assert!(Names::try_from(inside_a_char).is_err());
    }
}
