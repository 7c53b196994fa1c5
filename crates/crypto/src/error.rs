//! The one error type of this crate.

/// Everything that can go wrong in `cairn-crypto`.
///
/// Authentication failures are deliberately collapsed into the single opaque
/// [`CryptoError::Tampered`]: a wrong key, a wrong associated data, a flipped bit and a
/// truncated input are indistinguishable to the caller.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Sealed data failed to authenticate (or was too short to be sealed data at all).
    #[error("data is corrupt or has been tampered with")]
    Tampered,
    /// Argon2id parameters below [`crate::KdfParams::FLOOR`] in some field.
    #[error("key derivation parameters are too weak: {0}")]
    WeakKdf(String),
    /// Argon2id parameters so large that honouring them would be a denial of service.
    #[error("key derivation parameters are out of range: {0}")]
    KdfOutOfRange(String),
    /// Any other key derivation failure (short salt, out of memory, ...).
    #[error("key derivation failed: {0}")]
    Kdf(String),
}
