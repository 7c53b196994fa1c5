//! File contents: the extents of a file or stream, with long runs kept in list blobs.
//!
//! A file node's content is a sequence of [`Extent`]s: data blobs and holes in order.
//! A 20 GiB stream is 300,000 chunks; listing them all in the node would make one tree
//! blob of 10 MiB and make every program that writes or reads it hold the whole list in
//! memory. So runs of extents are stored as *list blobs* (metadata blobs, kind tree)
//! and named by one [`Extent::List`] carrying the number of bytes the run covers:
//!
//! ```text
//! list blob plaintext = version (1) | postcard Vec<Extent>   (1 to LIST_MAX extents)
//! ```
//!
//! A list may name lists, so a content of any length is a tree of bounded fan-out, and
//! writing or reading it needs memory for one run per level only.
//!
//! Where a run ends is decided by the extents themselves, not by their count: a run ends
//! after an extent whose id has its low [`LIST_CUT_BITS`] bits zero (once the run holds
//! [`LIST_MIN`] extents), or at [`LIST_MAX`] extents. Ids are keyed hashes, so runs hold
//! about `LIST_MIN + 2^LIST_CUT_BITS` extents, and a change in the middle of a large file
//! changes only the lists around it: the lists before and after it are the same blobs
//! as before and deduplicate.

use crate::error::{Error, Result};
use crate::formats::id::Id;
use crate::formats::tree::Extent;

/// List blob encoding version.
pub const LIST_VERSION: u8 = 1;
/// Fewest extents in a list blob cut at a content-defined point.
pub const LIST_MIN: usize = 256;
/// Most extents in a list blob.
pub const LIST_MAX: usize = 4096;
/// An extent whose id's low bits (first two bytes, little endian) are zero ends a run.
pub const LIST_CUT_BITS: u32 = 10;
/// Deepest nesting of lists a reader follows (4096^8 extents is far beyond any file).
pub const MAX_DEPTH: usize = 8;

/// Encodes a list blob's plaintext.
pub fn encode_list(extents: &[Extent]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + extents.len() * 34);
    out.push(LIST_VERSION);
    postcard::to_io(extents, &mut out).expect("extents serialize");
    out
}

/// Decodes a list blob's plaintext; `what` names it for errors.
pub fn decode_list(bytes: &[u8], what: &str) -> Result<Vec<Extent>> {
    match bytes.first() {
        Some(&LIST_VERSION) => {}
        Some(&v) => {
            return Err(Error::UnsupportedVersion {
                found: v as u32,
                supported: LIST_VERSION as u32,
            })
        }
        None => return Err(Error::format(what, "empty list blob")),
    }
    let extents: Vec<Extent> =
        postcard::from_bytes(&bytes[1..]).map_err(|e| Error::format(what, e.to_string()))?;
    if extents.is_empty() || extents.len() > LIST_MAX {
        return Err(Error::format(
            what,
            format!("{} extents (1 to {LIST_MAX} expected)", extents.len()),
        ));
    }
    Ok(extents)
}

fn ends_run(e: &Extent) -> bool {
    match e {
        Extent::Data(id) | Extent::List { id, .. } | Extent::Part { id, .. } => {
            u16::from_le_bytes([id.0[0], id.0[1]]) & ((1 << LIST_CUT_BITS) - 1) == 0
        }
        Extent::Hole(_) => false,
    }
}

#[derive(Default)]
struct Run {
    extents: Vec<Extent>,
    len: u64,
}

/// Builds a node's content extent by extent, storing each finished run as a list blob.
///
/// Memory: at most [`LIST_MAX`] extents per level, whatever the length of the content.
#[derive(Default)]
pub struct ContentBuilder {
    /// `levels[0]` takes the extents pushed; `levels[k + 1]` the lists made of
    /// `levels[k]`. Higher levels cover earlier bytes.
    levels: Vec<Run>,
}

impl std::fmt::Debug for ContentBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentBuilder")
            .field("levels", &self.levels.len())
            .finish()
    }
}

impl ContentBuilder {
    /// An empty content.
    pub fn new() -> ContentBuilder {
        ContentBuilder::default()
    }

