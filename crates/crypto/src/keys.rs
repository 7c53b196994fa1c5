//! Secret keys, passwords, keyed hashing and the OS random number generator.

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A 32-byte secret key.
///
/// Zeroized on drop; its `Debug` output is `Key([redacted])`; equality is constant-time.
/// Serializes as a lowercase hex string of 64 characters.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key([u8; 32]);

impl Key {
    /// Length of a key in bytes.
    pub const LEN: usize = 32;

    /// A fresh key from the operating system's CSPRNG.
    ///
    /// # Panics
    /// If the operating system's random number generator is unavailable.
    pub fn random() -> Key {
        let mut key = Key([0u8; 32]);
        random_bytes(&mut key.0);
        key
    }

    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A subkey for one purpose: `blake3::derive_key(context, self)`.
    ///
    /// `context` should be a hard-coded, globally unique, application-specific string
    /// such as `"cairn 2025 blob id key"`; different contexts give independent keys.
    pub fn derive(&self, context: &'static str) -> Key {
        Key(blake3::derive_key(context, &self.0))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key([redacted])")
    }
}

impl PartialEq for Key {
    /// Constant-time comparison.
    fn eq(&self, other: &Key) -> bool {
        let diff = self
            .0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

impl Eq for Key {}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut hex = zeroize::Zeroizing::new([0u8; 64]);
        for (i, byte) in self.0.iter().enumerate() {
            hex[2 * i] = HEX_DIGITS[usize::from(byte >> 4)];
            hex[2 * i + 1] = HEX_DIGITS[usize::from(byte & 0x0f)];
        }
        // Only ASCII hex digits were written, so this cannot fail.
        let s = std::str::from_utf8(&hex[..]).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(s)
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

struct KeyVisitor;

impl de::Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key as a string of 64 hex digits")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        let bytes = v.as_bytes();
        if bytes.len() != 64 {
            // Do not echo the (possibly secret) input in the error.
            return Err(E::invalid_length(bytes.len(), &self));
        }
        let mut key = Key([0u8; 32]);
        for (out, pair) in key.0.iter_mut().zip(bytes.chunks_exact(2)) {
            match (hex_value(pair[0]), hex_value(pair[1])) {
                (Some(hi), Some(lo)) => *out = (hi << 4) | lo,
                _ => {
                    return Err(E::invalid_value(
                        de::Unexpected::Other("a string with non-hex characters"),
                        &self,
                    ))
                }
            }
        }
        Ok(key)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// A user's password, as bytes (not necessarily UTF-8).
///
/// Zeroized on drop; its `Debug` output is `Password([redacted])`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Password(Vec<u8>);

impl Password {
    /// Wraps password bytes (taking ownership so that they are wiped on drop).
    pub fn new(bytes: Vec<u8>) -> Password {
        Password(bytes)
    }

    /// The password bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether the password is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Password {
    fn from(s: String) -> Password {
        Password(s.into_bytes())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// Keyed BLAKE3 of `data` (used for blob ids).
pub fn keyed_hash(key: &Key, data: &[u8]) -> [u8; 32] {
    *blake3::keyed_hash(&key.0, data).as_bytes()
}

/// Fills `buf` from the operating system's CSPRNG.
///
/// # Panics
/// If the operating system's random number generator is unavailable: there is no
/// safe way to continue without one.
pub fn random_bytes(buf: &mut [u8]) {
    if let Err(err) = getrandom::fill(buf) {
        panic!("the operating system's random number generator is unavailable: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn random_keys_differ() {
        assert_ne!(Key::random(), Key::random());
    }

    #[test]
    fn from_bytes_round_trip_and_eq() {
        let bytes = [7u8; 32];
        let key = Key::from_bytes(bytes);
        assert_eq!(key.as_bytes(), &bytes);
        assert_eq!(key, Key::from_bytes(bytes));
        let mut other = bytes;
        other[31] ^= 1;
        assert_ne!(key, Key::from_bytes(other));
    }

    #[test]
    fn derive_is_deterministic_and_separates_contexts() {
        let key = Key::from_bytes([1u8; 32]);
        let a = key.derive("cairn test context a");
        assert_eq!(a, key.derive("cairn test context a"));
        assert_ne!(a, key.derive("cairn test context b"));
        assert_ne!(&a, &key);
        assert_eq!(
            a.as_bytes(),
            &blake3::derive_key("cairn test context a", &[1u8; 32])
        );
    }

    #[test]
    fn key_debug_is_redacted() {
        let key = Key::from_bytes([0xab; 32]);
        let debug = format!("{key:?}");
        assert_eq!(debug, "Key([redacted])");
        assert!(!debug.contains(&hex(key.as_bytes())));
        assert!(!format!("{:?}", Some(&key)).contains("abab"));
    }

    #[test]
    fn password_debug_is_redacted() {
        let password = Password::from(String::from("correct horse battery staple"));
        let debug = format!("{password:?}");
        assert_eq!(debug, "Password([redacted])");
        assert!(!debug.contains("horse"));
        assert!(!debug.contains(&hex(password.as_bytes())));
        assert!(!password.is_empty());
        assert!(Password::new(Vec::new()).is_empty());
        assert_eq!(Password::new(b"pw".to_vec()).as_bytes(), b"pw");
    }

    #[test]
    fn key_serde_round_trip() {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(0xf0);
        }
        let key = Key::from_bytes(bytes);
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, format!("\"{}\"", hex(&bytes)));
        let back: Key = serde_json::from_str(&json).unwrap();
        assert_eq!(back, key);
        // Uppercase hex is accepted on input too.
        let upper: Key = serde_json::from_str(&json.to_uppercase()).unwrap();
        assert_eq!(upper, key);
        // Through an owned String (visit_string) as well.
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::from_value::<Key>(value).unwrap(), key);
    }

    #[test]
    fn key_serde_rejects_bad_input() {
        let good = hex(&[0x5a; 32]);
        let bad = [
            String::new(),
            good[..62].to_string(),
            format!("{good}00"),
            format!("{}g", &good[..63]),
            format!("{} ", &good[..63]),
            format!("é{}", &good[..62]), // 64 bytes, not hex
        ];
        for input in bad {
            let json = serde_json::to_string(&input).unwrap();
            assert!(serde_json::from_str::<Key>(&json).is_err(), "{input:?}");
        }
        assert!(serde_json::from_str::<Key>("42").is_err());
        assert!(serde_json::from_str::<Key>("[1,2,3]").is_err());
        // Errors must not echo the input.
        let err = serde_json::from_str::<Key>(&format!("\"{}zz\"", &good[..62]))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("5a5a"), "{err}");
    }

    #[test]
    fn keyed_hash_depends_on_key_and_data() {
        let k1 = Key::from_bytes([1; 32]);
        let k2 = Key::from_bytes([2; 32]);
        assert_eq!(keyed_hash(&k1, b"data"), keyed_hash(&k1, b"data"));
        assert_ne!(keyed_hash(&k1, b"data"), keyed_hash(&k2, b"data"));
        assert_ne!(keyed_hash(&k1, b"data"), keyed_hash(&k1, b"datb"));
        assert_eq!(
            keyed_hash(&k1, b"data"),
            *blake3::keyed_hash(&[1; 32], b"data").as_bytes()
        );
    }

    #[test]
    fn random_bytes_fills() {
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        random_bytes(&mut a);
        random_bytes(&mut b);
        assert_ne!(a, b);
        random_bytes(&mut []);
    }
}
