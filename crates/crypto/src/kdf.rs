//! Argon2id password-based key derivation.

use argon2::{Algorithm, Argon2, Block, Params, Version};
use zeroize::Zeroizing;

use crate::{CryptoError, Key, Password};

/// Argon2id cost parameters, stored next to the salt in a key file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Number of passes over the memory.
    pub iterations: u32,
    /// Degree of parallelism (lanes).
    pub parallelism: u32,
}

impl KdfParams {
    /// What new keys use: 64 MiB, 3 passes, 4 lanes (the second recommendation of RFC
    /// 9106, section 4). The lanes are computed on as many cores as there are: the same
    /// memory and work as one lane, in a fraction of the time on a machine with several
    /// cores, and every command derives a key once.
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 65536,
        iterations: 3,
        parallelism: 4,
    };

    /// The weakest parameters accepted (field by field), so that a tampered key file
    /// cannot downgrade the KDF.
    pub const FLOOR: KdfParams = KdfParams {
        memory_kib: 65536,
        iterations: 2,
        parallelism: 1,
    };

    /// The largest parameters accepted (field by field): beyond these, deriving a key
    /// would be a denial of service (4 GiB of memory, 64 passes, 16 lanes).
    pub const CAP: KdfParams = KdfParams {
        memory_kib: 4 * 1024 * 1024,
        iterations: 64,
        parallelism: 16,
    };

    /// Checks the parameters against [`KdfParams::FLOOR`] and [`KdfParams::CAP`].
    ///
    /// # Errors
    /// [`CryptoError::WeakKdf`] if any field is below the floor,
    /// [`CryptoError::KdfOutOfRange`] if any field is above the cap.
    pub fn check(&self) -> Result<(), CryptoError> {
        let (floor, cap) = (Self::FLOOR, Self::CAP);
        if self.memory_kib < floor.memory_kib {
            return Err(CryptoError::WeakKdf(format!(
                "memory {} KiB is below the minimum {} KiB",
                self.memory_kib, floor.memory_kib
            )));
        }
        if self.iterations < floor.iterations {
            return Err(CryptoError::WeakKdf(format!(
                "iterations {} is below the minimum {}",
                self.iterations, floor.iterations
            )));
        }
        if self.parallelism < floor.parallelism {
            return Err(CryptoError::WeakKdf(format!(
                "parallelism {} is below the minimum {}",
                self.parallelism, floor.parallelism
            )));
        }
        if self.memory_kib > cap.memory_kib {
            return Err(CryptoError::KdfOutOfRange(format!(
                "memory {} KiB is above the maximum {} KiB",
                self.memory_kib, cap.memory_kib
            )));
        }
        if self.iterations > cap.iterations {
            return Err(CryptoError::KdfOutOfRange(format!(
                "iterations {} is above the maximum {}",
                self.iterations, cap.iterations
            )));
        }
        if self.parallelism > cap.parallelism {
            return Err(CryptoError::KdfOutOfRange(format!(
                "parallelism {} is above the maximum {}",
                self.parallelism, cap.parallelism
            )));
        }
        Ok(())
    }
}

/// Minimum salt length accepted by [`derive_key`], in bytes.
pub const MIN_SALT_LEN: usize = 16;