    /// Appends an extent covering `len` bytes. `store` stores a list blob's plaintext
    /// and returns its id.
    pub fn push(
        &mut self,
        extent: Extent,
        len: u64,
        store: &mut dyn FnMut(&[u8]) -> Result<Id>,
    ) -> Result<()> {
        let (mut extent, mut len) = (extent, len);
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Run::default());
            }
            let run = &mut self.levels[level];
            run.extents.push(extent);
            run.len += len;
            let n = run.extents.len();
            if n < LIST_MIN || (n < LIST_MAX && !ends_run(&extent)) {
                return Ok(());
            }
            let id = store(&encode_list(&run.extents))?;
            extent = Extent::List { id, len: run.len };
            len = run.len;
            run.extents.clear();
            run.len = 0;
            level += 1;
        }
    }

    /// The content to put in the node: the lists made so far, then the extents not in
    /// a list yet, in file order.
    pub fn finish(self) -> Vec<Extent> {
        let n = self.levels.iter().map(|r| r.extents.len()).sum();
        let mut out = Vec::with_capacity(n);
        for run in self.levels.into_iter().rev() {
            out.extend(run.extents);
        }
        out
    }
}

/// What a content walk needs from a repository.
pub trait ContentSource {
    /// The plaintext length of a data blob.
    fn data_len(&self, id: &Id) -> Result<u64>;
    /// The extents of a list blob, verified and decoded.
    fn list(&self, id: &Id) -> Result<Vec<Extent>>;
    /// The plaintext of a data blob, verified.
    fn data(&self, id: &Id) -> Result<Vec<u8>>;
}

/// The length of a part, once it is known to lie inside its blob: a tree that names
/// bytes past a blob's end is refused, so that no reader slices out of bounds.
pub fn part_len<S: ContentSource + ?Sized>(
    source: &S,
    id: &Id,
    offset: u64,
    len: u64,
) -> Result<u64> {
    let blob = source.data_len(id)?;
    match offset.checked_add(len) {
        Some(end) if len > 0 && end <= blob => Ok(len),
        _ => Err(Error::format(
            format!("data blob {}", id.short()),
            format!("a part of {len} bytes at {offset} where the blob holds {blob}"),
        )),
    }
}

/// The bytes a data or part extent names in its blob's plaintext `data`; a blob that
/// does not hold them (it differs from what the index said) is an error.
pub fn extent_bytes<'d>(extent: &Extent, data: &'d [u8]) -> Result<&'d [u8]> {
    let (id, range) = match *extent {
        Extent::Part { id, offset, len } => (id, offset.checked_add(len).map(|end| offset..end)),
        Extent::Data(id) => (id, Some(0..data.len() as u64)),
        Extent::Hole(_) | Extent::List { .. } => {
            return Err(Error::Invalid(
                "a hole or list has no bytes of a blob".into(),
            ))
        }
    };
    match range {
        Some(r) if r.end <= data.len() as u64 => Ok(&data[r.start as usize..r.end as usize]),
        _ => Err(Error::format(
            format!("data blob {}", id.short()),
            format!("{} bytes, too few for the part the tree names", data.len()),
        )),
    }
}

struct Frame {
    extents: Vec<Extent>,
    pos: usize,
    /// The list this frame expands and the length its parent claims for it.
    list: Option<(Id, u64)>,
    /// Bytes covered by the extents passed so far.
    seen: u64,
}

/// The data and hole extents of a content, in order, each with its length; list blobs
/// are loaded (and verified) when the walk reaches them, one per level at a time.
pub struct ContentWalk<'s, S: ContentSource + ?Sized> {
    source: &'s S,
    stack: Vec<Frame>,
}

impl<S: ContentSource + ?Sized> std::fmt::Debug for ContentWalk<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentWalk")
            .field("depth", &self.stack.len())
            .finish()
    }
}

