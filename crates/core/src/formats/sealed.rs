//! Sealed files and key envelopes: how every encrypted repository file is framed.
//!
//! ```text
//! sealed file = magic (4) | format version (1) | envelope | body
//! envelope    = wrap kind (1) | key epoch (u32 LE) | wrapped file key
//! body        = seal(file key, plaintext)
//! seal(k, p)  = nonce (24) | XChaCha20-Poly1305 ciphertext | tag (16)
//! ```
//!
//! The file key is random per file (per write session for packs, see `store`). Wrapping
//! it, instead of sealing bodies with a long-lived key directly, is what lets a client
//! that holds only a public key write files (wrap kind 2) and lets the wrapping keys be
//! rotated without re-encrypting data. Two wrap kinds exist:
//!
//! ```text
//! kind 1 (77 bytes): 1 | epoch | seal(wrap key, file key (32))
//! kind 2 (95 bytes): 2 | epoch | sealed box to the data public key of
//!                    (file key (32) | magic (4) | version (1) | kind (1) | epoch (4))
//! ```
//!
//! Kind 2 is what put-only keys write (see `keys`): the public key's secret is derived
//! from the data key, so every full key opens it and the writer itself cannot. A sealed
//! box has no associated data, so the fields a kind-1 envelope authenticates as
//! associated data are sealed inside the box and compared on opening. Only packs and
//! snapshots may have kind-2 envelopes.
//!
//! The format version byte is 1 for a file whose envelopes (its own, and for an index
//! file those of the packs it lists) are all of kind 1, and 2 otherwise: a cairn that
//! knows only kind 1 refuses such a file as a newer version instead of misreading it.
//! Packs and index files are written as version 3 ([`PADDED_VERSION`]), whatever their
//! envelopes: they end their sealed plaintext with padding (see `padding`), which a
//! cairn that knows only versions 1 and 2 would refuse as damage.
//!
//! Associated data binds every sealed piece to where it belongs: `magic | version |
//! "envelope"` for the envelope and `magic | version | "body"` for the body, so a
//! snapshot cannot be passed off as an index or a config, and packs bind each blob to
//! its kind and id (see `pack`).

use crate::error::{Error, Result};
use cairn_crypto::{
    open, open_in_place, open_sealed_box, seal, seal_into, seal_to, Key, PublicKey,
    SEALBOX_OVERHEAD, SEAL_OVERHEAD,
};

/// The highest format version of sealed files this build reads. It writes version 1
/// unless a file holds a kind-2 envelope, and packs and index files as version 3 (see
/// the module documentation).
pub const FORMAT_VERSION: u8 = 3;
/// The version of packs and index files whose sealed plaintext ends with padding, of
/// any envelope kind. Only packs and index files may have it.
pub const PADDED_VERSION: u8 = 3;
/// The version of index files sealed with the data wrap (the data key for full keys,
/// the data public key for put-only keys) rather than the meta key: put-only keys can
/// neither read them nor write one that passes for a full key's. Index files of this
/// version are padded too.
pub const VERSION_DATA_INDEX: u8 = PADDED_VERSION;
/// The version of files whose envelopes are all of kind 1.
const VERSION_SYMMETRIC: u8 = 1;
/// The version of files that hold a kind-2 envelope.
const VERSION_PUBLIC: u8 = 2;

/// Length of a wrap-kind-1 envelope: kind (1) + epoch (4) + sealed 32-byte key (72).
pub const ENVELOPE_LEN: usize = 1 + 4 + 32 + SEAL_OVERHEAD;
/// What a kind-2 box holds after the file key: magic, version, kind, epoch.
const BOUND_LEN: usize = 4 + 1 + 1 + 4;
/// Length of a wrap-kind-2 envelope: kind (1) + epoch (4) + sealed box of the file key
/// and the bound fields.
pub const PUBLIC_ENVELOPE_LEN: usize = 1 + 4 + 32 + BOUND_LEN + SEALBOX_OVERHEAD;
/// The longest envelope.
pub const ENVELOPE_MAX_LEN: usize = PUBLIC_ENVELOPE_LEN;

