//! Secret values: never printed, zeroized on drop; the master key and what it seals.

use std::fmt;
use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A string whose Debug and Display never show the value.
#[derive(Clone, Zeroize, ZeroizeOnDrop, Default, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: String) -> SecretString {
        SecretString(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> serde::Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretString)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("{path} does not hold a base64-encoded 32-byte key")]
    Malformed { path: String },
    #[error("sealed value is malformed or was sealed under another key")]
    Unseal,
}

/// The platform master key: it seals secrets stored in the database (TOTP seeds today,
/// data keys once envelope encryption lands).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    key: [u8; 32],
    #[zeroize(skip)]
    id: String,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

/// What loading a key did, so the caller can tell the operator.
#[derive(Debug, PartialEq, Eq)]
pub enum KeySource {
    Loaded,
    Generated,
}

impl MasterKey {
    pub fn from_bytes(key: [u8; 32]) -> MasterKey {
        let digest = Sha256::digest(key);
        let id = hex::encode(digest.get(..4).unwrap_or_default());
        MasterKey { key, id }
    }

    /// Loads the key from `path`, or generates one there (mode 0600) when `generate` is set
    /// and the file does not exist yet.
    pub fn load_or_generate(path: &Path, generate: bool) -> Result<(MasterKey, KeySource), SecretError> {
        let shown = path.display().to_string();
        if !path.exists() && generate {
            let mut key = Zeroizing::new([0u8; 32]);
            rand::rngs::OsRng.fill_bytes(key.as_mut());
            write_private_file(path, B64.encode(key.as_ref()).as_bytes())?;
            return Ok((MasterKey::from_bytes(*key), KeySource::Generated));
        }
        let text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| SecretError::Read { path: shown.clone(), source })?,
        );
        let bytes =
            Zeroizing::new(B64.decode(text.trim()).map_err(|_| SecretError::Malformed { path: shown.clone() })?);
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| SecretError::Malformed { path: shown })?;
        Ok((MasterKey::from_bytes(key), KeySource::Loaded))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// A key given as base64 text (from the environment or a KMS hook); `source` names it in
    /// errors.
    pub fn from_base64(text: &str, source: &str) -> Result<MasterKey, SecretError> {
        let bytes =
            Zeroizing::new(B64.decode(text.trim()).map_err(|_| SecretError::Malformed { path: source.into() })?);
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| SecretError::Malformed { path: source.into() })?;
        Ok(MasterKey::from_bytes(key))
    }

    /// AES-256-GCM with a random nonce; `context` binds the value to its place (AAD), so a
    /// sealed value copied to another row or column fails to open.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<String, SecretError> {
        let cipher = Aes256Gcm::new_from_slice(&self.key).map_err(|_| SecretError::Unseal)?;
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: context.as_bytes() })
            .map_err(|_| SecretError::Unseal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(format!("{}:{}", self.id, B64.encode(out)))
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        let (id, body) = sealed.split_once(':').ok_or(SecretError::Unseal)?;
        if id != self.id {
            return Err(SecretError::Unseal);
        }
        let raw = B64.decode(body).map_err(|_| SecretError::Unseal)?;
        if raw.len() < 12 {
            return Err(SecretError::Unseal);
        }
        let (nonce, ct) = raw.split_at(12);
        let cipher = Aes256Gcm::new_from_slice(&self.key).map_err(|_| SecretError::Unseal)?;
        cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: context.as_bytes() })
            .map(Zeroizing::new)
            .map_err(|_| SecretError::Unseal)
    }

    /// A key for a keyed hash, derived so that it never equals the sealing key.
    pub fn derive(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        let mut h = Sha256::new();
        h.update(b"tongban-derive\0");
        h.update(purpose.as_bytes());
        h.update([0]);
        h.update(self.key);
        Zeroizing::new(h.finalize().into())
    }
}

/// Writes a file readable only by its owner, creating parent directories.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), SecretError> {
    let shown = path.display().to_string();
    let err = |source| SecretError::Write { path: shown.clone(), source };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(err)?;
    file.write_all(contents).map_err(err)?;
    file.sync_all().map_err(err)
}

/// Reads a secret from a `*_FILE` path, trimming a trailing newline.
pub fn read_secret_file(path: &Path) -> Result<SecretString, SecretError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| SecretError::Read { path: path.display().to_string(), source })?;
    Ok(SecretString::new(text.trim_end_matches(['\r', '\n']).to_string()))
}

/// Random bytes from the OS, URL-safe base64 without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = Zeroizing::new(vec![0u8; bytes]);
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf.as_slice())
}

/// SHA-256 as lowercase hex: how bearer secrets (session and API tokens) are stored.
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_string_never_prints() {
        let s = SecretString::new("hunter2-hunter2".into());
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
    }

    #[test]
    fn seal_roundtrip_and_context_binding() {
        let key = MasterKey::from_bytes([7u8; 32]);
        let sealed = key.seal(b"totp-seed", "accounts.totp:1").unwrap();
        assert!(sealed.starts_with(key.id()));
        assert_eq!(key.open(&sealed, "accounts.totp:1").unwrap().as_slice(), b"totp-seed");
        assert!(key.open(&sealed, "accounts.totp:2").is_err());
        let other = MasterKey::from_bytes([8u8; 32]);
        assert!(other.open(&sealed, "accounts.totp:1").is_err());
    }

    #[test]
    fn generated_key_file_is_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets/master.key");
        let (k1, src) = MasterKey::load_or_generate(&path, true).unwrap();
        assert_eq!(src, KeySource::Generated);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (k2, src) = MasterKey::load_or_generate(&path, true).unwrap();
        assert_eq!(src, KeySource::Loaded);
        assert_eq!(k1.id(), k2.id());
    }
}
