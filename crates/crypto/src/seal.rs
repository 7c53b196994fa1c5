//! XChaCha20-Poly1305 sealing with a random nonce.

use chacha20poly1305::aead::inout::InOutBuf;
use chacha20poly1305::{AeadInOut, KeyInit, Tag, XChaCha20Poly1305, XNonce};

use crate::{CryptoError, Key};
use rand::RngCore;

/// Length of the random nonce that starts sealed bytes.
pub const NONCE_LEN: usize = 24;
/// Length of the Poly1305 tag that ends sealed bytes.
pub const TAG_LEN: usize = 16;
/// How much longer sealed bytes are than the plaintext: `NONCE_LEN + TAG_LEN`.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

fn cipher(key: &Key) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(key.as_bytes().into())
}

/// Seals `plaintext` with XChaCha20-Poly1305 under a fresh random nonce, authenticating
/// `ad` too. Output layout: `nonce (24) || ciphertext || tag (16)`.
///
/// # Panics
/// If the OS random number generator is unavailable, or `plaintext` exceeds the
/// cipher's limit of 256 GiB.
pub fn seal(key: &Key, ad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
    seal_into(key, ad, plaintext, &mut out);
    out
}

/// Fills a nonce from the thread's CSPRNG (ChaCha12 seeded and periodically reseeded
/// from the operating system). A system call per blob (`getrandom`) cost about 20 µs
/// here, a large share of backing up small files; 24 random bytes from a CSPRNG keep
/// XChaCha20 nonces unique with overwhelming probability all the same.
fn fill_nonce(nonce: &mut [u8]) {
    rand::rng().fill_bytes(nonce);
}

/// Like [`seal`], but appends the sealed bytes to `out` (which reallocates at most once).
///
/// # Panics
/// As [`seal`].
pub fn seal_into(key: &Key, ad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) {
    seal_parts_into(key, ad, &[plaintext], out);
}

/// Seals the concatenation of `parts` and appends the sealed bytes to `out`, without
/// first copying the parts into one buffer (a blob is a compression byte and a payload).
///
/// # Panics
/// As [`seal`].
pub fn seal_parts_into(key: &Key, ad: &[u8], parts: &[&[u8]], out: &mut Vec<u8>) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.reserve(len + SEAL_OVERHEAD);
    seal_appended(key, ad, out, |out| {
        for p in parts {
            out.extend_from_slice(p);
        }
    });
}

/// Seals, where they lie, the plaintext bytes that `fill` appends to `out`: the nonce
/// goes before them, they are encrypted in place and the tag follows. A caller that
/// builds its plaintext straight into `out` (a blob compressed into its pack) needs no
/// buffer of its own and copies nothing.
///
/// # Panics
/// As [`seal`].
pub fn seal_appended(key: &Key, ad: &[u8], out: &mut Vec<u8>, fill: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    let mut nonce = XNonce::default();
    fill_nonce(&mut nonce);
    out.extend_from_slice(&nonce);
    fill(out);
    let region: InOutBuf<'_, '_, u8> = (&mut out[start + NONCE_LEN..]).into();
    match cipher(key).encrypt_inout_detached(&nonce, ad, region) {
        Ok(tag) => out.extend_from_slice(&tag),
        Err(_) => {
            // Never leave (partially) unencrypted bytes behind.
            let len = out.len() - start - NONCE_LEN;
            out.truncate(start);
            panic!("cannot seal {len} bytes: over the XChaCha20-Poly1305 limit");
        }
    }
}

/// Splits sealed bytes into nonce, ciphertext and tag.
fn split(sealed: &[u8]) -> Result<(XNonce, &[u8], Tag), CryptoError> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(CryptoError::Tampered);
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    let nonce = XNonce::try_from(nonce).map_err(|_| CryptoError::Tampered)?;
    let tag = Tag::try_from(tag).map_err(|_| CryptoError::Tampered)?;
    Ok((nonce, ciphertext, tag))
}

/// Opens bytes made by [`seal`] under the same key and associated data.
///
/// # Errors
/// [`CryptoError::Tampered`] for any failure: too short, bad tag, wrong key, wrong `ad`.
pub fn open(key: &Key, ad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let (nonce, ciphertext, tag) = split(sealed)?;
    let mut plaintext = vec![0u8; ciphertext.len()];
    // Decrypts straight from `sealed` into `plaintext`: no extra copy.
    let region = InOutBuf::new(ciphertext, &mut plaintext).map_err(|_| CryptoError::Tampered)?;
    cipher(key)
        .decrypt_inout_detached(&nonce, ad, region, &tag)
        .map_err(|_| CryptoError::Tampered)?;
    Ok(plaintext)
}