impl<'s, S: ContentSource + ?Sized> ContentWalk<'s, S> {
    /// Walks `content` (a file node's extents).
    pub fn new(source: &'s S, content: &[Extent]) -> ContentWalk<'s, S> {
        ContentWalk {
            source,
            stack: vec![Frame {
                extents: content.to_vec(),
                pos: 0,
                list: None,
                seen: 0,
            }],
        }
    }

    fn step(&mut self) -> Result<Option<(Extent, u64)>> {
        loop {
            let Some(top) = self.stack.last_mut() else {
                return Ok(None);
            };
            let Some(&e) = top.extents.get(top.pos) else {
                let done = self.stack.pop().expect("a frame");
                if let Some((id, len)) = done.list {
                    if done.seen != len {
                        return Err(Error::format(
                            format!("list {}", id.short()),
                            format!("covers {} bytes, its parent says {len}", done.seen),
                        ));
                    }
                }
                continue;
            };
            top.pos += 1;
            match e {
                Extent::Data(id) => {
                    let len = self.source.data_len(&id)?;
                    top.seen += len;
                    return Ok(Some((e, len)));
                }
                Extent::Hole(len) => {
                    top.seen += len;
                    return Ok(Some((e, len)));
                }
                Extent::Part { id, offset, len } => {
                    let len = part_len(self.source, &id, offset, len)?;
                    top.seen += len;
                    return Ok(Some((e, len)));
                }
                Extent::List { id, len } => {
                    top.seen += len;
                    if self.stack.len() > MAX_DEPTH {
                        return Err(Error::format(
                            format!("list {}", id.short()),
                            format!("lists nested deeper than {MAX_DEPTH}"),
                        ));
                    }
                    let extents = self.source.list(&id)?;
                    self.stack.push(Frame {
                        extents,
                        pos: 0,
                        list: Some((id, len)),
                        seen: 0,
                    });
                }
            }
        }
    }
}

impl<S: ContentSource + ?Sized> Iterator for ContentWalk<'_, S> {
    type Item = Result<(Extent, u64)>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(Some(x)) => Some(Ok(x)),
            Ok(None) => None,
            Err(e) => {
                self.stack.clear(); // an error ends the walk
                Some(Err(e))
            }
        }
    }
}

/// One level of a content: its extents, each with the offset where it starts.
#[derive(Debug)]
struct Level {
    /// `(start, extent, len)` in file order.
    extents: Vec<(u64, Extent, u64)>,
}

impl Level {
    /// Lays out `extents` from `start`; `expect` is the length its parent claims for it.
    fn new<S: ContentSource + ?Sized>(
        source: &S,
        extents: &[Extent],
        start: u64,
        expect: Option<(Id, u64)>,
    ) -> Result<Level> {
        let mut out = Vec::with_capacity(extents.len());
        let mut pos = start;
        for &e in extents {
            let len = match e {
                Extent::Data(id) => source.data_len(&id)?,
                Extent::Part { id, offset, len } => part_len(source, &id, offset, len)?,
                Extent::Hole(len) | Extent::List { len, .. } => len,
            };
            out.push((pos, e, len));
            pos = pos
                .checked_add(len)
                .ok_or_else(|| Error::format("content", "longer than 2^64 bytes"))?;
        }
        if let Some((id, len)) = expect {
            if pos - start != len {
                return Err(Error::format(
                    format!("list {}", id.short()),
                    format!("covers {} bytes, its parent says {len}", pos - start),
                ));
            }
        }
        Ok(Level { extents: out })
    }

    fn end(&self) -> u64 {
        self.extents.last().map_or(0, |&(s, _, l)| s + l)
    }

    /// The extent holding byte `offset`, if this level has one.
    fn at(&self, offset: u64) -> Option<(u64, Extent, u64)> {
        let i = self.extents.partition_point(|&(s, _, l)| s + l <= offset);
        self.extents
            .get(i)
            .copied()
            .filter(|&(s, _, l)| s <= offset && offset < s + l)
    }
}

/// Reads byte ranges of a content at any offset, as a file system reads a file: the
/// list blobs on the way to the offset are read (not those before or after it), and
/// the last level of extents and the last data blob used are kept, so that reading a
/// file from start to end reads each blob once.
///
/// Memory: one level of extents (at most [`LIST_MAX`], or the node's own list) and one
/// data blob, whatever the length of the content.
#[derive(Debug)]
pub struct ContentReader {
    top: Level,
    /// The deepest level used last, for the next read nearby.
    last: Option<Level>,
    /// The data blob used last: its id and plaintext.
    blob: Option<(Id, Vec<u8>)>,
}

