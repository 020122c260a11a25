//! A set of work keys asked only whether it holds a key: the keys a
//! persona completed, looked up on every trigger and added to on every run.
//!
//! A hash set, as no output reads its order: it offers no iteration, and
//! its `Debug` lists the keys sorted. The hasher is the standard library's
//! SipHash with its fixed keys, so the same keys make the same table on
//! every run; the keys come from scenarios, and SipHash keeps a crafted set
//! of them from piling into one bucket as a weak multiplicative hash would
//! let them.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, DefaultHasher};
use std::sync::Arc;

/// Work keys, for membership only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KeySet(HashSet<Arc<str>, BuildHasherDefault<DefaultHasher>>);

impl KeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the set holds `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains(key)
    }

    /// Adds `key`; whether it was new.
    pub fn insert(&mut self, key: Arc<str>) -> bool {
        self.0.insert(key)
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<&str> = self.0.iter().map(|key| &**key).collect();
        keys.sort_unstable();
        f.debug_set().entries(keys).finish()
    }
}

impl<K: Into<Arc<str>>> FromIterator<K> for KeySet {
    fn from_iter<I: IntoIterator<Item = K>>(keys: I) -> Self {
        Self(keys.into_iter().map(Into::into).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Membership, insertion and equality behave as a set's; `Debug` is
    /// sorted whatever the order of insertion.
    #[test]
    fn a_set_of_keys() {
        let mut keys = KeySet::new();
        assert!(keys.is_empty());
        assert!(keys.insert("github:acme/widgets#2".into()));
        assert!(keys.insert("github:acme/widgets#1".into()));
        assert!(!keys.insert("github:acme/widgets#2".into()));
        assert_eq!(keys.len(), 2);
        assert!(keys.contains("github:acme/widgets#1"));
        assert!(!keys.contains("github:acme/widgets#3"));
        let other: KeySet = ["github:acme/widgets#1", "github:acme/widgets#2"]
            .into_iter()
            .collect();
        assert_eq!(keys, other);
        assert_eq!(
            format!("{keys:?}"),
            r#"{"github:acme/widgets#1", "github:acme/widgets#2"}"#
        );
        let many: KeySet = (0..100).rev().map(|n| format!("k{n:03}")).collect();
        let listed = format!("{many:?}");
        let expected: Vec<String> = (0..100)
            .map(|n| format!("{:?}", format!("k{n:03}")))
            .collect();
        assert_eq!(listed, format!("{{{}}}", expected.join(", ")));
    }
}
