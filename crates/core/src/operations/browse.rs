//! Reading snapshots without restoring them: resolve paths, walk trees, stream files.

use crate::error::{Error, Result};
use crate::formats::content::ContentWalk;
use crate::formats::id::Id;
use crate::formats::snapshot::Snapshot;
use crate::formats::tree::{Extent, Node, NodeKind, Time};
use crate::repository::Repository;
use std::io::Write;

/// Splits `SNAPSHOT[:path]` into the snapshot spec and the path (if any).
pub fn split_spec(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((s, p)) if !p.is_empty() => (s, Some(p)),
        Some((s, _)) => (s, None),
        None => (spec, None),
    }
}

/// A directory node standing for a snapshot's root tree.
pub fn root_node(snap: &Snapshot) -> Node {
    let mut node = Node::synthetic(
        Vec::new(),
        NodeKind::Dir { subtree: snap.tree },
        0o040755,
        snap.time,
    );
    node.ctime = Time::default();
    node
}

/// Finds the node at `path` (absolute or relative to the root) in a snapshot.
pub fn resolve(repo: &Repository, snap_id: &Id, snap: &Snapshot, path: &str) -> Result<Node> {
    let mut node = root_node(snap);
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let NodeKind::Dir { subtree } = &node.kind else {
            return Err(Error::PathNotFound {
                path: path.into(),
                snapshot: snap_id.short(),
            });
        };
        let tree = repo.load_tree(subtree)?;
        node = tree
            .find(comp.as_bytes())
            .cloned()
            .ok_or_else(|| Error::PathNotFound {
                path: path.into(),
                snapshot: snap_id.short(),
            })?;
    }
    Ok(node)
}

/// Calls `visit(path, node)` for every node below `dir`, depth first, in name order.
/// `prefix` is the path of `dir` itself ("" for the root).
pub fn walk(
    repo: &Repository,
    dir: &Id,
    prefix: &str,
    visit: &mut dyn FnMut(&str, &Node) -> Result<()>,
) -> Result<()> {
    let tree = repo.load_tree(dir)?;
    for node in &tree.nodes {
        let path = format!("{prefix}/{}", node.display_name());
        visit(&path, node)?;
        if let NodeKind::Dir { subtree } = &node.kind {
            walk(repo, subtree, &path, visit)?;
        }
    }
    Ok(())
}

/// Chunks of a file read ahead by [`dump_file`] at a time, and their bytes at most.
const DUMP_AHEAD_BLOBS: usize = 1024;
const DUMP_AHEAD_BYTES: u64 = 64 << 20;

/// Writes a file node's contents to `out`, verifying every blob.
///
/// The chunks are read ahead in windows (see [`DUMP_AHEAD_BLOBS`]), pack by pack with
/// many requests in flight, and written in order: a database dump streamed out of a
/// remote repository does not wait a round trip for each of its chunks.
pub fn dump_file(repo: &Repository, node: &Node, out: &mut dyn Write) -> Result<u64> {
    let NodeKind::File { content } = &node.kind else {
        return Err(Error::Invalid(format!(
            "{} is not a file",
            node.display_name()
        )));
    };
    repo.load_index()?;
    let pool = crate::fetch::reading_pool(repo.backend().parallelism(), "cairn-read")?;
    let mut n = 0u64;
    let zeros = vec![0u8; 1 << 16];
    let stdout_err = |e: std::io::Error| Error::io("<output>", e);
    let mut walk = ContentWalk::new(repo, content);
    let mut window = Vec::with_capacity(DUMP_AHEAD_BLOBS);
    loop {
        window.clear();
        let mut ahead = 0u64;
        while window.len() < DUMP_AHEAD_BLOBS && ahead < DUMP_AHEAD_BYTES {
            let Some(item) = walk.next() else { break };
            let (e, len) = item?;
            if e.data_blob().is_some() {
                ahead += len;
            }
            window.push((e, len));
        }
        if window.is_empty() {
            break;
        }
        let ids: Vec<Id> = window.iter().filter_map(|(e, _)| e.data_blob()).collect();
        let read = crate::fetch::fetch_map(repo, &pool, &ids);
        for (e, _) in &window {
            match e {
                Extent::Data(id) | Extent::Part { id, .. } => {
                    // A blob that could not be read is read again alone, for its error.
                    let data = match read.get(id) {
                        Some((d, _)) => std::borrow::Cow::Borrowed(d),
                        None => std::borrow::Cow::Owned(repo.read_blob(id)?),
                    };
                    let data = crate::formats::content::extent_bytes(e, &data)?;
                    out.write_all(data).map_err(stdout_err)?;
                    n += data.len() as u64;
                }
                Extent::Hole(len) => {
                    let mut left = *len;
                    while left > 0 {
                        let k = left.min(zeros.len() as u64) as usize;
                        out.write_all(&zeros[..k]).map_err(stdout_err)?;
                        left -= k as u64;
                    }
                    n += len;
                }
                Extent::List { .. } => unreachable!("the walk expands lists"),
            }
        }
    }
    Ok(n)
}