/// Wrap kind 1: the file key is sealed with a symmetric key of the master key.
const WRAP_SYMMETRIC: u8 = 1;
/// Wrap kind 2: the file key is sealed to the data public key.
const WRAP_PUBLIC: u8 = 2;

/// The context that derives the data secret (whose public key put-only keys hold) from
/// the data key.
const DATA_SECRET_CONTEXT: &str = "cairn 2026 put-only data secret";

/// The X25519 secret of kind-2 envelopes, derived from the data key.
fn data_secret(data_key: &Key) -> Key {
    data_key.derive(DATA_SECRET_CONTEXT)
}

/// The public key that put-only keys seal file keys to, for a data key.
pub fn data_public(data_key: &Key) -> PublicKey {
    PublicKey::of(&data_secret(data_key))
}

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

    fn ad(self, version: u8, part: &[u8]) -> Vec<u8> {
        let mut ad = Vec::with_capacity(5 + part.len());
        ad.extend_from_slice(self.bytes());
        ad.push(version);
        ad.extend_from_slice(part);
        ad
    }

    /// Whether files of this kind may have kind-2 envelopes (written by put-only keys).
    fn takes_public(self) -> bool {
        matches!(self, Magic::Pack | Magic::Snapshot | Magic::Index)
    }
}

/// How a new file key is wrapped, and under which key epoch (0 until the master key is
/// first rotated).
#[derive(Clone, Copy, Debug)]
pub enum Wrap<'a> {
    /// Kind 1, with a symmetric key.
    Key(&'a Key, u32),
    /// Kind 2, sealed to a public key.
    Public(&'a PublicKey, u32),
}

/// The wrap keys a reader holds, by key epoch. A single [`Key`] is the key of epoch 0.
pub trait EpochKeys {
    /// The wrap key of `epoch`, if held.
    fn for_epoch(&self, epoch: u32) -> Option<&Key>;
}

impl EpochKeys for Key {
    fn for_epoch(&self, epoch: u32) -> Option<&Key> {
        (epoch == 0).then_some(self)
    }
}

/// A stored envelope (kind 1 or kind 2).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Envelope {
    len: u8,
    bytes: [u8; ENVELOPE_MAX_LEN],
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Envelope(kind {}, {} bytes)", self.bytes[0], self.len)
    }
}

impl Envelope {
    /// The length of an envelope of this wrap kind, `None` for an unknown kind.
    fn len_of_kind(kind: u8) -> Option<usize> {
        match kind {
            WRAP_SYMMETRIC => Some(ENVELOPE_LEN),
            WRAP_PUBLIC => Some(PUBLIC_ENVELOPE_LEN),
            _ => None,
        }
    }

    /// Parses the envelope that starts `bytes` (its length follows from its first
    /// byte). `what` names the file for errors.
    pub fn parse_prefix(bytes: &[u8], what: &str) -> Result<Envelope> {
        let kind = *bytes.first().ok_or_else(|| Error::corrupt(what))?;
        let len = Envelope::len_of_kind(kind)
            .ok_or_else(|| Error::format(what, format!("unknown key wrap kind {kind}")))?;
        if bytes.len() < len {
            return Err(Error::corrupt(what));
        }
        let mut env = Envelope {
            len: len as u8,
            bytes: [0u8; ENVELOPE_MAX_LEN],
        };
        env.bytes[..len].copy_from_slice(&bytes[..len]);
        Ok(env)
    }

    /// The envelope as stored.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// Its length in bytes.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True for a kind-2 envelope (written with a put-only key).
    pub fn is_public(&self) -> bool {
        self.bytes[0] == WRAP_PUBLIC
    }

    /// The key epoch the file key was wrapped under.
    pub fn epoch(&self) -> u32 {
        u32::from_le_bytes([self.bytes[1], self.bytes[2], self.bytes[3], self.bytes[4]])
    }

