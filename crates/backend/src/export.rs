//! [`ExportFile`]: a repository laid into one file (a cairn export), read in place; and
//! [`write_export`], which lays a repository into such a file.
//!
//! The container is a plain POSIX tar (ustar) file, so that standard tools can list
//! it: a marker entry `CAIRN-EXPORT`, then `config`, `keys/<name>`,
//! `snapshots/<name>`, `index/<name>` and `data/<name>` (packs, without the fan-out
//! directories), each a regular file, and the end-of-archive marker (two zero blocks).
//! docs/format.md describes every byte. The contents are the repository's files as
//! they are: already compressed, sealed and named by their hashes, so the container
//! adds no encryption of its own and needs none.
//!
//! Reading scans the headers once into a map name → (offset, length) and then serves
//! each read with one positioned read. Every header is checked (magic, checksum, type,
//! name, size) and every entry must lie inside the file: a truncated or garbled export
//! gives one clear error when it is opened, never a panic and never bytes from outside
//! an entry. An export is read-only: `create`, `write` and `remove` fail.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use cairn_core::{validate_name, Backend, BackendError, FileKind};

/// The name of the first entry of every export.
pub const EXPORT_MARKER: &str = "CAIRN-EXPORT";

/// The contents of the marker entry: the container's version.
pub const EXPORT_MARKER_CONTENTS: &[u8] = b"cairn export 1\n";

/// Positioned reads: of the export file, or (for the fuzz target) of bytes in memory.
trait ReadAt {
    fn read_all_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

impl ReadAt for File {
    fn read_all_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_all_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let end = start
            .checked_add(buf.len())
            .filter(|e| *e <= self.len())
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(&self[start..end]);
        Ok(())
    }
}

/// For the fuzz target: scans `data` as an export's layout; returns how many files it
/// holds, after checking that each lies inside `data`.
pub fn fuzz_scan(data: &[u8]) -> Result<usize, String> {
    let entries = scan(data, data.len() as u64)?;
    for (offset, len) in entries.values() {
        assert!(
            offset + len <= data.len() as u64,
            "an entry runs past the end"
        );
    }
    Ok(entries.len())
}

/// Where each repository file lies in an export: (kind, name) → (offset, length).
type Entries = HashMap<(FileKind, String), (u64, u64)>;

/// The size of a tar block (headers, padding, end marker).
const BLOCK: u64 = 512;

/// A cairn export, opened for reading as a repository.
#[derive(Debug)]
pub struct ExportFile {
    path: PathBuf,
    file: File,
    /// Each file of the repository: where its bytes start in the export, and how many.
    entries: Entries,
}

impl ExportFile {
    /// Opens an export and checks its layout (every header and every entry's bounds);
    /// reads no contents.
    pub fn open(path: &Path) -> Result<ExportFile, BackendError> {
        let file = File::open(path)
            .map_err(|e| BackendError::io(format!("opening {}", path.display()), e))?;
        let size = file
            .metadata()
            .map_err(|e| BackendError::io(format!("inspecting {}", path.display()), e))?
            .len();
        let entries = scan(&file, size).map_err(|e| {
            BackendError::io(
                format!("{} is not a readable cairn export", path.display()),
                io::Error::new(io::ErrorKind::InvalidData, e),
            )
        })?;
        Ok(ExportFile {
            path: path.to_path_buf(),
            file,
            entries,
        })
    }

    fn read_only(&self, what: &str) -> BackendError {
        BackendError::io(
            format!("{what} in {}", self.location()),
            io::Error::new(
                io::ErrorKind::ReadOnlyFilesystem,
                "an export is read-only: import it into a repository to change it",
            ),
        )
    }

    fn entry(&self, kind: FileKind, name: &str) -> Result<(u64, u64), BackendError> {
        validate_name(kind, name)?;
        self.entries
            .get(&(kind, name.to_string()))
            .copied()
            .ok_or_else(|| BackendError::NotFound {
                kind,
                name: name.to_string(),
            })
    }
}

impl Backend for ExportFile {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn create(&self) -> Result<(), BackendError> {
        Err(self.read_only("creating a repository"))
    }

