//! Uncommitted writes stacked on a read view: how a handler's simulation, a block in progress and
//! a bundle's earlier steps are seen without touching the database.

use std::collections::BTreeMap;

use super::{StateView, StoreError};

/// The writes of one operation (or one genesis), in key order: `Some` puts, `None` deletes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteSet(BTreeMap<Vec<u8>, Option<Vec<u8>>>);

impl WriteSet {
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.0.insert(key, Some(value));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.0.insert(key, None);
    }

    pub fn get(&self, key: &[u8]) -> Option<&Option<Vec<u8>>> {
        self.0.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Option<Vec<u8>>)> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Adds `later` on top of these writes (later writes win).
    pub fn extend(&mut self, later: WriteSet) {
        self.0.extend(later.0);
    }
}

/// A read view plus pending writes.
pub struct Overlay<'a> {
    base: &'a dyn StateView,
    writes: WriteSet,
}

impl<'a> Overlay<'a> {
    pub fn new(base: &'a dyn StateView) -> Self {
        Self { base, writes: WriteSet::default() }
    }

    pub fn writes(&self) -> &WriteSet {
        &self.writes
    }

    pub fn writes_mut(&mut self) -> &mut WriteSet {
        &mut self.writes
    }

    pub fn into_writes(self) -> WriteSet {
        self.writes
    }
}

impl StateView for Overlay<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.writes.get(key) {
            Some(pending) => Ok(pending.clone()),
            None => self.base.get(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl StateView for Fixed {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            Ok((key == b"base").then(|| b"b".to_vec()))
        }
    }

    #[test]
    fn pending_puts_and_deletes_shadow_the_base() {
        let mut overlay = Overlay::new(&Fixed);
        assert_eq!(overlay.get(b"base").unwrap(), Some(b"b".to_vec()));
        overlay.writes_mut().delete(b"base".to_vec());
        overlay.writes_mut().put(b"new".to_vec(), b"n".to_vec());
        assert_eq!(overlay.get(b"base").unwrap(), None);
        assert_eq!(overlay.get(b"new").unwrap(), Some(b"n".to_vec()));
        let nested = Overlay::new(&overlay);
        assert_eq!(nested.get(b"new").unwrap(), Some(b"n".to_vec()));
    }
}