    /// The format version a file holding this envelope is written as: 2 for a kind-2
    /// envelope or a non-zero epoch, else 1.
    pub fn version(&self) -> u8 {
        if self.is_public() || self.epoch() != 0 {
            VERSION_PUBLIC
        } else {
            VERSION_SYMMETRIC
        }
    }

    /// Length of the header of a sealed file with this envelope: magic, version, envelope.
    pub fn header_len(&self) -> usize {
        5 + self.len()
    }

    #[cfg(test)]
    pub(crate) fn filled(byte: u8) -> Envelope {
        Envelope {
            len: ENVELOPE_LEN as u8,
            bytes: [byte; ENVELOPE_MAX_LEN],
        }
    }
}

/// A file key together with its envelope.
pub struct FileKey {
    /// The random key that seals the file's body (or a pack's blobs).
    pub key: Key,
    /// The envelope as stored.
    pub envelope: Envelope,
}

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileKey([redacted])")
    }
}

impl FileKey {
    /// A new random file key for files of kind `magic`, wrapped as `wrap` says.
    ///
    /// # Panics
    /// When asked to seal a config, index or lock to a public key: those are always
    /// sealed with the meta key.
    pub fn new(magic: Magic, wrap: Wrap<'_>) -> FileKey {
        let key = Key::random();
        let mut env = Envelope {
            len: 0,
            bytes: [0u8; ENVELOPE_MAX_LEN],
        };
        match wrap {
            Wrap::Key(wrap_key, epoch) => {
                env.len = ENVELOPE_LEN as u8;
                env.bytes[0] = WRAP_SYMMETRIC;
                env.bytes[1..5].copy_from_slice(&epoch.to_le_bytes());
                let ad = envelope_ad(magic, VERSION_SYMMETRIC, &env.bytes[..5]);
                let sealed = seal(wrap_key, &ad, key.as_bytes());
                env.bytes[5..ENVELOPE_LEN].copy_from_slice(&sealed);
            }
            Wrap::Public(public, epoch) => {
                assert!(
                    magic.takes_public(),
                    "{magic:?} files are never sealed to a public key"
                );
                env.len = PUBLIC_ENVELOPE_LEN as u8;
                env.bytes[0] = WRAP_PUBLIC;
                env.bytes[1..5].copy_from_slice(&epoch.to_le_bytes());
                let mut plain = zeroize::Zeroizing::new([0u8; 32 + BOUND_LEN]);
                plain[..32].copy_from_slice(key.as_bytes());
                plain[32..].copy_from_slice(&bound_fields(magic, &env.bytes[..5]));
                let sealed = seal_to(public, &plain[..]);
                env.bytes[5..PUBLIC_ENVELOPE_LEN].copy_from_slice(&sealed);
            }
        }
        FileKey { key, envelope: env }
    }

    /// Unwraps an envelope with the wrap key of its epoch (for a kind-2 envelope, with
    /// the secret derived from it). `what` names the file for the error message.
    pub fn open<K: EpochKeys + ?Sized>(
        magic: Magic,
        keys: &K,
        envelope: &Envelope,
        what: &str,
    ) -> Result<FileKey> {
        let env = envelope.as_bytes();
        let epoch = envelope.epoch();
        let wrap_key = keys.for_epoch(epoch).ok_or_else(|| {
            Error::format(
                what,
                format!(
                    "it is sealed under key epoch {epoch}, which this key does not hold \
                     (the master key was rotated after this key was made)"
                ),
            )
        })?;
        let plain = match env[0] {
            WRAP_SYMMETRIC => {
                let ad = envelope_ad(magic, VERSION_SYMMETRIC, &env[..5]);
                let plain = zeroize::Zeroizing::new(
                    open(wrap_key, &ad, &env[5..]).map_err(|_| Error::corrupt(what))?,
                );
                if plain.len() != 32 {
                    return Err(Error::corrupt(what));
                }
                plain
            }
            WRAP_PUBLIC if magic.takes_public() => {
                let plain = open_sealed_box(&data_secret(wrap_key), &env[5..])
                    .map_err(|_| Error::corrupt(what))?;
                if plain.len() != 32 + BOUND_LEN || plain[32..] != bound_fields(magic, &env[..5]) {
                    return Err(Error::corrupt(what));
                }
                plain
            }
            kind => {
                return Err(Error::format(
                    what,
                    format!("key wrap kind {kind} is not allowed here"),
                ))
            }
        };
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&plain[..32]);
        Ok(FileKey {
            key: Key::from_bytes(bytes),
            envelope: *envelope,
        })
    }

    /// The format version of a file sealed with this key.
    pub fn version(&self) -> u8 {
        self.envelope.version()
    }
}

