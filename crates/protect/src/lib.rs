//! Personal-data protection: field-level envelope encryption (AES-256-GCM data keys sealed
//! under the master key; every ciphertext names its key), keyed blind indexes for equality
//! lookup, key rotation, and masking policy as data.

pub mod backup;
mod store;

use kernel::audit::{Action, Outcome};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::Serialize;
use sqlx::AnyConnection;
use zeroize::Zeroizing;

use kernel::db::{Db, from_millis, millis, new_id};
use kernel::secrets::MasterKey;

/// How long a node trusts its idea of the active data key before asking the database again
/// (after `keys rotate` elsewhere, new values use the new key within this time).
const ACTIVE_KEY_REFRESH: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("a ciphertext is malformed or does not belong here")]
    Ciphertext,
    #[error("data key {0} is unknown")]
    UnknownKey(String),
    #[error("data key {0} is still in use")]
    KeyInUse(String),
    #[error("there is no active data key (start-up creates one)")]
    NoActiveKey,
    #[error("cannot seal or open a data key: {0}")]
    Master(#[from] kernel::secrets::SecretError),
}

type DataKey = Arc<Zeroizing<[u8; 32]>>;

struct Inner {
    db: Db,
    master: MasterKey,
    keys: Mutex<HashMap<String, DataKey>>,
    /// The active data key, ready to seal with, and when it was read: sealing needs no
    /// database round trip while it is fresh.
    active: Mutex<Option<(Arc<Sealer>, Instant)>>,
    /// HMAC-SHA-256 keyed once with the blind-index key; each index starts from a copy.
    blind_index: Hmac<sha2::Sha256>,
    policy: Mutex<Option<Arc<MaskingPolicy>>>,
}

/// Encrypts, decrypts, indexes and masks personal data. Cheap to clone.
#[derive(Clone)]
pub struct Protector {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Protector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Protector")
    }
}

/// HMAC-SHA-256 under a 32-byte key. HMAC pads a key shorter than the hash's 64-byte block
/// with zeros, so keying with the padded block is the same MAC, and cannot fail.
fn blind_index_mac(key: &[u8; 32]) -> Hmac<sha2::Sha256> {
    let mut block = Zeroizing::new([0u8; 64]);
    for (b, k) in block.iter_mut().zip(key) {
        *b = *k;
    }
    <Hmac<sha2::Sha256> as KeyInit>::new(&(*block).into())
}

fn wrap_context(id: &str) -> String {
    format!("data_keys:{id}")
}

