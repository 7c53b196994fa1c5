//! Find: which snapshots hold an entry whose name matches a pattern, and where.
//!
//! The pattern is a glob matched against entry names (`*.conf`, `id_rsa*`, `[Rr]eport?.pdf`),
//! case-sensitively. Snapshots of the same machine share most of their trees, so each
//! distinct tree is searched once: the matches below a tree are remembered by its id and
//! reused, with the path prefix of the snapshot at hand, wherever the tree appears again.
//! The cost is that of the distinct trees, not of snapshots times files.

use crate::error::{Error, Result};
use crate::formats::id::Id;
use crate::formats::snapshot::Snapshot;
use crate::formats::tree::{Node, NodeKind};
use crate::repository::Repository;
use globset::{GlobBuilder, GlobMatcher};
use serde::Serialize;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

/// One match.
#[derive(Clone, Debug, Serialize)]
pub struct Found {
    /// The snapshot.
    pub snapshot: Id,
    /// Its time.
    pub time: jiff::Timestamp,
    /// The entry's path in the snapshot.
    pub path: String,
    /// `ls -l` type letter.
    pub kind: char,
    /// Size in bytes (files).
    pub size: u64,
    /// Modification time (seconds since the epoch).
    pub mtime: i64,
}

/// A match below a tree: its path relative to the tree, and what `Found` needs of it.
#[derive(Clone, Debug)]
struct Hit {
    rel: String,
    kind: char,
    size: u64,
    mtime: i64,
}

/// Compiles a name pattern.
pub fn name_pattern(pattern: &str) -> Result<GlobMatcher> {
    Ok(GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| Error::Invalid(format!("invalid pattern {pattern:?}: {e}")))?
        .compile_matcher())
}

/// Calls `found` for every entry of `snapshots` whose name matches `pattern`, snapshot by
/// snapshot in the order given, paths in tree order. Returns the number of matches.
pub fn find(
    repo: &Repository,
    snapshots: &[(Id, Snapshot)],
    pattern: &GlobMatcher,
    found: &mut dyn FnMut(Found) -> Result<()>,
) -> Result<usize> {
    let mut memo: HashMap<Id, Arc<Vec<Hit>>> = HashMap::new();
    let mut n = 0;
    for (id, snap) in snapshots {
        for hit in hits(repo, &snap.tree, pattern, &mut memo)?.iter() {
            n += 1;
            found(Found {
                snapshot: *id,
                time: snap.time,
                path: format!("/{}", hit.rel),
                kind: hit.kind,
                size: hit.size,
                mtime: hit.mtime,
            })?;
        }
    }
    Ok(n)
}

fn hits(
    repo: &Repository,
    tree_id: &Id,
    pattern: &GlobMatcher,
    memo: &mut HashMap<Id, Arc<Vec<Hit>>>,
) -> Result<Arc<Vec<Hit>>> {
    if let Some(h) = memo.get(tree_id) {
        return Ok(h.clone());
    }
    let tree = repo.load_tree(tree_id)?;
    let mut out = Vec::new();
    for node in &tree.nodes {
        let name = node.display_name();
        if pattern.is_match(OsStr::from_bytes(&node.name)) {
            out.push(hit(name.clone(), node));
        }
        if let NodeKind::Dir { subtree } = &node.kind {
            for h in hits(repo, subtree, pattern, memo)?.iter() {
                let mut h = h.clone();
                h.rel = format!("{name}/{}", h.rel);
                out.push(h);
            }
        }
    }
    let out = Arc::new(out);
    memo.insert(*tree_id, out.clone());
    Ok(out)
}

fn hit(rel: String, node: &Node) -> Hit {
    Hit {
        rel,
        kind: node.type_char(),
        size: node.size,
        mtime: node.mtime.secs,
    }
}
