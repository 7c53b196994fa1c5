//! The master key and the key files that wrap it.
//!
//! A repository has one [`MasterKey`] (a set of random 32-byte keys, each with one
//! purpose) and any number of key files. A key file is JSON, the only file of a
//! repository that is readable without a key: it stores Argon2id parameters, a salt and
//! the master key sealed with the key derived from a password. Several key files wrap
//! the same master key, so passwords can be added and removed without re-encrypting
//! anything.

use crate::error::{Error, Result};
use crate::formats::id::{short, Id};
use crate::formats::sealed::{EpochKeys, Wrap};
use cairn_crypto::{
    derive_key, open, random_bytes, seal, CryptoError, KdfParams, Key, Password, PublicKey,
};
use serde::{Deserialize, Serialize};

/// The secret keys of a repository, as a key file holds them.
///
/// A *full* key holds all four keys. A *put-only* key holds the id key, the chunker
/// seed and the meta key (to cut, name and deduplicate blobs and to read and write the
/// index) and, instead of the data key, only the public key that file keys of packs and
/// snapshots are sealed to (see `sealed`): it can add backups but cannot open any pack
/// or snapshot, its own included.
///
/// After `key rotate`, the meta and data keys are those of a later *key epoch*: new files
/// are wrapped under it, and the keys of earlier epochs are kept in `past` so that what
/// was written before stays readable. The id key and chunker seed never change.
#[derive(Clone)]
pub struct MasterKey {
    /// Keys the BLAKE3 hash that names blobs: ids reveal nothing without it.
    pub id_key: Key,
    /// Seeds the chunker's gear table, so boundaries differ between repositories.
    pub chunker_seed: Key,
    /// Wraps the file keys of the config, index files and locks (current epoch).
    pub meta_key: Key,
    /// Wraps the file keys of packs and snapshots (current epoch); `None` in a put-only key.
    data_key: Option<Key>,
    /// The public key of the data secret (derived from the data key).
    data_public: PublicKey,
    /// The current key epoch (0 until the first rotation).
    epoch: u32,
    /// The keys of earlier epochs (a put-only key holds only their meta keys).
    past: Vec<PastKeys>,
    /// The repository's config carries an authenticator that full keys check (true for
    /// repositories made since it exists): a config without one is then refused, so a
    /// put-only key cannot pass one off by leaving it out.
    config_auth: bool,
}

/// The keys of an earlier key epoch.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PastKeys {
    epoch: u32,
    meta_key: Key,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_key: Option<Key>,
    /// The first 16 hex characters of the name of every snapshot and index file that
    /// existed when this epoch was rotated away (absent for rotations made before it was
    /// recorded). A file sealed under this epoch and not listed was written afterwards,
    /// with a key the rotation removed, and is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<Vec<String>>,
}

/// How many hex characters of a file name the rotation record keeps (64 bits: finding
/// another file with a listed prefix takes about 2^64 tries).
pub(crate) const SEALED_PREFIX: usize = 16;

/// How a master key is stored in a key file's sealed JSON.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredMaster {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access: Option<String>,
    id_key: Key,
    chunker_seed: Key,
    meta_key: Key,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_key: Option<Key>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_public: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    epoch: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    past: Vec<PastKeys>,
    #[serde(default, skip_serializing_if = "is_false")]
    config_auth: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The `access` of a put-only key in its key file.
const PUT_ONLY: &str = "put-only";