impl ContentReader {
    /// A reader of `content` (a file node's extents).
    pub fn new<S: ContentSource + ?Sized>(source: &S, content: &[Extent]) -> Result<Self> {
        Ok(ContentReader {
            top: Level::new(source, content, 0, None)?,
            last: None,
            blob: None,
        })
    }

    /// The length of the content in bytes, holes included.
    pub fn len(&self) -> u64 {
        self.top.end()
    }

    /// Whether the content is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The data or hole extent holding byte `offset` (below [`ContentReader::len`]).
    fn locate<S: ContentSource + ?Sized>(
        &mut self,
        source: &S,
        offset: u64,
    ) -> Result<(u64, Extent, u64)> {
        if let Some(found @ (_, Extent::Data(_) | Extent::Hole(_) | Extent::Part { .. }, _)) =
            self.last.as_ref().and_then(|l| l.at(offset))
        {
            return Ok(found);
        }
        let missing = || Error::format("content", format!("no extent holds byte {offset}"));
        let mut found = self.top.at(offset).ok_or_else(missing)?;
        let mut depth = 0;
        while let (start, Extent::List { id, len }, _) = found {
            depth += 1;
            if depth > MAX_DEPTH {
                return Err(Error::format(
                    format!("list {}", id.short()),
                    format!("lists nested deeper than {MAX_DEPTH}"),
                ));
            }
            let level = Level::new(source, &source.list(&id)?, start, Some((id, len)))?;
            found = level.at(offset).ok_or_else(missing)?;
            self.last = Some(level);
        }
        Ok(found)
    }

