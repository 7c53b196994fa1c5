//! Sealed files and key envelopes: how every encrypted repository file is framed.
//!
//! ```text
//! sealed file = magic (4) | format version (1) | envelope | body
//! envelope    = wrap kind (1) | key epoch (u32 LE) | seal(wrap key, file key (32))
//! body        = seal(file key, plaintext)
//! seal(k, p)  = nonce (24) | XChaCha20-Poly1305 ciphertext | tag (16)
//! ```
//!
//! The file key is random per file (per write session for packs, see `store`). Wrapping
//! it, instead of sealing bodies with a long-lived key directly, is what later lets a
//! client that holds only a public key write files (wrap kind 2, reserved) and lets the
//! wrapping keys be rotated without re-encrypting data.
//!
//! Associated data binds every sealed piece to where it belongs: `magic | version |
//! "envelope"` for the envelope and `magic | version | "body"` for the body, so a
//! snapshot cannot be passed off as an index or a config, and packs bind each blob to
//! its kind and id (see `pack`).

use crate::error::{Error, Result};
use cairn_crypto::{open, open_in_place, seal, seal_into, Key, SEAL_OVERHEAD};

/// The on-disk format version this build writes and the highest it reads.
pub const FORMAT_VERSION: u8 = 1;

/// Length of a wrap-kind-1 envelope: kind (1) + epoch (4) + sealed 32-byte key (72).
pub const ENVELOPE_LEN: usize = 1 + 4 + 32 + SEAL_OVERHEAD;

/// Wrap kind 1: the file key is sealed with a symmetric key of the master key.
const WRAP_SYMMETRIC: u8 = 1;

/// The four-byte magic that starts each kind of sealed file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Magic {
    /// The repository config.
    Config,
    /// An index file.
    Index,
    /// A snapshot.
    Snapshot,
    /// A pack.
    Pack,
    /// A lock.
    Lock,
}

impl Magic {
    /// The magic bytes.
    pub fn bytes(self) -> &'static [u8; 4] {
        match self {
            Magic::Config => b"CRNc",
            Magic::Index => b"CRNi",
            Magic::Snapshot => b"CRNs",
            Magic::Pack => b"CRNp",
            Magic::Lock => b"CRNl",
        }
    }

    fn ad(self, part: &[u8]) -> Vec<u8> {
        let mut ad = Vec::with_capacity(5 + part.len());
        ad.extend_from_slice(self.bytes());
        ad.push(FORMAT_VERSION);
        ad.extend_from_slice(part);
        ad
    }
}

/// A file key together with its envelope.
pub struct FileKey {
    /// The random key that seals the file's body (or a pack's blobs).
    pub key: Key,
    /// The envelope as stored.
    pub envelope: [u8; ENVELOPE_LEN],
}

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileKey([redacted])")
    }
}

impl FileKey {
    /// A new random file key wrapped by `wrap_key` for files of kind `magic`.
    pub fn new(magic: Magic, wrap_key: &Key) -> FileKey {
        let key = Key::random();
        let mut envelope = [0u8; ENVELOPE_LEN];
        envelope[0] = WRAP_SYMMETRIC;
        envelope[1..5].copy_from_slice(&0u32.to_le_bytes());
        let sealed = seal(
            wrap_key,
            &envelope_ad(magic, &envelope[..5]),
            key.as_bytes(),
        );
        envelope[5..].copy_from_slice(&sealed);
        FileKey { key, envelope }
    }

    /// Unwraps an envelope. `what` names the file for the error message.
    pub fn open(magic: Magic, wrap_key: &Key, envelope: &[u8], what: &str) -> Result<FileKey> {
        if envelope.len() != ENVELOPE_LEN {
            return Err(Error::corrupt(what));
        }
        if envelope[0] != WRAP_SYMMETRIC {
            return Err(Error::format(
                what,
                format!("unknown key wrap kind {}", envelope[0]),
            ));
        }
        let plain = open(
            wrap_key,
            &envelope_ad(magic, &envelope[..5]),
            &envelope[5..],
        )
        .map_err(|_| Error::corrupt(what))?;
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| Error::corrupt(what))?;
        let mut arr = [0u8; ENVELOPE_LEN];
        arr.copy_from_slice(envelope);
        Ok(FileKey {
            key: Key::from_bytes(bytes),
            envelope: arr,
        })
    }
}

/// The envelope's associated data: `magic | version | "envelope" | wrap kind | epoch`,
/// so neither the kind nor the epoch can be changed without detection.
fn envelope_ad(magic: Magic, kind_and_epoch: &[u8]) -> Vec<u8> {
    let mut ad = magic.ad(b"envelope");
    ad.extend_from_slice(kind_and_epoch);
    ad
}

/// Length of the header before the body: magic, version, envelope.
pub const HEADER_LEN: usize = 4 + 1 + ENVELOPE_LEN;

/// Writes the header of a sealed file (magic, version, envelope) into `out`.
pub fn write_header(magic: Magic, file_key: &FileKey, out: &mut Vec<u8>) {
    out.extend_from_slice(magic.bytes());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&file_key.envelope);
}

/// Checks magic and version of a sealed file and returns its envelope bytes.
pub fn read_header<'a>(magic: Magic, bytes: &'a [u8], what: &str) -> Result<&'a [u8]> {
    if bytes.len() < HEADER_LEN || &bytes[..4] != magic.bytes() {
        return Err(Error::corrupt(what));
    }
    if bytes[4] != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            found: bytes[4] as u32,
            supported: FORMAT_VERSION as u32,
        });
    }
    Ok(&bytes[5..HEADER_LEN])
}

/// Seals `plaintext` as a whole file of kind `magic`, with a fresh file key wrapped by `wrap_key`.
pub fn seal_file(magic: Magic, wrap_key: &Key, plaintext: &[u8]) -> Vec<u8> {
    let fk = FileKey::new(magic, wrap_key);
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + SEAL_OVERHEAD);
    write_header(magic, &fk, &mut out);
    seal_into(&fk.key, &magic.ad(b"body"), plaintext, &mut out);
    out
}

/// Opens a whole sealed file. `what` names it in errors ("snapshot 1a2b3c4d").
pub fn open_file(magic: Magic, wrap_key: &Key, bytes: &[u8], what: &str) -> Result<Vec<u8>> {
    let envelope = read_header(magic, bytes, what)?;
    let fk = FileKey::open(magic, wrap_key, envelope, what)?;
    let mut body = bytes[HEADER_LEN..].to_vec();
    open_in_place(&fk.key, &magic.ad(b"body"), &mut body).map_err(|_| Error::corrupt(what))?;
    Ok(body)
}

/// The associated data of a sealed pack header.
pub fn pack_header_ad() -> Vec<u8> {
    Magic::Pack.ad(b"header")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_file_round_trip_and_every_bit_flip_is_detected() {
        let k = Key::random();
        let file = seal_file(Magic::Snapshot, &k, b"{\"hello\":1}");
        assert_eq!(
            open_file(Magic::Snapshot, &k, &file, "x").unwrap(),
            b"{\"hello\":1}"
        );
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x10;
            assert!(
                open_file(Magic::Snapshot, &k, &bad, "x").is_err(),
                "byte {i}"
            );
        }
        assert!(open_file(Magic::Index, &k, &file, "x").is_err());
        assert!(open_file(Magic::Snapshot, &Key::random(), &file, "x").is_err());
        for n in 0..file.len() {
            assert!(open_file(Magic::Snapshot, &k, &file[..n], "x").is_err());
        }
    }
}
