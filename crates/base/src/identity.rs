//! The node's identity: an ed25519 key made on first start and kept in the data directory. The
//! node id is its public key; records that travel through other nodes are signed with it, so
//! whoever relays them cannot change them.

use anyhow::Context as _;
use iroh_base::{PublicKey, SecretKey, Signature};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The key file's name inside the data directory.
const KEY_FILE: &str = "node.key";

/// This node's key pair.
#[derive(Clone)]
pub struct Identity {
    secret: SecretKey,
}

/// A signature that does not match its data, or a key that is not a valid ed25519 point.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadSignature(pub String);

impl Identity {
    /// Loads the key from `data_dir`, or makes one there (readable by the owner only).
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Identity> {
        let path = data_dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    anyhow::anyhow!(
                        "{} holds {} bytes, not a 32-byte ed25519 key; move it away to make a new identity",
                        path.display(),
                        bytes.len()
                    )
                })?;
                Ok(Identity {
                    secret: SecretKey::from_bytes(&bytes),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir)
                    .with_context(|| format!("creating {}", data_dir.display()))?;
                let secret = SecretKey::generate();
                write_private(&path, &secret.to_bytes())?;
                tracing::info!(id = %secret.public(), "made a new node identity");
                Ok(Identity { secret })
            }
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The node id: the public key.
    pub fn public(&self) -> PublicKey {
        self.secret.public()
    }

    /// The secret key, for the peer endpoint's TLS.
    pub fn secret(&self) -> &SecretKey {
        &self.secret
    }

    /// Signs `data`.
    pub fn sign(&self, data: &[u8]) -> [u8; 64] {
        self.secret.sign(data).to_bytes()
    }
}

/// Checks that `signature` over `data` was made by `key`.
pub fn verify(key: &PublicKey, data: &[u8], signature: &[u8; 64]) -> Result<(), BadSignature> {
    key.verify(data, &Signature::from_bytes(signature))
        .map_err(|_| BadSignature(format!("signature does not match node {}", key.fmt_short())))
}

/// Parses a node id (hex or base32 public key).
pub fn parse_node_id(text: &str) -> Result<PublicKey, BadSignature> {
    text.parse()
        .map_err(|e| BadSignature(format!("{text:?} is not a node id: {e}")))
}

/// The key file of a data directory.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

/// Writes `bytes` to a new file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_made_once_private_and_signs() {
        let dir = tempfile::tempdir().unwrap();
        let a = Identity::load_or_create(dir.path()).unwrap();
        let b = Identity::load_or_create(dir.path()).unwrap();
        assert_eq!(a.public(), b.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(key_path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let sig = a.sign(b"record");
        verify(&b.public(), b"record", &sig).unwrap();
        assert!(verify(&b.public(), b"recorx", &sig).is_err());
    }

    #[test]
    fn a_truncated_key_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(key_path(dir.path()), b"short").unwrap();
        let err = Identity::load_or_create(dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("node.key") && err.contains("5 bytes"), "{err}");
    }
}
