//! The master key and the key files that wrap it.
//!
//! A repository has one [`MasterKey`] (a set of random 32-byte keys, each with one
//! purpose) and any number of key files. A key file is JSON, the only file of a
//! repository that is readable without a key: it stores Argon2id parameters, a salt and
//! the master key sealed with the key derived from a password. Several key files wrap
//! the same master key, so passwords can be added and removed without re-encrypting
//! anything.

use crate::error::{Error, Result};
use crate::id::Id;
use cairn_crypto::{derive_key, open, random_bytes, seal, CryptoError, KdfParams, Key, Password};
use serde::{Deserialize, Serialize};

/// The secret keys of a repository. Serialized as JSON inside key files.
#[derive(Clone, Serialize, Deserialize)]
pub struct MasterKey {
    /// Keys the BLAKE3 hash that names blobs: ids reveal nothing without it.
    pub id_key: Key,
    /// Seeds the chunker's gear table, so boundaries differ between repositories.
    pub chunker_seed: Key,
    /// Wraps the file keys of the config and index files.
    pub meta_key: Key,
    /// Wraps the file keys of packs and snapshots.
    pub data_key: Key,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// A new random master key.
    pub fn random() -> MasterKey {
        MasterKey {
            id_key: Key::random(),
            chunker_seed: Key::random(),
            meta_key: Key::random(),
            data_key: Key::random(),
        }
    }
}

/// A key file as stored (JSON).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// Key file format version (1).
    pub version: u32,
    /// When the key was created (RFC 3339).
    pub created: String,
    /// Host that created it.
    #[serde(default)]
    pub hostname: String,
    /// User that created it.
    #[serde(default)]
    pub username: String,
    /// Always "argon2id".
    pub kdf: String,
    /// Argon2id parameters.
    pub params: KdfParams,
    /// Salt, 32 bytes, hex.
    pub salt: String,
    /// The master key JSON, sealed with the derived key, hex.
    pub data: String,
}

const KEY_AD: &[u8] = b"cairn key file v1";
const KEY_FILE_VERSION: u32 = 1;

impl KeyFile {
    /// Wraps `master` with `password`.
    pub fn create(
        master: &MasterKey,
        password: &Password,
        params: KdfParams,
        hostname: &str,
        username: &str,
        created: String,
    ) -> Result<KeyFile> {
        let mut salt = [0u8; 32];
        random_bytes(&mut salt);
        let wrapping = derive_key(password, &salt, &params).map_err(|e| Error::WeakKey {
            key: "new".into(),
            detail: e.to_string(),
        })?;
        let json = zeroizing_json(master)?;
        let sealed = seal(&wrapping, KEY_AD, &json);
        Ok(KeyFile {
            version: KEY_FILE_VERSION,
            created,
            hostname: hostname.into(),
            username: username.into(),
            kdf: "argon2id".into(),
            params,
            salt: hex::encode(salt),
            data: hex::encode(sealed),
        })
    }

    /// Parses a stored key file. `name` is its file name, for messages.
    pub fn parse(bytes: &[u8], name: &str) -> Result<KeyFile> {
        let kf: KeyFile = serde_json::from_slice(bytes)
            .map_err(|e| Error::format(format!("key file {}", short(name)), e.to_string()))?;
        if kf.version != KEY_FILE_VERSION {
            return Err(Error::UnsupportedVersion {
                found: kf.version,
                supported: KEY_FILE_VERSION,
            });
        }
        if kf.kdf != "argon2id" {
            return Err(Error::format(
                format!("key file {}", short(name)),
                format!("unknown key derivation {:?}", kf.kdf),
            ));
        }
        Ok(kf)
    }

    /// Serializes for storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("key file serializes")
    }

    /// Unwraps the master key with `password`. `Ok(None)` when the password does not
    /// open this key; an error when the key file itself is unacceptable (parameters
    /// below the floor: a downgraded key file is refused before any attempt).
    pub fn unwrap(&self, password: &Password, name: &str) -> Result<Option<MasterKey>> {
        let what = || format!("key file {}", short(name));
        self.params.check().map_err(|e| Error::WeakKey {
            key: short(name),
            detail: e.to_string(),
        })?;
        let salt = hex::decode(&self.salt).map_err(|e| Error::format(what(), e.to_string()))?;
        if salt.len() != 32 {
            return Err(Error::format(what(), "salt must be 32 bytes"));
        }
        let sealed = hex::decode(&self.data).map_err(|e| Error::format(what(), e.to_string()))?;
        let wrapping = match derive_key(password, &salt, &self.params) {
            Ok(k) => k,
            Err(CryptoError::WeakKdf(d)) | Err(CryptoError::KdfOutOfRange(d)) => {
                return Err(Error::WeakKey {
                    key: short(name),
                    detail: d,
                })
            }
            Err(e) => return Err(Error::format(what(), e.to_string())),
        };
        let json = match open(&wrapping, KEY_AD, &sealed) {
            Ok(j) => zeroize::Zeroizing::new(j),
            Err(_) => return Ok(None),
        };
        let master: MasterKey = serde_json::from_slice(&json)
            .map_err(|e| Error::format(what(), format!("master key: {e}")))?;
        Ok(Some(master))
    }

    /// The key file's id (its file name).
    pub fn id(bytes: &[u8]) -> Id {
        Id::of_file(bytes)
    }
}

fn short(name: &str) -> String {
    name.chars().take(8).collect()
}

fn zeroizing_json(master: &MasterKey) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    serde_json::to_vec(master)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| Error::format("master key", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_unwrap_wrong_password_and_downgrade() {
        let m = MasterKey::random();
        let pw = Password::new(b"correct horse".to_vec());
        let kf = KeyFile::create(&m, &pw, KdfParams::DEFAULT, "h", "u", "t".into()).unwrap();
        let bytes = kf.to_bytes();
        let parsed = KeyFile::parse(&bytes, "abc").unwrap();
        let got = parsed.unwrap(&pw, "abc").unwrap().unwrap();
        assert_eq!(got.id_key, m.id_key);
        assert_eq!(got.data_key, m.data_key);
        assert!(parsed
            .unwrap(&Password::new(b"wrong".to_vec()), "abc")
            .unwrap()
            .is_none());
        let mut weak = parsed.clone();
        weak.params.memory_kib = 1024;
        assert!(matches!(
            weak.unwrap(&pw, "abc"),
            Err(Error::WeakKey { .. })
        ));
        let dbg = format!("{m:?}");
        assert!(!dbg.contains(&hex::encode(m.id_key.as_bytes())));
    }
}
