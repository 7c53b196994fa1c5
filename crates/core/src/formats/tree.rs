//! Trees: one blob per directory, listing its entries with their metadata.
//!
//! A tree blob's plaintext is a version byte (1) followed by the [`Tree`] in postcard
//! encoding (serde field order as declared below; see docs/format.md). Nodes are sorted
//! by name bytes, so equal directories give equal bytes and deduplicate.

use crate::error::{Error, Result};
use crate::formats::id::Id;
use serde::{Deserialize, Serialize};

/// Tree encoding version.
pub const TREE_VERSION: u8 = 1;

/// A directory listing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    /// Entries sorted by name.
    pub nodes: Vec<Node>,
}

/// A point in time with nanoseconds, as the file system reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Time {
    /// Seconds since the Unix epoch (negative before 1970).
    pub secs: i64,
    /// Nanoseconds, 0..1e9.
    pub nanos: u32,
}

impl Time {
    /// A time as `stat` gives it: seconds and nanoseconds (clamped to 0..1e9).
    pub fn from_stat(secs: i64, nanos: i64) -> Time {
        Time {
            secs,
            nanos: nanos.clamp(0, 999_999_999) as u32,
        }
    }
}

/// An extended attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattr {
    /// Attribute name (raw bytes).
    pub name: Vec<u8>,
    /// Attribute value.
    pub value: Vec<u8>,
}

/// A piece of a file's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Extent {
    /// A data blob.
    Data(Id),
    /// A hole of this many bytes (reads as zeros, stored as nothing).
    Hole(u64),
    /// A run of extents stored as a list blob (see [`crate::formats::content`]), covering `len`
    /// bytes. Long contents are made of these so that no tree holds a huge list.
    List {
        /// The list blob's id (a metadata blob, kind tree).
        id: Id,
        /// Bytes the run covers, holes included.
        len: u64,
    },
    /// `len` bytes from `offset` in the plaintext of data blob `id`: a small file
    /// stored with the other small files of its directory in one chunk (repository
    /// version 3; decision 0027). Readers check that it lies inside the blob.
    Part {
        /// The data blob holding the bytes.
        id: Id,
        /// Where they start in its plaintext.
        offset: u64,
        /// How many there are.
        len: u64,
    },
}

impl Extent {
    /// The data blob this extent reads from, if any (a data blob or a part of one).
    pub fn data_blob(&self) -> Option<Id> {
        match self {
            Extent::Data(id) | Extent::Part { id, .. } => Some(*id),
            Extent::Hole(_) | Extent::List { .. } => None,
        }
    }
}

/// What a node is, with what only that kind has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    /// A regular file or a stream.
    File {
        /// The contents, in order.
        content: Vec<Extent>,
    },
    /// A directory and the tree blob listing it.
    Dir {
        /// The subtree's blob id.
        subtree: Id,
    },
    /// A symbolic link.
    Symlink {
        /// The link target, raw bytes.
        target: Vec<u8>,
    },
    /// A named pipe (metadata only).
    Fifo,
    /// A Unix socket (metadata only).
    Socket,
    /// A character device.
    CharDevice {
        /// Device number.
        rdev: u64,
    },
    /// A block device.
    BlockDevice {
        /// Device number.
        rdev: u64,
    },
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// File name, raw bytes (need not be UTF-8).
    pub name: Vec<u8>,
    /// Kind and kind-specific data.
    pub kind: NodeKind,
    /// Permission bits and file type bits as `st_mode`.
    pub mode: u32,
    /// Owner id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Owner name, when it resolves.
    pub user: Option<String>,
    /// Group name, when it resolves.
    pub group: Option<String>,
    /// Size in bytes (files: logical size including holes).
    pub size: u64,
    /// Modification time.
    pub mtime: Time,
    /// Status change time (used only to detect changes).
    pub ctime: Time,
    /// Inode number (used to detect changes and hard links).
    pub inode: u64,
    /// Device of the file system holding it.
    pub device: u64,
    /// Number of hard links.
    pub links: u64,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<Xattr>,
}