/// Opens sealed bytes in place inside a larger buffer (a slice of a read that holds
/// several sealed objects) and returns the plaintext, a sub-slice of `sealed`.
///
/// # Errors
/// As [`open`]. The tag is checked before anything is decrypted, so on failure `sealed`
/// still holds the ciphertext.
pub fn open_in_slice<'a>(
    key: &Key,
    ad: &[u8],
    sealed: &'a mut [u8],
) -> Result<&'a mut [u8], CryptoError> {
    let (nonce, _, tag) = split(sealed)?;
    let end = sealed.len() - TAG_LEN;
    let plain = &mut sealed[NONCE_LEN..end];
    let region: InOutBuf<'_, '_, u8> = (&mut *plain).into();
    cipher(key)
        .decrypt_inout_detached(&nonce, ad, region, &tag)
        .map_err(|_| CryptoError::Tampered)?;
    Ok(plain)
}

/// Opens sealed bytes in place: on success `buf` holds exactly the plaintext.
///
/// # Errors
/// As [`open`]. On failure `buf` is cleared, so it never holds anything that could be
/// mistaken for plaintext.
pub fn open_in_place(key: &Key, ad: &[u8], buf: &mut Vec<u8>) -> Result<(), CryptoError> {
    let (nonce, tag) = match split(buf) {
        Ok((nonce, _, tag)) => (nonce, tag),
        Err(err) => {
            buf.clear();
            return Err(err);
        }
    };
    let end = buf.len() - TAG_LEN;
    let region: InOutBuf<'_, '_, u8> = (&mut buf[NONCE_LEN..end]).into();
    match cipher(key).decrypt_inout_detached(&nonce, ad, region, &tag) {
        Ok(()) => {
            buf.truncate(end);
            buf.drain(..NONCE_LEN);
            Ok(())
        }
        Err(_) => {
            buf.clear();
            Err(CryptoError::Tampered)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> Key {
        Key::from_bytes([0x42; 32])
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn round_trip_sizes() {
        for len in [0, 1, 15, 16, 17, 63, 64, 65, 1 << 20] {
            let plaintext = pattern(len);
            let sealed = seal(&key(), b"ad", &plaintext);
            assert_eq!(sealed.len(), len + SEAL_OVERHEAD);
            if len >= 64 {
                assert_ne!(&sealed[NONCE_LEN..NONCE_LEN + 64], &plaintext[..64]);
            }
            assert_eq!(open(&key(), b"ad", &sealed).unwrap(), plaintext);
            let mut buf = sealed.clone();
            open_in_place(&key(), b"ad", &mut buf).unwrap();
            assert_eq!(buf, plaintext);
        }
    }

    #[test]
    fn nonces_are_random() {
        let a = seal(&key(), b"", b"same");
        let b = seal(&key(), b"", b"same");
        assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
        assert_ne!(a, b);
    }

    #[test]
    fn seal_into_appends_with_one_allocation() {
        let mut out = b"prefix".to_vec();
        let plaintext = pattern(1000);
        seal_into(&key(), b"ad", &plaintext, &mut out);
        assert_eq!(&out[..6], b"prefix");
        assert_eq!(out.len(), 6 + plaintext.len() + SEAL_OVERHEAD);
        assert_eq!(open(&key(), b"ad", &out[6..]).unwrap(), plaintext);

        // Exactly enough capacity: no reallocation at all.
        let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
        let ptr = out.as_ptr();
        seal_into(&key(), b"ad", &plaintext, &mut out);
        assert_eq!(out.as_ptr(), ptr);
        assert_eq!(out.capacity(), plaintext.len() + SEAL_OVERHEAD);
    }

    #[test]
    fn wrong_ad_or_key_is_tampered() {
        let sealed = seal(&key(), b"ad", b"secret");
        assert!(matches!(
            open(&key(), b"ae", &sealed),
            Err(CryptoError::Tampered)
        ));
        assert!(matches!(
            open(&key(), b"", &sealed),
            Err(CryptoError::Tampered)
        ));
        let other = Key::from_bytes([0x43; 32]);
        assert!(matches!(
            open(&other, b"ad", &sealed),
            Err(CryptoError::Tampered)
        ));
        let mut buf = sealed.clone();
        assert!(matches!(
            open_in_place(&other, b"ad", &mut buf),
            Err(CryptoError::Tampered)
        ));
        assert!(buf.is_empty());
        let mut buf = sealed;
        assert!(matches!(
            open_in_place(&key(), b"ae", &mut buf),
            Err(CryptoError::Tampered)
        ));
        assert!(buf.is_empty());
    }

    #[test]
    fn every_truncation_is_tampered() {
        let sealed = seal(&key(), b"ad", b"");
        assert_eq!(sealed.len(), SEAL_OVERHEAD);
        let long = seal(&key(), b"ad", &pattern(100));
        for len in 0..SEAL_OVERHEAD {
            for input in [&sealed[..len], &long[..len], &vec![0u8; len][..]] {
                assert!(matches!(
                    open(&key(), b"ad", input),
                    Err(CryptoError::Tampered)
                ));
                let mut buf = input.to_vec();
                assert!(matches!(
                    open_in_place(&key(), b"ad", &mut buf),
                    Err(CryptoError::Tampered)
                ));
                assert!(buf.is_empty());
            }
        }
        // Truncations of a longer message at any point fail too.
        for len in SEAL_OVERHEAD..long.len() {
            assert!(matches!(
                open(&key(), b"ad", &long[..len]),
                Err(CryptoError::Tampered)
            ));
        }
        // An all-zero buffer of the minimum length is not a valid seal.
        assert!(open(&key(), b"ad", &[0u8; SEAL_OVERHEAD]).is_err());
    }

    /// Known-answer test: draft-irtf-cfrg-xchacha, appendix A.3.1, laid out as
    /// `nonce || ciphertext || tag`.
    #[test]
    fn opens_xchacha_draft_vector() {
        fn unhex(s: &str) -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        }
        let key: [u8; 32] = std::array::from_fn(|i| 0x80 + i as u8);
        let key = Key::from_bytes(key);
        let ad = unhex("50515253c0c1c2c3c4c5c6c7");
        let plaintext: &[u8] = b"Ladies and Gentlemen of the class of '99: \
            If I could offer you only one tip for the future, sunscreen would be it.";
        let sealed = unhex(concat!(
            "404142434445464748494a4b4c4d4e4f5051525354555657",
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb",
            "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452",
            "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9",
            "21f9664c97637da9768812f615c68b13b52e",
            "c0875924c1c7987947deafd8780acf49",
        ));
        assert_eq!(sealed.len(), plaintext.len() + SEAL_OVERHEAD);
        assert_eq!(open(&key, &ad, &sealed).unwrap(), plaintext);
        let mut buf = sealed;
        open_in_place(&key, &ad, &mut buf).unwrap();
        assert_eq!(buf, plaintext);
    }

    #[test]
    fn tampered_error_is_opaque() {
        assert_eq!(
            CryptoError::Tampered.to_string(),
            "data is corrupt or has been tampered with"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_single_bit_flip_is_tampered(
            plaintext in proptest::collection::vec(any::<u8>(), 0..200),
            position in any::<proptest::sample::Index>(),
            bit in 0u8..8,
        ) {
            let mut sealed = seal(&key(), b"ad", &plaintext);
            let at = position.index(sealed.len());
            sealed[at] ^= 1 << bit;
            prop_assert!(matches!(open(&key(), b"ad", &sealed), Err(CryptoError::Tampered)));
            let mut slice = sealed.clone();
            prop_assert!(matches!(open_in_slice(&key(), b"ad", &mut slice), Err(CryptoError::Tampered)));
            // Nothing was decrypted: the tag is checked first.
            prop_assert_eq!(&slice, &sealed);
            let mut buf = sealed;
            prop_assert!(matches!(open_in_place(&key(), b"ad", &mut buf), Err(CryptoError::Tampered)));
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn seal_appended_seals_what_fill_appends(
            before in proptest::collection::vec(any::<u8>(), 0..100),
            plaintext in proptest::collection::vec(any::<u8>(), 0..2000),
        ) {
            let mut out = before.clone();
            seal_appended(&key(), b"ad", &mut out, |o| o.extend_from_slice(&plaintext));
            prop_assert_eq!(&out[..before.len()], &before[..]);
            prop_assert_eq!(out.len(), before.len() + plaintext.len() + SEAL_OVERHEAD);
            let sealed = &out[before.len()..];
            prop_assert_eq!(open(&key(), b"ad", sealed).unwrap(), plaintext.clone());
            // The plaintext is not left readable in the output.
            if plaintext.len() >= 16 {
                prop_assert!(!sealed.windows(plaintext.len()).any(|w| w == &plaintext[..]));
            }
            prop_assert!(open(&key(), b"ae", sealed).is_err());
        }

        #[test]
        fn open_in_slice_opens_one_object_among_others(
            before in proptest::collection::vec(any::<u8>(), 0..100),
            plaintext in proptest::collection::vec(any::<u8>(), 0..2000),
            after in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let sealed = seal(&key(), b"ad", &plaintext);
            let mut read = [&before[..], &sealed, &after].concat();
            let at = before.len();
            let plain = open_in_slice(&key(), b"ad", &mut read[at..at + sealed.len()]).unwrap();
            prop_assert_eq!(&plain[..], &plaintext[..]);
            prop_assert_eq!(&read[..at], &before[..]);
            prop_assert_eq!(&read[at + sealed.len()..], &after[..]);
            prop_assert!(open_in_slice(&key(), b"other", &mut sealed.clone()).is_err());
        }

        #[test]
        fn open_in_place_equals_open(
            plaintext in proptest::collection::vec(any::<u8>(), 0..2000),
            ad in proptest::collection::vec(any::<u8>(), 0..64),
            garbage in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let sealed = seal(&key(), &ad, &plaintext);
            let mut buf = sealed.clone();
            open_in_place(&key(), &ad, &mut buf).unwrap();
            prop_assert_eq!(&buf, &plaintext);
            prop_assert_eq!(open(&key(), &ad, &sealed).unwrap(), plaintext);
            // Arbitrary bytes never open, with either function, and never panic.
            let mut buf = garbage.clone();
            prop_assert!(open(&key(), &ad, &garbage).is_err());
            prop_assert!(open_in_place(&key(), &ad, &mut buf).is_err());
            prop_assert!(buf.is_empty());
        }
    }
}