/// What a kind-2 box binds after the file key: magic, version, kind and epoch.
fn bound_fields(magic: Magic, kind_and_epoch: &[u8]) -> [u8; BOUND_LEN] {
    let mut out = [0u8; BOUND_LEN];
    out[..4].copy_from_slice(magic.bytes());
    out[4] = VERSION_PUBLIC;
    out[5..].copy_from_slice(kind_and_epoch);
    out
}

/// The envelope's associated data: `magic | version | "envelope" | wrap kind | epoch`,
/// so neither the kind nor the epoch can be changed without detection.
fn envelope_ad(magic: Magic, version: u8, kind_and_epoch: &[u8]) -> Vec<u8> {
    let mut ad = magic.ad(version, b"envelope");
    ad.extend_from_slice(kind_and_epoch);
    ad
}

/// Writes the header of a sealed file (magic, version, envelope) into `out`.
pub fn write_header(magic: Magic, version: u8, file_key: &FileKey, out: &mut Vec<u8>) {
    out.extend_from_slice(magic.bytes());
    out.push(version);
    out.extend_from_slice(file_key.envelope.as_bytes());
}

/// Checks magic and version of a sealed file and returns its version and envelope.
pub fn read_header(magic: Magic, bytes: &[u8], what: &str) -> Result<(u8, Envelope)> {
    if bytes.len() < 5 || &bytes[..4] != magic.bytes() {
        return Err(Error::corrupt(what));
    }
    let version = bytes[4];
    let padded_here = matches!(magic, Magic::Pack | Magic::Index);
    if version == 0 || version > FORMAT_VERSION || (version == PADDED_VERSION && !padded_here) {
        return Err(Error::UnsupportedVersion {
            found: version as u32,
            supported: FORMAT_VERSION as u32,
        });
    }
    let envelope = Envelope::parse_prefix(&bytes[5..], what)?;
    // A kind-2 envelope or a non-zero epoch only in a version-2 file: a version-1
    // reader must refuse it.
    if envelope.version() > version {
        return Err(Error::corrupt(what));
    }
    Ok((version, envelope))
}

/// Seals `plaintext` as a whole file of kind `magic`, with a fresh file key wrapped as
/// `wrap` says.
pub fn seal_file(magic: Magic, wrap: Wrap<'_>, plaintext: &[u8]) -> Vec<u8> {
    seal_file_at(magic, wrap, VERSION_SYMMETRIC, plaintext)
}

/// Like [`seal_file`], but written as format version `version` at least (an index file
/// that lists packs with kind-2 envelopes is a version-2 file).
pub fn seal_file_at(magic: Magic, wrap: Wrap<'_>, version: u8, plaintext: &[u8]) -> Vec<u8> {
    let fk = FileKey::new(magic, wrap);
    let version = version.max(fk.version());
    let mut out = Vec::with_capacity(fk.envelope.header_len() + plaintext.len() + SEAL_OVERHEAD);
    write_header(magic, version, &fk, &mut out);
    seal_into(&fk.key, &magic.ad(version, b"body"), plaintext, &mut out);
    out
}

/// Opens a whole sealed file. `what` names it in errors ("snapshot 1a2b3c4d").
pub fn open_file<K: EpochKeys + ?Sized>(
    magic: Magic,
    keys: &K,
    bytes: &[u8],
    what: &str,
) -> Result<Vec<u8>> {
    let (version, envelope) = read_header(magic, bytes, what)?;
    let fk = FileKey::open(magic, keys, &envelope, what)?;
    let mut body = bytes[envelope.header_len()..].to_vec();
    open_in_place(&fk.key, &magic.ad(version, b"body"), &mut body)
        .map_err(|_| Error::corrupt(what))?;
    Ok(body)
}