    fn write(&self, kind: FileKind, name: &str, _data: &[u8]) -> Result<(), BackendError> {
        Err(self.read_only(&format!("writing {kind:?} file {name}")))
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, BackendError> {
        let (_, size) = self.entry(kind, name)?;
        self.read_range(kind, name, 0, size)
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, BackendError> {
        let (start, size) = self.entry(kind, name)?;
        let mut buf = vec![0; BackendError::check_range(kind, name, offset, len, size)?];
        self.file
            .read_exact_at(&mut buf, start + offset)
            .map_err(|e| {
                // Checked against the size when opened: the file shrank since.
                BackendError::io(format!("reading {}", self.path.display()), e)
            })?;
        Ok(buf)
    }

    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>, BackendError> {
        Ok(self
            .entries
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, name), (_, len))| (name.clone(), *len))
            .collect())
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<(), BackendError> {
        Err(self.read_only(&format!("removing {kind:?} file {name}")))
    }

    fn parallelism(&self) -> usize {
        // Positioned reads of one local file.
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }
}

/// The kind and repository name of an entry name, or why it is not one.
fn parse_name(entry: &str) -> Result<(FileKind, String), String> {
    let (kind, name) = match entry.split_once('/') {
        None if entry == "config" => (FileKind::Config, entry),
        Some(("keys", n)) => (FileKind::Key, n),
        Some(("snapshots", n)) => (FileKind::Snapshot, n),
        Some(("index", n)) => (FileKind::Index, n),
        Some(("data", n)) => (FileKind::Pack, n),
        _ => return Err(format!("unexpected entry {entry:?}")),
    };
    validate_name(kind, name).map_err(|e| e.to_string())?;
    Ok((kind, name.to_string()))
}

/// An octal number field of a header: digits, then NULs or spaces.
fn octal(field: &[u8], what: &str) -> Result<u64, String> {
    let text = field
        .split(|b| *b == 0)
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if text.is_empty() || text.len() > 11 || !text.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return Err(format!(
            "bad {what} field {:?}",
            String::from_utf8_lossy(field)
        ));
    }
    Ok(text.iter().fold(0, |n, d| n * 8 + (d - b'0') as u64))
}

/// The checksum a header should carry: the sum of its bytes, the checksum field counted
/// as eight spaces.
fn checksum(h: &[u8; BLOCK as usize]) -> u64 {
    h.iter()
        .enumerate()
        .map(|(i, b)| if (148..156).contains(&i) { b' ' } else { *b } as u64)
        .sum()
}