impl Protector {
    pub fn new(db: Db, master: MasterKey) -> Protector {
        let blind_index = blind_index_mac(&master.derive("blind-index"));
        Protector {
            inner: Arc::new(Inner {
                db,
                master,
                keys: Mutex::new(HashMap::new()),
                active: Mutex::new(None),
                blind_index,
                policy: Mutex::new(None),
            }),
        }
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A data key by id: from the cache, else read through `c` (the caller's connection, so
    /// that a transaction never waits for a second pooled connection).
    async fn key(&self, c: &mut AnyConnection, id: &str) -> Result<DataKey, Error> {
        if let Some(k) = Self::lock(&self.inner.keys).get(id) {
            return Ok(k.clone());
        }
        let wrapped = store::wrapped_key(c, id).await?.ok_or_else(|| Error::UnknownKey(id.to_string()))?;
        let raw = self.inner.master.open(&wrapped, &wrap_context(id))?;
        let key: [u8; 32] = raw.as_slice().try_into().map_err(|_| Error::UnknownKey(id.to_string()))?;
        let key = Arc::new(Zeroizing::new(key));
        Self::lock(&self.inner.keys).insert(id.to_string(), key.clone());
        Ok(key)
    }

    /// The id of the master key that wraps the data keys.
    pub fn master_key_id(&self) -> &str {
        self.inner.master.id()
    }

    /// Creates the first data key if there is none. Called at start-up, before anything is
    /// sealed: creating a key inside a caller's transaction would wait on that transaction.
    pub async fn ensure_key(&self, now: DateTime<Utc>) -> Result<String, Error> {
        let mut c = self.inner.db.pool.acquire().await?;
        match store::active_key(&mut c).await? {
            Some(id) => Ok(id),
            None => {
                drop(c);
                self.create_key(now).await
            }
        }
    }

    /// The key new values are sealed with.
    pub async fn active_key_id(&self) -> Result<String, Error> {
        if let Some(sealer) = self.cached_sealer() {
            return Ok(sealer.id.clone());
        }
        let mut c = self.inner.db.pool.acquire().await?;
        Ok(self.sealer_in(&mut c).await?.id.clone())
    }

    fn cached_sealer(&self) -> Option<Arc<Sealer>> {
        Self::lock(&self.inner.active)
            .as_ref()
            .filter(|(_, at)| at.elapsed() < ACTIVE_KEY_REFRESH)
            .map(|(sealer, _)| sealer.clone())
    }

    async fn create_key(&self, now: DateTime<Utc>) -> Result<String, Error> {
        let id = new_id();
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        let wrapped = self.inner.master.seal(key.as_ref(), &wrap_context(&id))?;
        let mut tx = self.inner.db.begin().await?;
        store::insert_key(&mut tx, &id, &wrapped, millis(now)).await?;
        let mut entry = ledger::Entry::new(Action::DataKeyCreated, Outcome::Success, now);
        entry.object = Some(format!("data_key:{id}"));
        ledger::append_in(&mut tx, ledger::Log::Audit, &entry).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Seals `plain` under the active data key, bound to `context` (table, column, row).
    pub async fn seal(&self, plain: &str, context: &str) -> Result<String, Error> {
        if let Some(sealer) = self.cached_sealer() {
            return sealer.seal(plain, context);
        }
        let mut c = self.inner.db.pool.acquire().await?;
        self.seal_in(&mut c, plain, context).await
    }

    /// [`Protector::seal`] inside the caller's transaction.
    pub async fn seal_in(&self, c: &mut AnyConnection, plain: &str, context: &str) -> Result<String, Error> {
        self.sealer_in(c).await?.seal(plain, context)
    }

    /// The active data key, to seal many values without touching the database again (bulk
    /// imports seal on a worker thread while the previous batch is written).
    pub async fn sealer_in(&self, c: &mut AnyConnection) -> Result<Arc<Sealer>, Error> {
        if let Some(sealer) = self.cached_sealer() {
            return Ok(sealer);
        }
        let id = store::active_key(c).await?.ok_or(Error::NoActiveKey)?;
        self.activate(c, id).await
    }

    /// Makes this data key the one new values are sealed with, on this node.
    async fn activate(&self, c: &mut AnyConnection, id: String) -> Result<Arc<Sealer>, Error> {
        let key = self.key(c, &id).await?;
        let cipher = Aes256Gcm::new_from_slice(key.as_ref().as_ref()).map_err(|_| Error::Ciphertext)?;
        let sealer = Arc::new(Sealer { id, cipher });
        *Self::lock(&self.inner.active) = Some((sealer.clone(), Instant::now()));
        Ok(sealer)
    }

    /// Opens a value sealed by [`Protector::seal`] for the same `context`.
    pub async fn open(&self, sealed: &str, context: &str) -> Result<Zeroizing<String>, Error> {
        let mut c = self.inner.db.pool.acquire().await?;
        self.open_in(&mut c, sealed, context).await
    }

    /// [`Protector::open`] inside the caller's transaction.
    pub async fn open_in(
        &self,
        c: &mut AnyConnection,
        sealed: &str,
        context: &str,
    ) -> Result<Zeroizing<String>, Error> {
        let (id, body) = sealed.split_once(':').ok_or(Error::Ciphertext)?;
        let key = self.key(c, id).await?;
        let raw = B64.decode(body).map_err(|_| Error::Ciphertext)?;
        if raw.len() < 12 {
            return Err(Error::Ciphertext);
        }
        let (nonce, ct) = raw.split_at(12);
        let cipher = Aes256Gcm::new_from_slice(key.as_ref().as_ref()).map_err(|_| Error::Ciphertext)?;
        let plain = Zeroizing::new(
            cipher
                .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: context.as_bytes() })
                .map_err(|_| Error::Ciphertext)?,
        );
        String::from_utf8(plain.to_vec()).map(Zeroizing::new).map_err(|_| Error::Ciphertext)
    }

    /// The key id a sealed value names.
    pub fn key_of(sealed: &str) -> Option<&str> {
        sealed.split_once(':').map(|(id, _)| id)
    }

    /// A keyed blind index: equal values give equal indexes, and without the key an index
    /// says nothing about its value. `field` separates domains (an ID number and a mobile
    /// never collide).
    pub fn blind_index(&self, field: &str, value: &str) -> String {
        let mut mac = self.inner.blind_index.clone();
        mac.update(field.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Starts a rotation: a new data key becomes active at once (on other nodes within
    /// seconds); re-encrypting existing values is the callers' job, table by table.
    pub async fn rotate(&self, now: DateTime<Utc>) -> Result<String, Error> {
        let id = self.create_key(now).await?;
        let mut c = self.inner.db.pool.acquire().await?;
        self.activate(&mut c, id.clone()).await?;
        Ok(id)
    }

    /// Retires a key that no ciphertext uses any more (`in_use` is the owners' count).
    pub async fn retire(&self, id: &str, in_use: i64, now: DateTime<Utc>) -> Result<(), Error> {
        if in_use > 0 || self.active_key_id().await? == id {
            return Err(Error::KeyInUse(id.to_string()));
        }
        let mut tx = self.inner.db.begin().await?;
        store::retire_key(&mut tx, id, millis(now)).await?;
        let mut entry = ledger::Entry::new(Action::DataKeyRetired, Outcome::Success, now);
        entry.object = Some(format!("data_key:{id}"));
        ledger::append_in(&mut tx, ledger::Log::Audit, &entry).await?;
        tx.commit().await?;
        Self::lock(&self.inner.keys).remove(id);
        Ok(())
    }

    pub async fn keys(&self) -> Result<Vec<KeyInfo>, Error> {
        let mut c = self.inner.db.pool.acquire().await?;
        Ok(store::keys(&mut c)
            .await?
            .into_iter()
            .map(|(id, created, retired)| KeyInfo {
                id,
                created_at: from_millis(created),
                retired_at: retired.map(from_millis),
            })
            .collect())
    }

    /// The masking policy (cached: policies change rarely, and by migration or admin action).
    pub async fn policy(&self) -> Result<Arc<MaskingPolicy>, Error> {
        if let Some(p) = Self::lock(&self.inner.policy).as_ref() {
            return Ok(p.clone());
        }
        let mut c = self.inner.db.pool.acquire().await?;
        let masks = store::field_masks(&mut c).await?;
        let rules = store::unmasking_rules(&mut c).await?;
        let policy = Arc::new(MaskingPolicy {
            masks: masks.into_iter().filter_map(|(f, m)| Mask::parse(&m).map(|m| (f, m))).collect(),
            plain: rules.into_iter().collect(),
        });
        *Self::lock(&self.inner.policy) = Some(policy.clone());
        Ok(policy)
    }
}

/// Seals values under one data key. See [`Protector::sealer_in`].
pub struct Sealer {
    id: String,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer({})", self.id)
    }
}

impl Sealer {
    /// The id of the data key values are sealed with.
    pub fn key_id(&self) -> &str {
        &self.id
    }

    /// Seals `plain`, bound to `context`, as `key-id:base64(nonce || ciphertext)`. The
    /// random nonce comes from the thread's CSPRNG (ChaCha, seeded and reseeded from the OS):
    /// a system call per value would cost more than the encryption.
    pub fn seal(&self, plain: &str, context: &str) -> Result<String, Error> {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain.as_bytes(), aad: context.as_bytes() })
            .map_err(|_| Error::Ciphertext)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(format!("{}:{}", self.id, B64.encode(out)))
    }
}

#[derive(Debug, Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mask {
    /// 110105********1234
    IdNumber,
    /// 138****5678
    Mobile,
    /// 张*
    Name,
    /// the first six characters, then ***
    Address,
    Full,
}