impl Serialize for MasterKey {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        let stored = StoredMaster {
            access: self.data_key.is_none().then(|| PUT_ONLY.to_string()),
            id_key: self.id_key.clone(),
            chunker_seed: self.chunker_seed.clone(),
            meta_key: self.meta_key.clone(),
            data_key: self.data_key.clone(),
            data_public: self
                .data_key
                .is_none()
                .then(|| hex::encode(self.data_public.0)),
            epoch: self.epoch,
            past: self.past.clone(),
            config_auth: self.config_auth,
        };
        stored.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for MasterKey {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let s = StoredMaster::deserialize(deserializer)?;
        let put_only = match s.access.as_deref() {
            None => false,
            Some(PUT_ONLY) => true,
            Some(other) => return Err(D::Error::custom(format!("unknown key access {other:?}"))),
        };
        // Earlier epochs: distinct, before the current one, and holding data keys
        // exactly when the key is full.
        let mut epochs: Vec<u32> = s.past.iter().map(|p| p.epoch).collect();
        epochs.sort_unstable();
        epochs.dedup();
        if epochs.len() != s.past.len()
            || s.past.iter().any(|p| p.epoch >= s.epoch)
            || s.past.iter().any(|p| p.data_key.is_some() == put_only)
        {
            return Err(D::Error::custom(
                "the keys of earlier epochs are inconsistent",
            ));
        }
        let (data_key, data_public) = match (put_only, s.data_key, s.data_public) {
            (false, Some(data_key), None) => {
                let public = crate::formats::sealed::data_public(&data_key);
                (Some(data_key), public)
            }
            (true, None, Some(public)) => {
                let bytes: [u8; 32] = hex::decode(&public)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| D::Error::custom("data_public must be 32 bytes in hex"))?;
                (None, PublicKey(bytes))
            }
            _ => {
                return Err(D::Error::custom(
                    "a key holds either data_key (full) or access \"put-only\" and data_public",
                ))
            }
        };
        Ok(MasterKey {
            id_key: s.id_key,
            chunker_seed: s.chunker_seed,
            meta_key: s.meta_key,
            data_key,
            data_public,
            epoch: s.epoch,
            past: s.past,
            config_auth: s.config_auth,
        })
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// The meta keys of every epoch a master key holds.
#[derive(Debug)]
pub struct MetaKeys<'a>(&'a MasterKey);

impl EpochKeys for MetaKeys<'_> {
    fn for_epoch(&self, epoch: u32) -> Option<&Key> {
        if epoch == self.0.epoch {
            return Some(&self.0.meta_key);
        }
        self.0
            .past
            .iter()
            .find(|p| p.epoch == epoch)
            .map(|p| &p.meta_key)
    }
}

/// The data keys of every epoch a full master key holds.
#[derive(Debug)]
pub struct DataKeys<'a>(&'a MasterKey);

impl EpochKeys for DataKeys<'_> {
    fn for_epoch(&self, epoch: u32) -> Option<&Key> {
        if epoch == self.0.epoch {
            return self.0.data_key.as_ref();
        }
        self.0
            .past
            .iter()
            .find(|p| p.epoch == epoch)
            .and_then(|p| p.data_key.as_ref())
    }
}

impl MasterKey {
    /// A new random master key.
    pub fn random() -> MasterKey {
        MasterKey::full(Key::random(), Key::random(), Key::random(), Key::random())
    }

    fn full(id_key: Key, chunker_seed: Key, meta_key: Key, data_key: Key) -> MasterKey {
        let data_public = crate::formats::sealed::data_public(&data_key);
        MasterKey {
            id_key,
            chunker_seed,
            meta_key,
            data_key: Some(data_key),
            data_public,
            epoch: 0,
            past: Vec::new(),
            config_auth: true,
        }
    }

    /// True when the config must carry a valid authenticator (see `config_auth`).
    pub fn requires_config_auth(&self) -> bool {
        self.config_auth && !self.is_put_only()
    }

    /// The put-only key of this master key: the same id key, chunker seed and meta keys,
    /// and the data public key instead of the data keys.
    pub fn put_only(&self) -> MasterKey {
        MasterKey {
            data_key: None,
            config_auth: false,
            past: self
                .past
                .iter()
                .map(|p| PastKeys {
                    data_key: None,
                    sealed: None,
                    ..p.clone()
                })
                .collect(),
            ..self.clone()
        }
    }

    /// The master key of the next epoch: new meta and data keys, the current ones kept
    /// as the past epoch's, with the names of the snapshot and index files that exist
    /// now (`sealed`): files of the past epoch not among them are refused. Needs a full
    /// key.
    pub fn rotated(&self, sealed: &[String]) -> Result<MasterKey> {
        let data_key = self.data_key()?.clone();
        let mut past = self.past.clone();
        let mut names: Vec<String> = sealed
            .iter()
            .map(|n| n[..SEALED_PREFIX.min(n.len())].to_string())
            .collect();
        names.sort();
        names.dedup();
        past.push(PastKeys {
            epoch: self.epoch,
            meta_key: self.meta_key.clone(),
            data_key: Some(data_key),
            sealed: Some(names),
        });
        let epoch = self
            .epoch
            .checked_add(1)
            .ok_or_else(|| Error::Invalid("no key epoch is left".into()))?;
        let mut next = MasterKey::full(
            self.id_key.clone(),
            self.chunker_seed.clone(),
            Key::random(),
            Key::random(),
        );
        next.epoch = epoch;
        next.past = past;
        next.config_auth = self.config_auth;
        Ok(next)
    }

