//! Sealing to a public key: libsodium's anonymous sealed box (X25519, XSalsa20-Poly1305),
//! from the `crypto_box` crate.
//!
//! Whoever holds only the public key can seal; only the holder of the secret can open,
//! and the sender cannot open what it sealed. cairn's put-only keys seal each file key
//! this way (see `cairn-core`'s `sealed` module).
//!
//! The secret is not stored anywhere: it is derived from a 32-byte [`Key`] (the
//! repository's data key) with [`Key::derive`], so every holder of that key holds it.

use crate::{CryptoError, Key};
use crypto_box::aead::OsRng;
use crypto_box::{PublicKey as BoxPublic, SecretKey};

/// How much longer a sealed box is than its plaintext: the ephemeral public key (32) and
/// the Poly1305 tag (16).
pub const SEALBOX_OVERHEAD: usize = crypto_box::SEALBYTES;

/// An X25519 public key. Not secret: `Debug` shows it in hex.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(pub [u8; 32]);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

fn secret_of(secret: &Key) -> SecretKey {
    SecretKey::from_bytes(*secret.as_bytes())
}

impl PublicKey {
    /// The public key whose secret is `secret`'s bytes (X25519 clamps them).
    pub fn of(secret: &Key) -> PublicKey {
        PublicKey(*secret_of(secret).public_key().as_bytes())
    }
}

/// Seals `plaintext` to `public` with a fresh ephemeral key pair. The output is
/// `ephemeral public key (32) | ciphertext | tag (16)`, as libsodium's `crypto_box_seal`.
///
/// # Panics
/// If the operating system's random number generator is unavailable.
pub fn seal_to(public: &PublicKey, plaintext: &[u8]) -> Vec<u8> {
    BoxPublic::from_bytes(public.0)
        .seal(&mut OsRng, plaintext)
        .expect("sealing to a public key cannot fail for a short plaintext")
}

/// Opens a box sealed to the public key of `secret`. Any failure is
/// [`CryptoError::Tampered`].
pub fn open_sealed_box(
    secret: &Key,
    sealed: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
    secret_of(secret)
        .unseal(sealed)
        .map(zeroize::Zeroizing::new)
        .map_err(|_| CryptoError::Tampered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_only_the_secret_opens() {
        let secret = Key::random();
        let public = PublicKey::of(&secret);
        assert_eq!(public, PublicKey::of(&secret));
        let sealed = seal_to(&public, b"file key");
        assert_eq!(sealed.len(), 8 + SEALBOX_OVERHEAD);
        assert_eq!(&open_sealed_box(&secret, &sealed).unwrap()[..], b"file key");
        // Two seals of the same plaintext differ (fresh ephemeral key).
        assert_ne!(sealed, seal_to(&public, b"file key"));
        assert!(open_sealed_box(&Key::random(), &sealed).is_err());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(open_sealed_box(&secret, &bad).is_err(), "byte {i}");
        }
        for n in 0..sealed.len() {
            assert!(open_sealed_box(&secret, &sealed[..n]).is_err());
        }
    }

    #[test]
    fn debug_shows_the_public_key_only() {
        let public = PublicKey([0xab; 32]);
        assert_eq!(
            format!("{public:?}"),
            format!("PublicKey({})", "ab".repeat(32))
        );
    }
}