impl Node {
    /// A node that exists only in the repository (the root, a stream, a directory that
    /// holds streams): given kind, mode and time; owner root unless set afterwards; no
    /// inode, device or extended attributes.
    pub fn synthetic(name: Vec<u8>, kind: NodeKind, mode: u32, time: jiff::Timestamp) -> Node {
        let t = Time {
            secs: time.as_second(),
            nanos: time.subsec_nanosecond().clamp(0, 999_999_999) as u32,
        };
        Node {
            name,
            kind,
            mode,
            uid: 0,
            gid: 0,
            user: None,
            group: None,
            size: 0,
            mtime: t,
            ctime: t,
            inode: 0,
            device: 0,
            links: 1,
            xattrs: Vec::new(),
        }
    }

    /// The name as a lossy string, for display.
    pub fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }

    /// A one-letter type as `ls -l` shows it.
    pub fn type_char(&self) -> char {
        match self.kind {
            NodeKind::File { .. } => '-',
            NodeKind::Dir { .. } => 'd',
            NodeKind::Symlink { .. } => 'l',
            NodeKind::Fifo => 'p',
            NodeKind::Socket => 's',
            NodeKind::CharDevice { .. } => 'c',
            NodeKind::BlockDevice { .. } => 'b',
        }
    }
}

impl Tree {
    /// Encodes as a tree blob's plaintext.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![TREE_VERSION];
        postcard::to_io(self, &mut out).expect("tree serializes");
        out
    }

    /// Decodes a tree blob's plaintext; `what` names it for errors.
    pub fn decode(bytes: &[u8], what: &str) -> Result<Tree> {
        match bytes.first() {
            Some(&TREE_VERSION) => {}
            Some(&v) => {
                return Err(Error::UnsupportedVersion {
                    found: v as u32,
                    supported: TREE_VERSION as u32,
                })
            }
            None => return Err(Error::format(what, "empty tree")),
        }
        let tree: Tree =
            postcard::from_bytes(&bytes[1..]).map_err(|e| Error::format(what, e.to_string()))?;
        if tree.nodes.windows(2).any(|w| w[0].name >= w[1].name) {
            return Err(Error::format(what, "entries are not sorted and unique"));
        }
        if let Some(n) = tree.nodes.iter().find(|n| !valid_name(&n.name)) {
            return Err(Error::format(
                what,
                format!("invalid entry name {:?}", String::from_utf8_lossy(&n.name)),
            ));
        }
        Ok(tree)
    }

    /// Finds an entry by name.
    pub fn find(&self, name: &[u8]) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.nodes[i])
    }
}

/// A name a restore can safely create: not empty, not `.` or `..`, no `/` or NUL.
/// Checked on decode so that a tampered or buggy tree can never make restore write
/// outside its target.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &[u8]) -> Node {
        Node {
            name: name.to_vec(),
            kind: NodeKind::File {
                content: vec![
                    Extent::Data(Id::of_file(b"x")),
                    Extent::Hole(4096),
                    Extent::Part {
                        id: Id::of_file(b"y"),
                        offset: 7,
                        len: 9,
                    },
                ],
            },
            mode: 0o100644,
            uid: 1000,
            gid: 1000,
            user: Some("u".into()),
            group: None,
            size: 5000,
            mtime: Time { secs: 1, nanos: 2 },
            ctime: Time::default(),
            inode: 5,
            device: 6,
            links: 1,
            xattrs: vec![],
        }
    }

    #[test]
    fn tree_round_trip_and_refuses_bad_names() {
        let t = Tree {
            nodes: vec![node(b"a"), node(b"b\xff")],
        };
        let enc = t.encode();
        assert_eq!(Tree::decode(&enc, "t").unwrap(), t);
        for bad in [&b".."[..], b"a/b", b""] {
            let t = Tree {
                nodes: vec![node(bad)],
            };
            assert!(Tree::decode(&t.encode(), "t").is_err());
        }
        let unsorted = Tree {
            nodes: vec![node(b"b"), node(b"a")],
        };
        assert!(Tree::decode(&unsorted.encode(), "t").is_err());
        for n in 0..enc.len() {
            let _ = Tree::decode(&enc[..n], "t");
        }
    }
}
