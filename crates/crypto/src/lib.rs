//! Cryptographic primitives of cairn, and nothing else: no I/O, no formats.
//!
//! Main types:
//! - [`Key`]: a 32-byte secret key. Zeroized on drop, prints as `[redacted]`.
//! - [`Password`]: a user's password bytes, zeroized on drop, prints as `[redacted]`.
//! - [`KdfParams`] and [`derive_key`]: Argon2id from a password and salt to a [`Key`],
//!   with [`KdfParams::FLOOR`] refused below (a tampered key file cannot downgrade the KDF).
//! - [`seal`] / [`open`]: XChaCha20-Poly1305 with a random 24-byte nonce and associated
//!   data. Sealed bytes are `nonce (24) || ciphertext || tag (16)`; see [`SEAL_OVERHEAD`].
//! - [`keyed_hash`]: keyed BLAKE3, used for blob ids so that ids do not reveal content
//!   to someone who does not hold the repository's id key.
//! - [`seal_to`] / [`open_sealed_box`]: anonymous sealed boxes to an X25519 [`PublicKey`]
//!   whose secret is derived from a [`Key`] (put-only keys seal file keys this way).
//! - [`random_bytes`] / [`Key::random`]: the operating system's CSPRNG.
//!
//! Every failure to authenticate is the one opaque [`CryptoError::Tampered`]: callers
//! cannot (and must not) tell a wrong key from a flipped bit from a truncated input.
//!
//! What this crate is not: it does not know what a repository, key file or pack is;
//! `cairn-core` builds those formats from these primitives.

mod error;
mod kdf;
mod keys;
mod seal;
mod sealbox;

pub use error::CryptoError;
pub use kdf::{derive_key, KdfParams, MIN_SALT_LEN};
pub use keys::{keyed_hash, random_bytes, Key, Password};
pub use seal::{
    open, open_in_place, open_in_slice, seal, seal_appended, seal_into, seal_parts_into, NONCE_LEN,
    SEAL_OVERHEAD, TAG_LEN,
};
pub use sealbox::{open_sealed_box, seal_to, PublicKey, SEALBOX_OVERHEAD};