/// The associated data of the sealed header of a pack of format `version`:
/// `"CRNp" | 1 | "header"` for versions 1 and 2 (whatever the envelope), `"CRNp" | 3 |
/// "header"` for padded packs, so that the version of a padded pack cannot be changed
/// without breaking its header.
pub fn pack_header_ad(version: u8) -> Vec<u8> {
    let v = if version >= PADDED_VERSION {
        PADDED_VERSION
    } else {
        VERSION_SYMMETRIC
    };
    Magic::Pack.ad(v, b"header")
}

/// The associated data of the pad of a padded (version 3) pack: `"CRNp" | 3 |
/// "padding"`.
pub fn pack_pad_ad() -> Vec<u8> {
    Magic::Pack.ad(PADDED_VERSION, b"padding")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_flip_and_cut_fails(file: &[u8], magic: Magic, k: &Key) {
        for i in 0..file.len() {
            let mut bad = file.to_vec();
            bad[i] ^= 0x10;
            assert!(open_file(magic, k, &bad, "x").is_err(), "byte {i}");
        }
        for n in 0..file.len() {
            assert!(open_file(magic, k, &file[..n], "x").is_err());
        }
    }

    #[test]
    fn sealed_file_round_trip_and_every_bit_flip_is_detected() {
        let k = Key::random();
        let file = seal_file(Magic::Snapshot, Wrap::Key(&k, 0), b"{\"hello\":1}");
        assert_eq!(file[4], 1, "files with kind-1 envelopes stay version 1");
        assert_eq!(
            open_file(Magic::Snapshot, &k, &file, "x").unwrap(),
            b"{\"hello\":1}"
        );
        every_flip_and_cut_fails(&file, Magic::Snapshot, &k);
        assert!(open_file(Magic::Index, &k, &file, "x").is_err());
        assert!(open_file(Magic::Snapshot, &Key::random(), &file, "x").is_err());
    }

    #[test]
    fn a_file_sealed_to_the_public_key_opens_with_the_data_key_only() {
        let data_key = Key::random();
        let public = data_public(&data_key);
        let file = seal_file(Magic::Snapshot, Wrap::Public(&public, 0), b"snapshot");
        assert_eq!(file[4], 2, "a kind-2 envelope makes a version-2 file");
        assert_eq!(file[5], 2);
        assert_eq!(
            file.len(),
            5 + PUBLIC_ENVELOPE_LEN + 8 + SEAL_OVERHEAD,
            "envelope length"
        );
        assert_eq!(
            open_file(Magic::Snapshot, &data_key, &file, "x").unwrap(),
            b"snapshot"
        );
        every_flip_and_cut_fails(&file, Magic::Snapshot, &data_key);
        // Not with another key, not as another kind of file.
        assert!(open_file(Magic::Snapshot, &Key::random(), &file, "x").is_err());
        let mut as_pack = file.clone();
        as_pack[..4].copy_from_slice(Magic::Pack.bytes());
        assert!(open_file(Magic::Pack, &data_key, &as_pack, "x").is_err());
        // A version-1 header with a kind-2 envelope is refused before any key is tried.
        let mut v1 = file.clone();
        v1[4] = 1;
        assert!(read_header(Magic::Snapshot, &v1, "x").is_err());
        // A newer version is refused as such.
        let mut v4 = file.clone();
        v4[4] = FORMAT_VERSION + 1;
        assert!(matches!(
            open_file(Magic::Snapshot, &data_key, &v4, "x"),
            Err(Error::UnsupportedVersion { found: 4, .. })
        ));
    }

    #[test]
    fn config_and_lock_refuse_kind_2_envelopes() {
        let data_key = Key::random();
        let public = data_public(&data_key);
        let mut file = seal_file(Magic::Snapshot, Wrap::Public(&public, 0), b"x");
        for magic in [Magic::Config, Magic::Lock] {
            file[..4].copy_from_slice(magic.bytes());
            let err = open_file(magic, &data_key, &file, "x").unwrap_err();
            assert!(err.to_string().contains("kind 2 is not allowed"), "{err}");
        }
    }

    #[test]
    fn index_files_may_be_raised_to_version_2() {
        let k = Key::random();
        let file = seal_file_at(Magic::Index, Wrap::Key(&k, 0), 2, b"index");
        assert_eq!(file[4], 2);
        assert_eq!(open_file(Magic::Index, &k, &file, "x").unwrap(), b"index");
        // The version is bound: lowering it breaks authentication.
        let mut lowered = file.clone();
        lowered[4] = 1;
        assert!(open_file(Magic::Index, &k, &lowered, "x").is_err());
    }

    #[test]
    fn envelope_lengths_follow_the_kind_byte() {
        let k = Key::random();
        let fk = FileKey::new(Magic::Pack, Wrap::Key(&k, 0));
        assert_eq!(fk.envelope.len(), ENVELOPE_LEN);
        let mut bytes = fk.envelope.as_bytes().to_vec();
        bytes.extend_from_slice(b"trailing");
        assert_eq!(Envelope::parse_prefix(&bytes, "x").unwrap(), fk.envelope);
        let public = data_public(&k);
        let fk2 = FileKey::new(Magic::Pack, Wrap::Public(&public, 0));
        assert_eq!(fk2.envelope.len(), PUBLIC_ENVELOPE_LEN);
        let opened = FileKey::open(Magic::Pack, &k, &fk2.envelope, "x").unwrap();
        assert_eq!(opened.key, fk2.key);
        assert!(Envelope::parse_prefix(&fk2.envelope.as_bytes()[..94], "x").is_err());
        assert!(Envelope::parse_prefix(&[3u8; 100], "x").is_err());
        assert!(Envelope::parse_prefix(&[], "x").is_err());
    }

    /// Epoch-keyed wrap keys for tests: `keys[i]` is the key of epoch `i`.
    struct Ring(Vec<Key>);

    impl EpochKeys for Ring {
        fn for_epoch(&self, epoch: u32) -> Option<&Key> {
            self.0.get(epoch as usize)
        }
    }

    #[test]
    fn envelopes_of_later_epochs_need_that_epochs_key() {
        let ring = Ring(vec![Key::random(), Key::random()]);
        let old = seal_file(Magic::Index, Wrap::Key(&ring.0[0], 0), b"old");
        let new = seal_file(Magic::Index, Wrap::Key(&ring.0[1], 1), b"new");
        assert_eq!(old[4], 1);
        assert_eq!(new[4], 2, "a non-zero epoch makes a version-2 file");
        assert_eq!(new[6..10], 1u32.to_le_bytes());
        assert_eq!(open_file(Magic::Index, &ring, &old, "x").unwrap(), b"old");
        assert_eq!(open_file(Magic::Index, &ring, &new, "x").unwrap(), b"new");
        every_flip_and_cut_fails(&new, Magic::Index, &ring.0[1]);
        // The old key alone opens the old file, not the new one, and says why.
        let err = open_file(Magic::Index, &ring.0[0], &new, "index x").unwrap_err();
        assert!(err.to_string().contains("key epoch 1"), "{err}");
        // Moving a file to another epoch breaks it.
        let mut moved = new.clone();
        moved[6] = 0;
        moved[4] = 1;
        assert!(open_file(Magic::Index, &ring, &moved, "x").is_err());
        // Kind 2 carries its epoch inside the box too.
        let public = data_public(&ring.0[1]);
        let snap = seal_file(Magic::Snapshot, Wrap::Public(&public, 1), b"s");
        assert_eq!(open_file(Magic::Snapshot, &ring, &snap, "x").unwrap(), b"s");
        assert!(open_file(Magic::Snapshot, &ring.0[1], &snap, "x").is_err());
    }
}