impl Mask {
    pub fn parse(s: &str) -> Option<Mask> {
        match s {
            "id_number" => Some(Mask::IdNumber),
            "mobile" => Some(Mask::Mobile),
            "name" => Some(Mask::Name),
            "address" => Some(Mask::Address),
            "full" => Some(Mask::Full),
            _ => None,
        }
    }

    pub fn apply(self, value: &str) -> String {
        let chars: Vec<char> = value.chars().collect();
        let keep = |head: usize, tail: usize| -> String {
            if chars.len() <= head + tail {
                return "*".repeat(chars.len());
            }
            let h: String = chars.iter().take(head).collect();
            let t: String = chars.iter().skip(chars.len() - tail).collect();
            format!("{h}{}{t}", "*".repeat(chars.len() - head - tail))
        };
        match self {
            Mask::IdNumber => keep(6, 4),
            Mask::Mobile => keep(3, 4),
            Mask::Name => match chars.split_first() {
                Some((first, rest)) if !rest.is_empty() => format!("{first}{}", "*".repeat(rest.len())),
                _ => "*".repeat(chars.len()),
            },
            Mask::Address => {
                let head: String = chars.iter().take(6).collect();
                if chars.len() > 6 { format!("{head}***") } else { "*".repeat(chars.len()) }
            }
            Mask::Full => "*".repeat(chars.len().max(1)),
        }
    }
}