    /// Whether a file named `name` sealed under key epoch `epoch` may be read: always
    /// for the current epoch; for an earlier one, only if it existed when that epoch was
    /// rotated away (or the rotation recorded nothing, as those before it did).
    pub fn admits(&self, epoch: u32, name: &str) -> bool {
        if epoch >= self.epoch {
            return true;
        }
        let prefix = &name[..SEALED_PREFIX.min(name.len())];
        match self.past.iter().find(|p| p.epoch == epoch) {
            Some(PastKeys {
                sealed: Some(names),
                ..
            }) => names.binary_search_by(|n| n.as_str().cmp(prefix)).is_ok(),
            _ => true,
        }
    }

    /// True for a put-only key.
    pub fn is_put_only(&self) -> bool {
        self.data_key.is_none()
    }

    /// The current key epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The data key of the current epoch, which opens packs and snapshots written
    /// since the last rotation; a put-only key has none.
    pub fn data_key(&self) -> Result<&Key> {
        self.data_key.as_ref().ok_or(Error::PutOnly)
    }

    /// The data keys of every epoch; a put-only key has none.
    pub fn data_keys(&self) -> Result<DataKeys<'_>> {
        self.data_key()?;
        Ok(DataKeys(self))
    }

    /// The meta keys of every epoch.
    pub fn meta_keys(&self) -> MetaKeys<'_> {
        MetaKeys(self)
    }

    /// How new config, index and lock files wrap their file keys.
    pub fn meta_wrap(&self) -> Wrap<'_> {
        Wrap::Key(&self.meta_key, self.epoch)
    }

    /// How new packs and snapshots wrap their file keys: with the data key (kind 1),
    /// or sealed to the data public key by a put-only key (kind 2).
    pub fn data_wrap(&self) -> Wrap<'_> {
        match &self.data_key {
            Some(k) => Wrap::Key(k, self.epoch),
            None => Wrap::Public(&self.data_public, self.epoch),
        }
    }

    /// The public key that put-only keys seal file keys to.
    pub fn data_public(&self) -> &PublicKey {
        &self.data_public
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
    /// "put-only" for a put-only key; absent for a full key. A label for `key list`:
    /// what a key can do is decided by the sealed master key, and a label that does not
    /// match it is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    /// The key epoch of the master key it holds; absent before the first rotation (a
    /// cairn that does not know rotation then refuses the key file instead of failing
    /// on every file written since). A label, checked against the sealed key like
    /// `access`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u32>,
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
            access: master.is_put_only().then(|| PUT_ONLY.to_string()),
            epoch: (master.epoch() != 0).then(|| master.epoch()),
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

    /// True when the key file says it holds a put-only key.
    pub fn is_put_only(&self) -> bool {
        self.access.as_deref() == Some(PUT_ONLY)
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
        if master.is_put_only() != self.is_put_only() || master.epoch() != self.epoch.unwrap_or(0) {
            return Err(Error::format(
                what(),
                "its access or epoch label does not match the key it holds",
            ));
        }
        Ok(Some(master))
    }

    /// The key file's id (its file name).
    pub fn id(bytes: &[u8]) -> Id {
        Id::of_file(bytes)
    }
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
        assert_eq!(got.data_key().unwrap(), m.data_key().unwrap());
        assert!(!got.is_put_only());
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

    #[test]
    fn a_put_only_key_holds_no_data_key_and_round_trips() {
        let m = MasterKey::random();
        let p = m.put_only();
        assert!(p.is_put_only());
        assert!(matches!(p.data_key(), Err(Error::PutOnly)));
        assert_eq!(p.data_public(), m.data_public());
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains("\"access\":\"put-only\""), "{json}");
        assert!(!json.contains("data_key"), "{json}");
        assert!(!json.contains(&hex::encode(m.data_key().unwrap().as_bytes())));
        let back: MasterKey = serde_json::from_str(&json).unwrap();
        assert!(back.is_put_only());
        assert_eq!(back.data_public(), m.data_public());
        assert_eq!(back.meta_key, m.meta_key);
        // A full key's JSON: four keys, and that the config is authenticated.
        let full = serde_json::to_value(&m).unwrap();
        let mut names: Vec<_> = full.as_object().unwrap().keys().cloned().collect();
        names.sort();
        assert_eq!(
            names,
            [
                "chunker_seed",
                "config_auth",
                "data_key",
                "id_key",
                "meta_key"
            ]
        );
        assert!(
            !json.contains("config_auth"),
            "not in a put-only key: {json}"
        );
        let back: MasterKey = serde_json::from_value(full).unwrap();
        assert_eq!(back.data_public(), m.data_public());
    }

    #[test]
    fn mixed_or_unknown_access_is_refused() {
        let m = MasterKey::random();
        let mut v = serde_json::to_value(&m).unwrap();
        v["access"] = "put-only".into();
        assert!(serde_json::from_value::<MasterKey>(v.clone()).is_err());
        v["access"] = "read-only".into();
        assert!(serde_json::from_value::<MasterKey>(v).is_err());
        let mut p = serde_json::to_value(m.put_only()).unwrap();
        p["data_public"] = "abcd".into();
        assert!(serde_json::from_value::<MasterKey>(p).is_err());
    }

    #[test]
    fn a_rotated_key_keeps_the_earlier_epochs_and_its_labels_are_checked() {
        let m = MasterKey::random();
        let r = m.rotated(&[]).unwrap();
        assert_eq!(r.epoch(), 1);
        assert_eq!(r.id_key, m.id_key);
        assert_eq!(r.chunker_seed, m.chunker_seed);
        assert!(r.meta_key != m.meta_key);
        assert!(r.data_key().unwrap() != m.data_key().unwrap());
        assert_eq!(r.meta_keys().for_epoch(0), Some(&m.meta_key));
        assert_eq!(r.data_keys().unwrap().for_epoch(0), m.data_key().ok());
        assert_eq!(r.meta_keys().for_epoch(1), Some(&r.meta_key));
        assert!(r.meta_keys().for_epoch(2).is_none());
        // Round trip through JSON; the put-only key keeps only the meta keys.
        let back: MasterKey = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back.epoch(), 1);
        assert_eq!(back.data_keys().unwrap().for_epoch(0), m.data_key().ok());
        let p = r.put_only();
        let json = serde_json::to_string(&p).unwrap();
        assert!(!json.contains(&hex::encode(m.data_key().unwrap().as_bytes())));
        let back: MasterKey = serde_json::from_str(&json).unwrap();
        assert_eq!(back.meta_keys().for_epoch(0), Some(&m.meta_key));
        assert!(back.data_keys().is_err());
        // A past epoch at or after the current one is refused.
        let mut v = serde_json::to_value(&r).unwrap();
        v["epoch"] = 0.into();
        assert!(serde_json::from_value::<MasterKey>(v).is_err());
        // The key file's epoch label must match the key it holds.
        let pw = Password::new(b"pw".to_vec());
        let kf = KeyFile::create(&r, &pw, KdfParams::DEFAULT, "h", "u", "t".into()).unwrap();
        assert_eq!(kf.epoch, Some(1));
        assert!(kf.unwrap(&pw, "k").unwrap().is_some());
        let mut relabeled = kf.clone();
        relabeled.epoch = None;
        assert!(relabeled.unwrap(&pw, "k").is_err());
        // So must the access label: a put-only key file relabeled full (or the reverse)
        // is refused.
        let pkf =
            KeyFile::create(&r.put_only(), &pw, KdfParams::DEFAULT, "h", "u", "t".into()).unwrap();
        assert!(pkf.is_put_only());
        let mut as_full = pkf.clone();
        as_full.access = None;
        assert!(as_full.unwrap(&pw, "k").is_err());
        let mut as_put_only = kf.clone();
        as_put_only.access = Some("put-only".into());
        assert!(as_put_only.unwrap(&pw, "k").is_err());
    }
}