/// Reads the headers of an export of `size` bytes: the map of its repository files, or
/// what is wrong (the first problem, with the byte offset where it is).
fn scan<R: ReadAt + ?Sized>(file: &R, size: u64) -> Result<Entries, String> {
    let mut entries = HashMap::new();
    let mut at = 0u64;
    let mut first = true;
    let mut header = [0u8; BLOCK as usize];
    loop {
        if at + BLOCK > size {
            return Err(format!(
                "the file ends at byte {size} inside a header or before the end marker \
                 (truncated?)"
            ));
        }
        file.read_all_at(&mut header, at)
            .map_err(|e| format!("reading the header at byte {at}: {e}"))?;
        if header.iter().all(|b| *b == 0) {
            // The end marker is two zero blocks; anything after them must be zeros too
            // (tar tools may pad the last record).
            let mut rest = vec![0u8; (size - at).min(1 << 20) as usize];
            let mut off = at;
            while off < size {
                let n = rest.len().min((size - off) as usize);
                file.read_all_at(&mut rest[..n], off)
                    .map_err(|e| format!("reading byte {off}: {e}"))?;
                if rest[..n].iter().any(|b| *b != 0) {
                    return Err(format!("data after the end marker at byte {at}"));
                }
                off += n as u64;
            }
            if size - at < 2 * BLOCK {
                return Err(format!(
                    "the end marker at byte {at} is cut short (truncated?)"
                ));
            }
            break;
        }
        let what = |e: String| format!("header at byte {at}: {e}");
        if &header[257..263] != b"ustar\0" || &header[263..265] != b"00" {
            return Err(what("not a ustar header (garbled or not an export)".into()));
        }
        if octal(&header[148..156], "checksum").map_err(what)? != checksum(&header) {
            return Err(what("checksum mismatch (garbled)".into()));
        }
        if !matches!(header[156], b'0' | 0) {
            return Err(what(format!(
                "entry type {:?}, not a regular file",
                header[156] as char
            )));
        }
        if header[345..500].iter().any(|b| *b != 0) {
            return Err(what("a name prefix, which exports never use".into()));
        }
        let name_field = header[..100].split(|b| *b == 0).next().unwrap_or_default();
        let name =
            std::str::from_utf8(name_field).map_err(|_| what("a name that is not UTF-8".into()))?;
        let len = octal(&header[124..136], "size").map_err(what)?;
        let data = at + BLOCK;
        let padded = len.div_ceil(BLOCK) * BLOCK;
        if data.checked_add(padded).is_none_or(|end| end > size) {
            return Err(format!(
                "entry {name:?} at byte {at} holds {len} bytes, past the end of the file \
                 ({size} bytes; truncated?)"
            ));
        }
        if first {
            if name != EXPORT_MARKER {
                return Err(format!(
                    "the first entry is {name:?}, not {EXPORT_MARKER:?}: not a cairn export"
                ));
            }
            let mut marker = vec![0u8; len.min(64) as usize];
            file.read_all_at(&mut marker, data)
                .map_err(|e| format!("reading the marker: {e}"))?;
            if marker != EXPORT_MARKER_CONTENTS {
                return Err(format!(
                    "the marker says {:?}; this cairn reads {:?} (made by a newer cairn?)",
                    String::from_utf8_lossy(&marker),
                    String::from_utf8_lossy(EXPORT_MARKER_CONTENTS)
                ));
            }
            first = false;
        } else {
            let key = parse_name(name).map_err(what)?;
            if entries.insert(key, (data, len)).is_some() {
                return Err(what(format!("a second entry {name:?}")));
            }
        }
        at = data + padded;
    }
    if first {
        return Err("the file holds no entry: not a cairn export".into());
    }
    if !entries.contains_key(&(FileKind::Config, "config".to_string())) {
        return Err("no config entry".into());
    }
    Ok(entries)
}

/// A ustar header for a regular file `name` of `len` bytes: mode 0400, owner 0, time 0,
/// so that the same repository files give the same bytes.
fn header(name: &str, len: u64) -> Result<[u8; BLOCK as usize], BackendError> {
    if name.len() > 100 || len >= 1 << 33 {
        return Err(BackendError::io(
            format!("writing entry {name}"),
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "names of at most 100 bytes and files below 8 GiB only",
            ),
        ));
    }
    let mut h = [0u8; BLOCK as usize];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000400\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{len:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum = checksum(&h);
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    Ok(h)
}

/// Writes one entry: header, contents, padding to the block.
fn entry(out: &mut dyn Write, name: &str, data: &[u8]) -> Result<u64, BackendError> {
    let io = |e| BackendError::io("writing the export", e);
    out.write_all(&header(name, data.len() as u64)?)
        .map_err(io)?;
    out.write_all(data).map_err(io)?;
    let pad = (BLOCK - data.len() as u64 % BLOCK) % BLOCK;
    out.write_all(&[0u8; BLOCK as usize][..pad as usize])
        .map_err(io)?;
    Ok(BLOCK + data.len() as u64 + pad)
}