/// Per field a mask, and the roles that may see it plain (with a stated purpose).
#[derive(Debug)]
pub struct MaskingPolicy {
    masks: HashMap<String, Mask>,
    plain: HashSet<(String, String)>,
}

impl MaskingPolicy {
    /// Whether any of `roles` may see `field` plain.
    pub fn may_unmask(&self, field: &str, roles: &[String]) -> bool {
        roles.iter().any(|r| self.plain.contains(&(field.to_string(), r.clone())))
    }

    /// The value as `roles` see it: plain when `unmask` is asked and allowed, else masked.
    /// Unknown fields are fully masked (deny by default).
    pub fn show(&self, field: &str, value: &str, roles: &[String], unmask: bool) -> String {
        if unmask && self.may_unmask(field, roles) {
            return value.to_string();
        }
        self.masks.get(field).copied().unwrap_or(Mask::Full).apply(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blind indexes already stored must still be found: the pre-keyed MAC is the MAC of
    /// the 32-byte key.
    #[test]
    fn the_prekeyed_blind_index_is_the_same_mac() {
        let key = [7u8; 32];
        let mut once = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).unwrap();
        once.update(b"id_number\x00110105194912310021");
        let mut prekeyed = blind_index_mac(&key).clone();
        prekeyed.update(b"id_number\x00110105194912310021");
        assert_eq!(once.finalize().into_bytes(), prekeyed.finalize().into_bytes());
    }

    #[test]
    fn masks() {
        assert_eq!(Mask::IdNumber.apply("110105194912310021"), "110105********0021");
        assert_eq!(Mask::Mobile.apply("13812345678"), "138****5678");
        assert_eq!(Mask::Name.apply("张三"), "张*");
        assert_eq!(Mask::Name.apply("欧阳娜娜"), "欧***");
        assert_eq!(Mask::Name.apply("王"), "*");
        assert_eq!(Mask::Address.apply("春城市明月区东风街道和平社区12号"), "春城市明月区***");
        assert_eq!(Mask::Mobile.apply("123"), "***");
        assert_eq!(Mask::Full.apply(""), "*");
    }

    #[test]
    fn policy_is_deny_by_default() {
        let p = MaskingPolicy {
            masks: [("resident.mobile".to_string(), Mask::Mobile)].into_iter().collect(),
            plain: [("resident.mobile".to_string(), "window_clerk".to_string())].into_iter().collect(),
        };
        let clerk = vec!["window_clerk".to_string()];
        let worker = vec!["community_worker".to_string()];
        assert_eq!(p.show("resident.mobile", "13812345678", &clerk, true), "13812345678");
        assert_eq!(p.show("resident.mobile", "13812345678", &clerk, false), "138****5678");
        assert_eq!(p.show("resident.mobile", "13812345678", &worker, true), "138****5678");
        assert_eq!(p.show("resident.unknown", "secret", &clerk, true), "******");
    }
}