    /// Reads up to `buf.len()` bytes from `offset` into `buf`; returns how many were
    /// read (fewer only at the end of the content, 0 at or past it). Every data blob
    /// is verified as it is read.
    pub fn read_at<S: ContentSource + ?Sized>(
        &mut self,
        source: &S,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize> {
        let end = self.len();
        let mut done = 0;
        while done < buf.len() && offset + (done as u64) < end {
            let at = offset + done as u64;
            let (start, extent, len) = self.locate(source, at)?;
            let skip = (at - start) as usize;
            let take = ((len - (at - start)) as usize).min(buf.len() - done);
            let out = &mut buf[done..done + take];
            match extent {
                Extent::Hole(_) => out.fill(0),
                Extent::Data(id) | Extent::Part { id, .. } => {
                    // Where the extent's bytes start in the blob's plaintext.
                    let base = match extent {
                        Extent::Part { offset, .. } => offset,
                        _ => 0,
                    };
                    if !matches!(&self.blob, Some((i, _)) if *i == id) {
                        self.blob = None; // free the old one before reading the next
                        self.blob = Some((id, source.data(&id)?));
                    }
                    let (_, data) = self.blob.as_ref().expect("just read");
                    let fits = match extent {
                        Extent::Data(_) => data.len() as u64 == len,
                        _ => data.len() as u64 >= base + len,
                    };
                    if !fits {
                        return Err(Error::format(
                            format!("data blob {}", id.short()),
                            format!("{} bytes, the index says otherwise", data.len()),
                        ));
                    }
                    let from = (base + skip as u64) as usize;
                    out.copy_from_slice(&data[from..from + take]);
                }
                Extent::List { .. } => unreachable!("locate descends into lists"),
            }
            done += take;
        }
        Ok(done)
    }
}

/// Adds to `blobs` every blob `content` uses: its data blobs and its list blobs, and
/// those of the lists it names (a list already in `blobs` is not read again).
pub fn add_blobs<S: ContentSource + ?Sized>(
    source: &S,
    content: &[Extent],
    blobs: &mut std::collections::HashSet<Id>,
) -> Result<()> {
    fn add(extents: &[Extent], blobs: &mut std::collections::HashSet<Id>, lists: &mut Vec<Id>) {
        for e in extents {
            match e {
                Extent::Data(id) | Extent::Part { id, .. } => {
                    blobs.insert(*id);
                }
                Extent::List { id, .. } => {
                    if blobs.insert(*id) {
                        lists.push(*id);
                    }
                }
                Extent::Hole(_) => {}
            }
        }
    }
    let mut lists: Vec<Id> = Vec::new();
    add(content, blobs, &mut lists);
    while let Some(list) = lists.pop() {
        add(&source.list(&list)?, blobs, &mut lists);
    }
    Ok(())
}

/// The ids of the list blobs named directly by `extents`.
pub fn lists_in(extents: &[Extent]) -> impl Iterator<Item = Id> + '_ {
    extents.iter().filter_map(|e| match e {
        Extent::List { id, .. } => Some(*id),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Data blobs are ids whose length is in a map; lists are stored plaintexts.
    #[derive(Default)]
    struct Mem {
        data: HashMap<Id, u64>,
        lists: HashMap<Id, Vec<u8>>,
    }

    impl ContentSource for Mem {
        fn data_len(&self, id: &Id) -> Result<u64> {
            self.data
                .get(id)
                .copied()
                .ok_or_else(|| Error::MissingBlob {
                    kind: "data",
                    id: id.short(),
                    context: String::new(),
                })
        }
        fn list(&self, id: &Id) -> Result<Vec<Extent>> {
            let b = self.lists.get(id).ok_or_else(|| Error::MissingBlob {
                kind: "tree",
                id: id.short(),
                context: String::new(),
            })?;
            decode_list(b, "list")
        }
        fn data(&self, id: &Id) -> Result<Vec<u8>> {
            let len = self.data_len(id)?;
            Ok((0..len).map(|i| byte_of(id, i)).collect())
        }
    }

    /// The bytes of the fake data blobs: a function of the id and the position.
    fn byte_of(id: &Id, i: u64) -> u8 {
        id.0[(i % 32) as usize] ^ (i / 32) as u8
    }

    fn build(mem: &mut Mem, extents: &[(Extent, u64)]) -> Vec<Extent> {
        let mut b = ContentBuilder::new();
        let lists = &mut mem.lists;
        let mut store = |bytes: &[u8]| -> Result<Id> {
            let id = Id::of_file(bytes);
            lists.insert(id, bytes.to_vec());
            Ok(id)
        };
        for &(e, len) in extents {
            b.push(e, len, &mut store).unwrap();
        }
        b.finish()
    }

    fn data(mem: &mut Mem, n: usize, seed: u64) -> Vec<(Extent, u64)> {
        (0..n)
            .map(|i| {
                let id = Id::of_file(&[seed.to_le_bytes(), (i as u64).to_le_bytes()].concat());
                let len = 1 + (i as u64 * 7919) % 100_000;
                mem.data.insert(id, len);
                (Extent::Data(id), len)
            })
            .collect()
    }

    fn walk(mem: &Mem, content: &[Extent]) -> Result<Vec<(Extent, u64)>> {
        ContentWalk::new(mem, content).collect()
    }

    #[test]
    fn short_contents_stay_in_the_node() {
        let mut mem = Mem::default();
        let ext = data(&mut mem, LIST_MIN - 1, 1);
        let content = build(&mut mem, &ext);
        assert!(mem.lists.is_empty());
        assert_eq!(content, ext.iter().map(|e| e.0).collect::<Vec<_>>());
    }

    #[test]
    fn long_contents_round_trip_through_nested_lists() {
        let mut mem = Mem::default();
        let mut ext = data(&mut mem, 700_000, 2);
        ext.insert(5, (Extent::Hole(1 << 40), 1 << 40));
        ext.push((Extent::Hole(3), 3));
        let content = build(&mut mem, &ext);
        assert!(content.len() < 3 * LIST_MAX, "node keeps {}", content.len());
        assert!(
            content.iter().any(|e| matches!(e, Extent::List { .. })),
            "lists made"
        );
        // Some list names lists: 700,000 extents need a second level.
        let nested = mem.lists.values().any(|b| {
            decode_list(b, "l")
                .unwrap()
                .iter()
                .any(|e| matches!(e, Extent::List { .. }))
        });
        assert!(nested);
        assert_eq!(walk(&mem, &content).unwrap(), ext);
        for b in mem.lists.values() {
            assert!(decode_list(b, "l").unwrap().len() <= LIST_MAX);
        }
    }

    #[test]
    fn an_edit_in_the_middle_keeps_the_lists_away_from_it() {
        let mut mem = Mem::default();
        let ext = data(&mut mem, 20_000, 3);
        build(&mut mem, &ext);
        let before: Vec<Id> = mem.lists.keys().copied().collect();
        let mut edited = ext.clone();
        let extra = data(&mut mem, 3, 4);
        edited.splice(10_000..10_001, extra);
        let mut mem2 = Mem {
            data: mem.data.clone(),
            ..Mem::default()
        };
        let content = build(&mut mem2, &edited);
        assert_eq!(walk(&mem2, &content).unwrap(), edited);
        let shared = mem2.lists.keys().filter(|id| before.contains(id)).count();
        assert!(
            shared + 3 >= mem2.lists.len(),
            "only the lists around the edit are new: {shared} of {} shared",
            mem2.lists.len()
        );
    }

    #[test]
    fn a_list_that_lies_about_its_length_is_an_error() {
        let mut mem = Mem::default();
        let ext = data(&mut mem, 5000, 5);
        let mut content = build(&mut mem, &ext);
        let Some(Extent::List { len, .. }) = content
            .iter_mut()
            .find(|e| matches!(e, Extent::List { .. }))
        else {
            panic!("a list");
        };
        *len += 1;
        let err = walk(&mem, &content).unwrap_err().to_string();
        assert!(err.contains("its parent says"), "{err}");
    }

    #[test]
    fn bad_list_blobs_are_refused() {
        assert!(decode_list(&[], "l").is_err());
        assert!(decode_list(&[2, 0], "l").is_err());
        assert!(decode_list(&encode_list(&[]), "l").is_err());
        let too_many = vec![Extent::Hole(1); LIST_MAX + 1];
        assert!(decode_list(&encode_list(&too_many), "l").is_err());
        let ok = encode_list(&[Extent::Hole(1)]);
        for n in 0..ok.len() {
            assert!(decode_list(&ok[..n], "l").is_err());
        }
    }

    #[test]
    fn a_list_naming_itself_stops_at_the_depth_limit() {
        // Not constructible by content addressing, but a damaged or hostile repository
        // could make a reader loop: the walk must end with an error.
        struct Cycle;
        impl ContentSource for Cycle {
            fn data_len(&self, _: &Id) -> Result<u64> {
                Ok(1)
            }
            fn list(&self, id: &Id) -> Result<Vec<Extent>> {
                Ok(vec![Extent::List { id: *id, len: 1 }])
            }
            fn data(&self, _: &Id) -> Result<Vec<u8>> {
                Ok(vec![0])
            }
        }
        let start = [Extent::List {
            id: Id::of_file(b"x"),
            len: 1,
        }];
        let r: Result<Vec<_>> = ContentWalk::new(&Cycle, &start).collect();
        assert!(r.unwrap_err().to_string().contains("deeper"));
    }

    /// The byte at `offset` of `ext` laid end to end, the slow way.
    fn expected(ext: &[(Extent, u64)], starts: &[u64], offset: u64) -> u8 {
        let i = starts.partition_point(|&s| s <= offset) - 1;
        match ext[i].0 {
            Extent::Data(id) => byte_of(&id, offset - starts[i]),
            _ => 0,
        }
    }

    #[test]
    fn reads_at_any_offset_equal_the_contents_laid_end_to_end() {
        let mut mem = Mem::default();
        let mut ext = data(&mut mem, 30_000, 6);
        ext.insert(7, (Extent::Hole(70_000), 70_000));
        ext.insert(20_000, (Extent::Hole(3), 3));
        let content = build(&mut mem, &ext);
        assert!(content.iter().any(|e| matches!(e, Extent::List { .. })));
        let mut starts = Vec::new();
        let mut total = 0u64;
        for (_, len) in &ext {
            starts.push(total);
            total += len;
        }
        let mut r = ContentReader::new(&mem, &content).unwrap();
        assert_eq!(r.len(), total);
        // Offsets spread over the whole content, at extent edges and across them.
        let mut offsets: Vec<u64> = (0..200).map(|k| total / 200 * k + k * 7919).collect();
        offsets.extend([
            0,
            starts[7],
            starts[8] - 1,
            starts[20_000],
            total - 1,
            total - 10,
        ]);
        for &off in &offsets {
            let mut buf = vec![0xAA; 150_000];
            let n = r.read_at(&mem, off, &mut buf).unwrap();
            assert_eq!(n as u64, (total - off).min(buf.len() as u64));
            for (k, b) in buf[..n].iter().enumerate().step_by(97) {
                assert_eq!(
                    *b,
                    expected(&ext, &starts, off + k as u64),
                    "at {}",
                    off + k as u64
                );
            }
        }
        assert_eq!(r.read_at(&mem, total, &mut [0; 10]).unwrap(), 0);
        assert_eq!(r.read_at(&mem, total + 5, &mut [0; 10]).unwrap(), 0);
        // Sequential small reads see every byte of a stretch of extents.
        let (from, to) = (starts[9_000], starts[9_010]);
        let mut off = from;
        while off < to {
            let mut buf = [0u8; 4096];
            let n = r.read_at(&mem, off, &mut buf).unwrap();
            for (k, b) in buf[..n].iter().enumerate() {
                assert_eq!(*b, expected(&ext, &starts, off + k as u64));
            }
            off += n as u64;
        }
        let empty = ContentReader::new(&mem, &[]).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn a_reader_refuses_a_list_that_lies_about_its_length() {
        let mut mem = Mem::default();
        let ext = data(&mut mem, 5000, 7);
        let mut content = build(&mut mem, &ext);
        if let Some(Extent::List { len, .. }) = content
            .iter_mut()
            .find(|e| matches!(e, Extent::List { .. }))
        {
            *len += 1;
        }
        let mut r = ContentReader::new(&mem, &content).unwrap();
        let err = r.read_at(&mem, 0, &mut [0; 16]).unwrap_err().to_string();
        assert!(err.contains("its parent says"), "{err}");
    }

    #[test]
    fn a_reader_slices_parts_and_refuses_one_outside_its_blob() {
        let mut mem = Mem::default();
        let ext = data(&mut mem, 3, 9);
        let (a, b) = (ext[1].0.data_blob().unwrap(), ext[2].0.data_blob().unwrap());
        let (la, lb) = (ext[1].1, ext[2].1);
        assert!(la > 20, "blob a is {la} bytes");
        let content = [
            Extent::Part {
                id: a,
                offset: 5,
                len: 10,
            },
            Extent::Data(b),
            Extent::Part {
                id: a,
                offset: 0,
                len: 3,
            },
        ];
        let mut want: Vec<u8> = (5..15).map(|i| byte_of(&a, i)).collect();
        want.extend((0..lb).map(|i| byte_of(&b, i)));
        want.extend((0..3).map(|i| byte_of(&a, i)));
        let mut r = ContentReader::new(&mem, &content).unwrap();
        assert_eq!(r.len(), want.len() as u64);
        let mut got = vec![0u8; want.len()];
        let mut off = 0;
        while off < got.len() {
            let end = (off + 7).min(got.len());
            off += r.read_at(&mem, off as u64, &mut got[off..end]).unwrap();
        }
        assert_eq!(got, want);
        let walked: Vec<u64> = walk(&mem, &content).unwrap().iter().map(|e| e.1).collect();
        assert_eq!(walked, vec![10, lb, 3]);
        for bad in [(la - 2, 3), (la, 1), (u64::MAX, 2), (0, 0)] {
            let c = [Extent::Part {
                id: a,
                offset: bad.0,
                len: bad.1,
            }];
            assert!(ContentReader::new(&mem, &c).is_err(), "{bad:?}");
            assert!(walk(&mem, &c).is_err(), "{bad:?}");
        }
    }
}
