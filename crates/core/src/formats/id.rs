//! Identifiers: 32-byte hashes shown as lowercase hex.

use std::fmt;
use std::str::FromStr;

/// A 32-byte identifier: a blob id (keyed BLAKE3 of the blob's plaintext) or a file
/// name (plain BLAKE3 of the stored bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id(pub [u8; 32]);

impl Id {
    /// Length in bytes.
    pub const LEN: usize = 32;

    /// The BLAKE3 hash of `data`: how repository files are named.
    pub fn of_file(data: &[u8]) -> Id {
        Id(*blake3::hash(data).as_bytes())
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 8 hex characters, for humans.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Option<Id> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Id(out))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.short())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for Id {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Id::from_hex(s).ok_or_else(|| format!("not a 64-character hex id: {s:?}"))
    }
}

impl serde::Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> serde::Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Id::from_hex(&s).ok_or_else(|| D::Error::custom("invalid hex id"))
        } else {
            let b: serde_bytes_compat::Bytes32 = serde::Deserialize::deserialize(d)?;
            Ok(Id(b.0))
        }
    }
}

/// Deserializing 32 raw bytes from binary formats without another dependency.
mod serde_bytes_compat {
    pub struct Bytes32(pub [u8; 32]);
    impl<'de> serde::Deserialize<'de> for Bytes32 {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Bytes32;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("32 bytes")
                }
                fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes32, E> {
                    let a: [u8; 32] = v
                        .try_into()
                        .map_err(|_| E::invalid_length(v.len(), &self))?;
                    Ok(Bytes32(a))
                }
            }
            d.deserialize_bytes(V)
        }
    }
}

/// What a blob holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlobKind {
    /// A chunk of file or stream contents.
    Data,
    /// A serialized directory ([`crate::Tree`]).
    Tree,
}

impl BlobKind {
    /// The byte stored in pack headers and index files, and bound into the AEAD.
    pub fn to_byte(self) -> u8 {
        match self {
            BlobKind::Data => 0,
            BlobKind::Tree => 1,
        }
    }

    /// Parses the stored byte.
    pub fn from_byte(b: u8) -> Option<BlobKind> {
        match b {
            0 => Some(BlobKind::Data),
            1 => Some(BlobKind::Tree),
            _ => None,
        }
    }
}

/// The first 8 characters of a file name (the hex of its id), for messages.
pub(crate) fn short(name: &str) -> String {
    name.chars().take(8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_postcard_round_trip() {
        let id = Id::of_file(b"hello");
        assert_eq!(Id::from_hex(&id.to_hex()), Some(id));
        assert_eq!(id.short().len(), 8);
        let bytes = postcard::to_allocvec(&id).unwrap();
        assert_eq!(
            bytes.len(),
            33,
            "postcard stores a length byte and 32 bytes"
        );
        let back: Id = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", id.to_hex()));
        assert!(Id::from_hex("zz").is_none());
    }
}
