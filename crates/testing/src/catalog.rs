//! An in-memory [`Catalog`], and the catalog contract as executable properties.
//!
//! [`catalog_contract`] runs every property on fresh catalogs from a factory; the SQLite
//! catalog's tests run it too, so the fake and the real one are held to one contract.

use cairn_core::{Catalog, CatalogInfo, Id, Result, Snapshot, SnapshotRow};
use std::collections::HashMap;
use std::sync::Mutex;

/// A [`Catalog`] in memory. [`MemCatalog::failing`] makes one whose every call fails, to
/// show that a broken catalog never fails an operation.
#[derive(Debug, Default)]
pub struct MemCatalog {
    inner: Mutex<Inner>,
    fail: bool,
}

#[derive(Debug, Default)]
struct Inner {
    snapshots: HashMap<Id, SnapshotRow>,
    trees: HashMap<Id, Vec<u8>>,
    tree_reads: u64,
}

impl MemCatalog {
    /// An empty catalog.
    pub fn new() -> MemCatalog {
        MemCatalog::default()
    }

    /// A catalog whose every call fails.
    pub fn failing() -> MemCatalog {
        MemCatalog {
            fail: true,
            ..MemCatalog::default()
        }
    }

    /// How many trees were served (calls of [`Catalog::tree`] that found one).
    pub fn tree_hits(&self) -> u64 {
        self.inner.lock().unwrap().tree_reads
    }

    /// Replaces the body of a held tree (to show damaged rows are not trusted).
    pub fn corrupt_tree(&self, id: &Id) {
        if let Some(b) = self.inner.lock().unwrap().trees.get_mut(id) {
            b.push(0);
        }
    }

    /// Flips a bit in the middle of a held snapshot row's sealed bytes.
    pub fn corrupt_snapshot(&self, id: &Id) {
        if let Some(row) = self.inner.lock().unwrap().snapshots.get_mut(id) {
            let mid = row.sealed.len() / 2;
            row.sealed[mid] ^= 0x10;
        }
    }

    /// Moves the sealed body of tree `from` to the row of `to` (a swapped row).
    pub fn move_tree(&self, from: &Id, to: &Id) {
        let mut inner = self.inner.lock().unwrap();
        if let Some(b) = inner.trees.get(from).cloned() {
            inner.trees.insert(*to, b);
        }
    }

    /// Every row held: snapshot rows and sealed tree bodies.
    pub fn rows(&self) -> (Vec<SnapshotRow>, Vec<(Id, Vec<u8>)>) {
        let inner = self.inner.lock().unwrap();
        (
            inner.snapshots.values().cloned().collect(),
            inner.trees.iter().map(|(id, b)| (*id, b.clone())).collect(),
        )
    }

    /// The ids of the trees held.
    pub fn tree_ids(&self) -> Vec<Id> {
        self.inner.lock().unwrap().trees.keys().copied().collect()
    }

    fn ok(&self) -> Result<()> {
        if self.fail {
            return Err(cairn_core::Error::Catalog(
                "in memory: failing on purpose".into(),
            ));
        }
        Ok(())
    }
}

impl Catalog for MemCatalog {
    fn location(&self) -> String {
        "memory".into()
    }

    fn snapshots(&self) -> Result<Vec<SnapshotRow>> {
        self.ok()?;
        Ok(self
            .inner
            .lock()
            .unwrap()
            .snapshots
            .values()
            .cloned()
            .collect())
    }

    fn update_snapshots(&self, add: &[SnapshotRow], remove: &[Id]) -> Result<()> {
        self.ok()?;
        let mut inner = self.inner.lock().unwrap();
        for row in add {
            inner.snapshots.insert(row.id, row.clone());
        }
        for id in remove {
            inner.snapshots.remove(id);
        }
        Ok(())
    }

    fn tree(&self, id: &Id) -> Result<Option<Vec<u8>>> {
        self.ok()?;
        let mut inner = self.inner.lock().unwrap();
        let t = inner.trees.get(id).cloned();
        if t.is_some() {
            inner.tree_reads += 1;
        }
        Ok(t)
    }

    fn put_trees(&self, trees: &[(Id, Vec<u8>)]) -> Result<()> {
        self.ok()?;
        let mut inner = self.inner.lock().unwrap();
        for (id, body) in trees {
            inner.trees.entry(*id).or_insert_with(|| body.clone());
        }
        Ok(())
    }

    fn replace_tree(&self, id: &Id, sealed: &[u8]) -> Result<()> {
        self.ok()?;
        self.inner
            .lock()
            .unwrap()
            .trees
            .insert(*id, sealed.to_vec());
        Ok(())
    }

    fn retain_trees(&self, keep: &mut dyn FnMut(&Id) -> bool) -> Result<u64> {
        self.ok()?;
        let mut inner = self.inner.lock().unwrap();
        let before = inner.trees.len();
        inner.trees.retain(|id, _| keep(id));
        Ok((before - inner.trees.len()) as u64)
    }

    fn clear(&self) -> Result<()> {
        self.ok()?;
        let mut inner = self.inner.lock().unwrap();
        inner.snapshots.clear();
        inner.trees.clear();
        Ok(())
    }

    fn info(&self) -> Result<CatalogInfo> {
        self.ok()?;
        let inner = self.inner.lock().unwrap();
        Ok(CatalogInfo {
            location: self.location(),
            schema_version: 0,
            snapshots: inner.snapshots.len() as u64,
            trees: inner.trees.len() as u64,
            tree_bytes: inner.trees.values().map(|b| b.len() as u64).sum(),
            file_bytes: 0,
        })
    }
}

