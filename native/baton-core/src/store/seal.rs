//! Sealing: what the store keeps of a secret is encrypted, so that the store's files never
//! hold its value in clear, not even in pages freed after the run ended.
//!
//! The key is 32 random bytes in `secret.key` in the store directory (0600), made at the
//! first open; an in-memory store has a key of its own that dies with it. A sealed value is
//! `nonce (24) | ciphertext and tag` of XChaCha20-Poly1305 (RustCrypto's `chacha20poly1305`)
//! under a random nonce. A value sealed under another key, or changed, does not unseal.

use super::StoreError;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

const KEY_FILE: &str = "secret.key";
const NONCE: usize = 24;

/// Seals and unseals values with the store's key.
pub(crate) struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl Sealer {
    fn with_key(key: &Key) -> Self {
        Sealer { cipher: XChaCha20Poly1305::new(key) }
    }

    /// The sealer of a store with no directory (a database): its key is kept in the store
    /// itself, made at the first open. Whoever can read the whole database can read the key
    /// too, as with the key file of a directory; what the key keeps out of reach is the
    /// value in rows a deleted secret leaves behind.
    pub(crate) fn in_store(store: &dyn super::Store) -> Result<Self, StoreError> {
        use super::{Batch, Table};
        const KEY: &[u8] = b"secret-key";
        // Engines opening a new database at once race to make the key: one wins, and the
        // others read its key (a key of their own would seal what no other engine unseals).
        loop {
            match store.get(Table::Meta, KEY)? {
                Some(bytes) if bytes.len() == 32 => {
                    return Ok(Sealer::with_key(Key::from_slice(&bytes)))
                }
                Some(_) => {
                    return Err(StoreError::Corrupt {
                        what: "the store's secret key".into(),
                        message: "a key is 32 bytes".into(),
                    })
                }
                None => {
                    let key = XChaCha20Poly1305::generate_key(&mut OsRng);
                    let mut batch = Batch::default();
                    batch.put(Table::Meta, KEY, key.to_vec());
                    batch.expect(Table::Meta, KEY, None);
                    if store.commit_all(vec![batch])? == [true] {
                        return Ok(Sealer::with_key(&key));
                    }
                }
            }
        }
    }

    /// A sealer with a key of its own, for a store that lives in memory.
    pub(crate) fn ephemeral() -> Result<Self, StoreError> {
        Ok(Sealer::with_key(&XChaCha20Poly1305::generate_key(&mut OsRng)))
    }

    /// The sealer of the store in `dir`: its key file, made (owner-only) if missing.
    pub(crate) fn for_dir(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(KEY_FILE);
        let io = |source| StoreError::Io { path: path.clone(), source };
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == 32 => Ok(Sealer::with_key(Key::from_slice(&bytes))),
            Ok(_) => Err(StoreError::Corrupt {
                what: path.display().to_string(),
                message: "a key is 32 bytes".into(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = XChaCha20Poly1305::generate_key(&mut OsRng);
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
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, plain)
            .map_err(|e| StoreError::Engine { engine: "seal", message: e.to_string() })?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// What [`seal`](Self::seal) sealed, or `None` for bytes sealed under another key or
    /// changed since.
    pub(crate) fn unseal(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE);
        self.cipher.decrypt(XNonce::from_slice(nonce), body).ok()
    }
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
