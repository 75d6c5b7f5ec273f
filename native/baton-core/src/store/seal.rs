//! Sealing: what the store keeps of a secret is encrypted, so that the store's files never
//! hold its value in clear, not even in pages freed after the run ended.
//!
//! The key is 32 random bytes in `secret.key` in the store directory (0600), made at the
//! first open; an in-memory store has a key of its own that dies with it. A sealed value is
//! `nonce (16) | ciphertext | tag (16)`: BLAKE3 in keyed mode is the stream cipher (its
//! output stream over a fresh nonce) and the MAC (over nonce and ciphertext), with a key
//! derived for each use. A value sealed under another key does not unseal.

use super::StoreError;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

const KEY_FILE: &str = "secret.key";
const NONCE: usize = 16;
const TAG: usize = 16;

/// Seals and unseals values with the store's key.
pub(crate) struct Sealer {
    cipher: [u8; 32],
    mac: [u8; 32],
}

impl Sealer {
    fn with_key(key: &[u8; 32]) -> Self {
        Sealer {
            cipher: blake3::derive_key("baton 2026 secret values: cipher", key),
            mac: blake3::derive_key("baton 2026 secret values: mac", key),
        }
    }

    /// A sealer with a key of its own, for a store that lives in memory.
    pub(crate) fn ephemeral() -> Result<Self, StoreError> {
        Ok(Sealer::with_key(&random()?))
    }

    /// The sealer of the store in `dir`: its key file, made (owner-only) if missing.
    pub(crate) fn for_dir(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(KEY_FILE);
        let io = |source| StoreError::Io { path: path.clone(), source };
        match std::fs::read(&path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes.try_into().map_err(|_| StoreError::Corrupt {
                    what: path.display().to_string(),
                    message: "a key is 32 bytes".into(),
                })?;
                Ok(Sealer::with_key(&key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = random()?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io)?;
                file.write_all(&key).and_then(|()| file.sync_all()).map_err(io)?;
                Ok(Sealer::with_key(&key))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// `plain`, sealed under a fresh nonce.
    pub(crate) fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let nonce: [u8; NONCE] = random()?;
        let mut sealed = Vec::with_capacity(NONCE + plain.len() + TAG);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plain);
        self.apply_stream(&nonce, &mut sealed[NONCE..]);
        let tag = self.tag(&sealed);
        sealed.extend_from_slice(&tag);
        Ok(sealed)
    }

    /// What [`seal`](Self::seal) sealed, or `None` for bytes sealed under another key or
    /// changed since.
    pub(crate) fn unseal(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        let body_len = sealed.len().checked_sub(TAG).filter(|&n| n >= NONCE)?;
        let (body, tag) = sealed.split_at(body_len);
        // Not constant time; a tag is compared once per resumed run, on local bytes.
        if self.tag(body) != tag {
            return None;
        }
        let (nonce, cipher) = body.split_at(NONCE);
        let mut plain = cipher.to_vec();
        self.apply_stream(nonce, &mut plain);
        Some(plain)
    }

    fn apply_stream(&self, nonce: &[u8], bytes: &mut [u8]) {
        let mut stream = vec![0u8; bytes.len()];
        blake3::Hasher::new_keyed(&self.cipher).update(nonce).finalize_xof().fill(&mut stream);
        for (b, k) in bytes.iter_mut().zip(stream) {
            *b ^= k;
        }
    }

    fn tag(&self, body: &[u8]) -> [u8; TAG] {
        let hash = blake3::keyed_hash(&self.mac, body);
        let mut tag = [0u8; TAG];
        tag.copy_from_slice(&hash.as_bytes()[..TAG]);
        tag
    }
}

/// Bytes from the system's random source.
fn random<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut bytes = [0u8; N];
    let mut filled = 0;
    while filled < N {
        // SAFETY: the pointer and length describe the unfilled part of `bytes`.
        let n = unsafe { libc::getrandom(bytes[filled..].as_mut_ptr().cast(), N - filled, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(StoreError::Io { path: "getrandom".into(), source: e });
            }
        } else {
            filled += n as usize;
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_unseal_only_under_their_key_and_hide_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::for_dir(dir.path()).unwrap();
        let sealed = sealer.seal(b"hunter2-token").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(sealer.unseal(&sealed).unwrap(), b"hunter2-token");
        // The key file is kept: the store reopened unseals what it sealed.
        assert_eq!(Sealer::for_dir(dir.path()).unwrap().unseal(&sealed).unwrap(), b"hunter2-token");
        assert_eq!(Sealer::ephemeral().unwrap().unseal(&sealed), None);
        let mut changed = sealed.clone();
        changed[NONCE] ^= 1;
        assert_eq!(sealer.unseal(&changed), None);
        assert_eq!(sealer.unseal(b"short"), None);
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
    }
}