/// A snapshot with every field set, different for each `n`.
pub fn sample_snapshot(n: u32) -> Snapshot {
    let mut tree = [0u8; 32];
    tree[..4].copy_from_slice(&n.to_le_bytes());
    Snapshot {
        version: 1,
        time: jiff::Timestamp::from_second(1_700_000_000 + i64::from(n) * 3600).unwrap(),
        tree: Id(tree),
        paths: vec![format!("/srv/app{n}"), "/etc".into()],
        hostname: format!("host{}", n % 3),
        username: "backup".into(),
        tags: vec![format!("t{n}"), "nightly".into()],
        parent: (n > 0).then_some(Id([n as u8; 32])),
        excludes: vec!["*.tmp".into()],
        program_version: "cairn test".into(),
        summary: Some(cairn_core::BackupSummary {
            files_new: u64::from(n),
            bytes_total: 1000 * u64::from(n),
            ..Default::default()
        }),
        app: (n % 2 == 0).then(|| "kimai".to_string()),
        manifest: (n % 2 == 0).then(
            || serde_json::json!({"app": "kimai", "databases": [{"engine": "mariadb", "n": n}]}),
        ),
        original: (n % 3 == 1).then_some(Id([0x0C; 32])),
        key: (n % 2 == 1).then(|| "ab".repeat(32)),
        access: (n % 4 == 1).then(|| "put-only".to_string()),
    }
}

fn id(n: u32) -> Id {
    let mut b = [0xAAu8; 32];
    b[..4].copy_from_slice(&n.to_le_bytes());
    Id(b)
}

/// A snapshot row for `n`: opaque bytes of a length that varies with `n`, as a catalog
/// sees rows (it never opens them).
pub fn sample_row(n: u32) -> SnapshotRow {
    SnapshotRow {
        id: id(n),
        unix_time: 1_700_000_000 + i64::from(n) * 3600,
        sealed: (0..60 + n).map(|k| (k * 31 + n) as u8).collect(),
    }
}

fn sorted(mut v: Vec<SnapshotRow>) -> Vec<SnapshotRow> {
    v.sort_by_key(|r| r.id);
    v
}

/// Runs every property of the catalog contract, each on a fresh catalog from `make`;
/// panics on the first broken one.
pub fn catalog_contract(make: &dyn Fn() -> Box<dyn Catalog>) {
    // A fresh catalog is empty.
    let c = make();
    assert!(c.snapshots().unwrap().is_empty());
    assert_eq!(c.tree(&id(1)).unwrap(), None);
    let info = c.info().unwrap();
    assert_eq!((info.snapshots, info.trees), (0, 0));

    // Snapshots: add, replace, remove (unknown ids ignored), all exact.
    let c = make();
    let snaps: Vec<SnapshotRow> = (0..5).map(sample_row).collect();
    c.update_snapshots(&snaps, &[]).unwrap();
    assert_eq!(sorted(c.snapshots().unwrap()), sorted(snaps.clone()));
    c.update_snapshots(&snaps[1..2], &[id(3), id(99)]).unwrap();
    let mut want = snaps.clone();
    want.retain(|r| r.id != id(3));
    assert_eq!(sorted(c.snapshots().unwrap()), sorted(want.clone()));
    assert_eq!(c.info().unwrap().snapshots, 4);
    // Adding a row of a held id replaces it (a row found damaged is written again).
    let mut again = sample_row(1);
    again.sealed = vec![9; 77];
    c.update_snapshots(std::slice::from_ref(&again), &[])
        .unwrap();
    let got = c.snapshots().unwrap();
    assert_eq!(got.iter().find(|r| r.id == id(1)), Some(&again));
    assert_eq!(got.len(), 4);

    // Trees: put, get, a second put of an id keeps the first body, retain, clear.
    let c = make();
    let trees: Vec<(Id, Vec<u8>)> = (0..10)
        .map(|n| (id(n), vec![n as u8; 100 + n as usize]))
        .collect();
    c.put_trees(&trees).unwrap();
    c.put_trees(&trees[..3]).unwrap();
    for (i, body) in &trees {
        assert_eq!(c.tree(i).unwrap().as_ref(), Some(body));
    }
    let info = c.info().unwrap();
    assert_eq!(info.trees, 10);
    assert_eq!(
        info.tree_bytes,
        trees.iter().map(|(_, b)| b.len() as u64).sum::<u64>()
    );
    c.replace_tree(&id(9), b"new body").unwrap();
    assert_eq!(c.tree(&id(9)).unwrap().as_deref(), Some(&b"new body"[..]));
    c.replace_tree(&id(9), &trees[9].1).unwrap();
    let gone = c.retain_trees(&mut |i| i.0[0] % 2 == 0).unwrap();
    assert_eq!(gone, 5);
    for (i, body) in &trees {
        let want = (i.0[0] % 2 == 0).then(|| body.clone());
        assert_eq!(c.tree(i).unwrap(), want);
    }
    c.update_snapshots(&snaps, &[]).unwrap();
    c.clear().unwrap();
    assert!(c.snapshots().unwrap().is_empty());
    assert_eq!(c.info().unwrap().trees, 0);

    // Several threads writing at once lose nothing.
    let c = make();
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let c = &c;
            s.spawn(move || {
                for k in 0..25u32 {
                    let n = t * 100 + k;
                    c.update_snapshots(&[sample_row(n)], &[]).unwrap();
                    c.put_trees(&[(id(n), vec![1, 2, 3])]).unwrap();
                }
            });
        }
    });
    assert_eq!(c.snapshots().unwrap().len(), 100);
    assert_eq!(c.info().unwrap().trees, 100);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_catalog_keeps_the_contract() {
        catalog_contract(&|| Box::new(MemCatalog::new()));
    }
}