/// Derives a [`Key`] from a password with Argon2id (version 0x13), 32 bytes of output.
///
/// The Argon2 working memory is allocated here and wiped before it is freed.
///
/// # Errors
/// Whatever [`KdfParams::check`] returns; [`CryptoError::Kdf`] if `salt` is shorter
/// than 16 bytes, the working memory cannot be allocated or Argon2 itself fails.
pub fn derive_key(
    password: &Password,
    salt: &[u8],
    params: &KdfParams,
) -> Result<Key, CryptoError> {
    params.check()?;
    if salt.len() < MIN_SALT_LEN {
        return Err(CryptoError::Kdf(format!(
            "salt is {} bytes, at least {MIN_SALT_LEN} are required",
            salt.len()
        )));
    }
    let argon_params = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(Key::LEN),
    )
    .map_err(|e| CryptoError::Kdf(e.to_string()))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);

    // `Argon2::hash_password_into` frees its working memory without wiping it, so bring
    // our own and wipe it (on success and on error) through `Zeroizing`.
    let blocks = argon.params().block_count();
    let mut memory: Zeroizing<Vec<Block>> = Zeroizing::new(Vec::new());
    memory.try_reserve_exact(blocks).map_err(|_| {
        CryptoError::Kdf(format!(
            "cannot allocate {} KiB of memory",
            params.memory_kib
        ))
    })?;
    memory.resize(blocks, Block::new());

    let mut out = Zeroizing::new([0u8; Key::LEN]);
    argon
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out[..], &mut memory[..])
        .map_err(|e| CryptoError::Kdf(e.to_string()))?;
    Ok(Key::from_bytes(*out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: &[u8; 16] = b"0123456789abcdef";

    fn with(memory_kib: u32, iterations: u32, parallelism: u32) -> KdfParams {
        KdfParams {
            memory_kib,
            iterations,
            parallelism,
        }
    }

    #[test]
    fn check_accepts_default_floor_and_cap() {
        KdfParams::DEFAULT.check().unwrap();
        KdfParams::FLOOR.check().unwrap();
        KdfParams::CAP.check().unwrap();
    }

    #[test]
    fn check_rejects_below_floor() {
        for params in [
            with(8192, 3, 1),
            with(65535, 3, 1),
            with(65536, 1, 1),
            with(65536, 0, 1),
            with(65536, 3, 0),
        ] {
            match params.check() {
                Err(CryptoError::WeakKdf(msg)) => assert!(msg.contains("below"), "{msg}"),
                other => panic!("{params:?}: {other:?}"),
            }
        }
        let Err(CryptoError::WeakKdf(msg)) = with(8192, 3, 1).check() else {
            panic!()
        };
        assert_eq!(msg, "memory 8192 KiB is below the minimum 65536 KiB");
    }

    #[test]
    fn check_rejects_above_cap() {
        for params in [
            with(4 * 1024 * 1024 + 1, 3, 1),
            with(u32::MAX, 3, 1),
            with(65536, 65, 1),
            with(65536, u32::MAX, 1),
            with(65536, 3, 17),
            with(65536, 3, u32::MAX),
        ] {
            match params.check() {
                Err(CryptoError::KdfOutOfRange(msg)) => assert!(msg.contains("above"), "{msg}"),
                other => panic!("{params:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn derive_key_rejects_bad_params_and_short_salt_without_work() {
        let password = Password::from(String::from("pw"));
        assert!(matches!(
            derive_key(&password, SALT, &with(1024, 3, 1)),
            Err(CryptoError::WeakKdf(_))
        ));
        assert!(matches!(
            derive_key(&password, SALT, &with(u32::MAX, 3, 1)),
            Err(CryptoError::KdfOutOfRange(_))
        ));
        for len in [0, 8, 15] {
            match derive_key(&password, &SALT[..len], &KdfParams::DEFAULT) {
                Err(CryptoError::Kdf(msg)) => assert!(msg.contains("salt"), "{msg}"),
                other => panic!("salt of {len} bytes: {other:?}"),
            }
        }
    }

    /// Four Argon2id derivations with the default (64 MiB) parameters.
    #[test]
    fn derive_key_is_deterministic_and_input_sensitive() {
        let password = Password::from(String::from("correct horse"));
        let k1 = derive_key(&password, SALT, &KdfParams::DEFAULT).unwrap();
        let k2 = derive_key(&password, SALT, &KdfParams::DEFAULT).unwrap();
        assert_eq!(k1, k2);
        let other_salt = derive_key(&password, b"0123456789abcdeF", &KdfParams::DEFAULT).unwrap();
        assert_ne!(k1, other_salt);
        let other_password = derive_key(
            &Password::from(String::from("correct horsf")),
            SALT,
            &KdfParams::DEFAULT,
        )
        .unwrap();
        assert_ne!(k1, other_password);
        assert_ne!(other_salt, other_password);
    }

    /// Known-answer test, so that keys derived today still derive after a dependency
    /// upgrade. The expected value comes from an independent implementation (OpenSSL via
    /// Python's `cryptography`: `Argon2id(salt=b"0123456789abcdef", length=32,
    /// iterations=2, lanes=1, memory_cost=65536).derive(b"password")`).
    #[test]
    fn derive_key_known_answer() {
        let key = derive_key(
            &Password::new(b"password".to_vec()),
            SALT,
            &KdfParams::FLOOR,
        )
        .unwrap();
        let expected = "efefea1217a1d74f60760e0cddef0e1ddcc58d048f2a50ba3606d5bf0a68af9f";
        assert_eq!(
            serde_json::to_value(&key).unwrap(),
            serde_json::Value::String(expected.into())
        );
    }

    #[test]
    fn params_serde() {
        let json = serde_json::to_string(&KdfParams::DEFAULT).unwrap();
        assert_eq!(
            json,
            r#"{"memory_kib":65536,"iterations":3,"parallelism":4}"#
        );
        assert_eq!(
            serde_json::from_str::<KdfParams>(&json).unwrap(),
            KdfParams::DEFAULT
        );
    }
}