/// Lays the repository `src` into one export file written to `out`: the marker, then
/// the config, key files, snapshots, index files and packs, each kind in name order
/// (locks are left out). Reads one file at a time, so memory stays at one pack. Returns
/// the bytes written.
pub fn write_export(src: &dyn Backend, out: &mut dyn Write) -> Result<u64, BackendError> {
    let mut n = entry(out, EXPORT_MARKER, EXPORT_MARKER_CONTENTS)?;
    let kinds = [
        FileKind::Config,
        FileKind::Key,
        FileKind::Snapshot,
        FileKind::Index,
        FileKind::Pack,
    ];
    for kind in kinds {
        let mut names = src.list(kind)?;
        names.sort();
        for (name, _) in names {
            let data = src.read(kind, &name)?;
            let entry_name = match kind {
                FileKind::Config => name.clone(),
                _ => format!("{}/{name}", kind.dir()),
            };
            n += entry(out, &entry_name, &data)?;
        }
    }
    out.write_all(&[0u8; 2 * BLOCK as usize])
        .map_err(|e| BackendError::io("writing the export", e))?;
    Ok(n + 2 * BLOCK)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An export of a tiny "repository": a config, a key and a pack.
    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        entry(&mut out, EXPORT_MARKER, EXPORT_MARKER_CONTENTS).unwrap();
        entry(&mut out, "config", b"sealed config").unwrap();
        entry(&mut out, "keys/ab12", b"key").unwrap();
        entry(&mut out, "data/cd34", &vec![7u8; 1000]).unwrap();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    fn open(bytes: &[u8]) -> Result<ExportFile, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.cairn");
        std::fs::write(&path, bytes).unwrap();
        ExportFile::open(&path).map_err(|e| {
            format!(
                "{e}: {}",
                std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            )
        })
    }

    #[test]
    fn reads_what_was_written() {
        let e = open(&sample()).unwrap();
        assert_eq!(
            e.read(FileKind::Config, "config").unwrap(),
            b"sealed config"
        );
        assert_eq!(
            e.list(FileKind::Key).unwrap(),
            vec![("ab12".to_string(), 3)]
        );
        assert_eq!(
            e.read_range(FileKind::Pack, "cd34", 990, 10).unwrap(),
            vec![7u8; 10]
        );
        assert!(matches!(
            e.read_range(FileKind::Pack, "cd34", 995, 10),
            Err(BackendError::ShortRead { .. })
        ));
        assert!(e.read(FileKind::Snapshot, "ef").unwrap_err().is_not_found());
        assert!(e.write(FileKind::Snapshot, "ef", b"x").is_err());
        assert!(e.remove(FileKind::Pack, "cd34").is_err());
        // The system tar reads the container (when there is one to ask).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tar");
        std::fs::write(&path, sample()).unwrap();
        if let Ok(out) = std::process::Command::new("tar")
            .arg("-tf")
            .arg(&path)
            .output()
        {
            let listing = String::from_utf8_lossy(&out.stdout);
            assert_eq!(listing, "CAIRN-EXPORT\nconfig\nkeys/ab12\ndata/cd34\n");
        }
    }

    #[test]
    fn a_garbled_header_is_refused() {
        let good = sample();
        // A byte of the second header's name, its size, its checksum, its magic.
        for at in [512 + 512 + 2, 1024 + 124 + 3, 1024 + 150, 1024 + 258] {
            let mut bad = good.clone();
            bad[at] ^= 0x41;
            let e = open(&bad).unwrap_err();
            assert!(e.contains("not a readable cairn export"), "{at}: {e}");
        }
    }

    #[test]
    fn an_entry_running_past_the_end_is_refused() {
        let good = sample();
        // Cut inside the pack's contents, inside its header, in the end marker.
        for len in [
            good.len() - 1024 - 100,
            good.len() - 1024 - 1024 - 200,
            good.len() - 10,
        ] {
            let e = open(&good[..len]).unwrap_err();
            assert!(e.contains("truncated"), "{len}: {e}");
        }
        // A size field that claims more than the file holds.
        let mut big = good.clone();
        let pack = good.len() - 1024 - 1024 - 512;
        let mut h: [u8; 512] = big[pack..pack + 512].try_into().unwrap();
        h[124..136].copy_from_slice(b"77777777777\0");
        h[148..156].copy_from_slice(b"        ");
        let sum = checksum(&h);
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        big[pack..pack + 512].copy_from_slice(&h);
        let e = open(&big).unwrap_err();
        assert!(e.contains("past the end of the file"), "{e}");
    }

    #[test]
    fn other_files_are_refused() {
        assert!(open(b"").unwrap_err().contains("truncated"));
        assert!(open(&[0u8; 4096]).unwrap_err().contains("no entry"));
        let mut out = Vec::new();
        entry(&mut out, "config", b"x").unwrap();
        out.extend_from_slice(&[0u8; 1024]);
        assert!(open(&out).unwrap_err().contains("not a cairn export"));
        let mut out = Vec::new();
        entry(&mut out, EXPORT_MARKER, EXPORT_MARKER_CONTENTS).unwrap();
        entry(&mut out, "data/../../etc", b"x").unwrap();
        out.extend_from_slice(&[0u8; 1024]);
        assert!(open(&out).is_err());
        let mut trailing = sample();
        trailing.push(1);
        assert!(open(&trailing)
            .unwrap_err()
            .contains("after the end marker"));
    }
}
