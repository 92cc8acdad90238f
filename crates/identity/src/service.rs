//! The identity service: every operation on accounts, sessions and tokens.

mod accounts;
mod my_data;
mod organisation;
mod people;
mod sessions;
mod settings;
mod sign_in;
mod trail;
mod views;

pub use accounts::Accounts;
pub use my_data::OwnData;
pub use organisation::Organisation;
pub use people::People;
pub use sessions::Sessions;
pub use settings::Settings;
pub use sign_in::SignIn;
pub use trail::Trail;
pub use views::*;

use kernel::audit::{Action, Outcome};
use kernel::error::ErrorCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AnyConnection;

use super::repo::{self, Credentials, SessionRow};
use super::{
    AccountKind, Capability, Denial, DepartmentRef, Error, Principal, RegionLevel, RegionRef, ids, mfa, password,
};
use crate::SessionPolicy;
use kernel::authz::{
    AccountCreate, EnterpriseRead, OrganisationManage, OrganisationRead, ResidentRead,
    RoleGrant as RoleGrantPermission, SecurityEventRead,
};
use kernel::db::{Db, from_millis, millis, new_id};
use kernel::secrets::{MasterKey, SecretString, random_token, sha256_hex};
use protect::{self, Protector};

/// Failures before an account is locked, and before a source address is.
const ACCOUNT_THRESHOLD: i64 = 5;
const SOURCE_THRESHOLD: i64 = 20;
/// First lock lasts this long; each further failure doubles it, up to the cap.
const LOCK_BASE_SECS: i64 = 30;
const LOCK_CAP_SECS: i64 = 3600;
/// Failures older than this no longer count.
const FAILURE_WINDOW_SECS: i64 = 3600;
/// How long a password-accepted sign-in waits for its second factor.
const PENDING_SIGN_IN_SECS: i64 = 300;
/// Sessions record activity at most this often (saves a write per request).
const TOUCH_EVERY_MS: i64 = 60_000;

#[derive(Clone, Debug)]
pub struct Identity {
    db: Db,
    key: MasterKey,
    policy: SessionPolicy,
    tokens: Arc<TokenCache>,
    protector: Protector,
}

/// Verified API tokens, reused for `policy.auth_cache` so that a busy API client does not
/// cost a database round trip per request. Every revocation path on this node forgets the
/// affected entries at once; other nodes notice within the cache time.
#[derive(Debug, Default)]
struct TokenCache {
    entries: Mutex<HashMap<String, CachedToken>>,
}

#[derive(Debug)]
struct CachedToken {
    principal: Principal,
    cached_at: i64,
    expires_at: i64,
}

/// Bounds memory; a full cache is simply emptied.
const TOKEN_CACHE_LIMIT: usize = 10_000;

impl TokenCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedToken>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get(&self, hash: &str, now: i64, ttl_ms: i64) -> Option<Principal> {
        let entries = self.lock();
        let e = entries.get(hash)?;
        (now < e.expires_at && now - e.cached_at < ttl_ms && now >= e.cached_at).then(|| e.principal.clone())
    }

    fn put(&self, hash: String, principal: Principal, now: i64, expires_at: i64) {
        let mut entries = self.lock();
        if entries.len() >= TOKEN_CACHE_LIMIT {
            entries.clear();
        }
        entries.insert(hash, CachedToken { principal, cached_at: now, expires_at });
    }

    fn forget(&self, hash: &str) {
        self.lock().remove(hash);
    }

    fn forget_account(&self, account_id: &str) {
        self.lock().retain(|_, e| e.principal.account_id != account_id);
    }
}

/// One security event about to be recorded.
struct Event<'a> {
    kind: Action,
    outcome: Outcome,
    account_id: Option<&'a str>,
    username: Option<&'a str>,
    source: Option<&'a str>,
    object: Option<&'a str>,
    detail: Option<&'a str>,
    /// The person the data is about.
    subject: Option<&'a str>,
    jurisdiction: Option<&'a str>,
    purpose: Option<&'a str>,
}

impl<'a> Event<'a> {
    fn new(kind: Action, outcome: Outcome) -> Event<'a> {
        Event {
            kind,
            outcome,
            account_id: None,
            username: None,
            source: None,
            object: None,
            detail: None,
            subject: None,
            jurisdiction: None,
            purpose: None,
        }
    }
    fn account(mut self, id: &'a str) -> Self {
        self.account_id = Some(id);
        self
    }
    fn username(mut self, u: &'a str) -> Self {
        self.username = Some(u);
        self
    }
    fn source(mut self, s: &'a str) -> Self {
        self.source = Some(s);
        self
    }
    fn object(mut self, o: &'a str) -> Self {
        self.object = Some(o);
        self
    }
    fn detail(mut self, d: &'a str) -> Self {
        self.detail = Some(d);
        self
    }
    fn subject(mut self, s: &'a str) -> Self {
        self.subject = Some(s);
        self
    }
    fn jurisdiction(mut self, path: &'a str) -> Self {
        self.jurisdiction = Some(path);
        self
    }
    fn purpose(mut self, p: &'a str) -> Self {
        self.purpose = Some(p);
        self
    }
}

/// At most `n` characters: what a client typed must not fill the permanent record.
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { format!("{}…", s.chars().take(n).collect::<String>()) }
}

/// Writes the event to the `audit` ledger, in the caller's transaction.
async fn record(c: &mut AnyConnection, e: Event<'_>, now: DateTime<Utc>) -> Result<(), Error> {
    let mut entry = ledger::Entry::new(e.kind, e.outcome, now);
    entry.actor = e.account_id.map(Into::into);
    entry.actor_name = e.username.map(|u| clip(u, 64));
    entry.source = e.source.map(|s| clip(s, 64));
    entry.object = e.object.map(|o| clip(o, 200));
    entry.detail = e.detail.map(|d| clip(d, 2000));
    entry.subject = e.subject.map(Into::into);
    entry.jurisdiction = e.jurisdiction.map(Into::into);
    entry.purpose = e.purpose.map(Into::into);
    ledger::append(c, ledger::Log::Audit, &entry).await?;
    Ok(())
}

fn account_key(username: &str) -> String {
    format!("account:{}", username.trim().to_lowercase())
}

fn source_key(source: &str) -> String {
    format!("source:{source}")
}

fn totp_context(account_id: &str) -> String {
    format!("accounts.totp_secret:{account_id}")
}

fn lock_duration_ms(failures: i64, threshold: i64) -> i64 {
    let over = u32::try_from((failures - threshold).clamp(0, 20)).unwrap_or(20);
    LOCK_BASE_SECS.saturating_mul(2i64.saturating_pow(over)).min(LOCK_CAP_SECS) * 1000
}

fn valid_username(u: &str) -> bool {
    let bytes = u.as_bytes();
    (3..=64).contains(&bytes.len())
        && bytes.first().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b))
}

async fn hash_password(password: SecretString) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::Internal(e.to_string()))
}

async fn verify_password(password: SecretString, phc: Option<String>) -> Result<bool, Error> {
    tokio::task::spawn_blocking(move || {
        // Unknown users and password-less accounts cost the same as a wrong password.
        let ok = password::verify(&password, phc.as_deref().unwrap_or(password::decoy_hash()));
        ok && phc.is_some()
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))
}

impl Identity {
    pub fn new(db: Db, key: MasterKey, policy: SessionPolicy) -> Identity {
        let protector = Protector::new(db.clone(), key.clone());
        Identity { db, key, policy, tokens: Arc::new(TokenCache::default()), protector }
    }

    /// The encryption and masking service this module seals residents' identifiers with.
    pub fn protector(&self) -> &Protector {
        &self.protector
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The CSRF token for forms of a browser holding this session cookie: bound to the
    /// session, so a cookie planted by a sibling site cannot supply a matching one.
    pub fn form_token(&self, session_cookie: &str) -> String {
        use hmac::{Hmac, Mac};
        let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(self.key.derive("csrf").as_ref()) else {
            return String::new();
        };
        mac.update(session_cookie.as_bytes());
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, mac.finalize().into_bytes())
    }

    fn recovery_code_hash(&self, code: &str) -> String {
        mfa::recovery_code_hash(&self.key.derive("recovery-codes"), code)
    }

    pub fn policy(&self) -> &SessionPolicy {
        &self.policy
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, Error> {
        Ok(self.db.pool.acquire().await?)
    }

    // --- sign-in -------------------------------------------------------------------------

    /// How much longer this throttle key stays locked, in milliseconds (0: not locked).
    async fn lock_wait(&self, c: &mut AnyConnection, key: &str, now: DateTime<Utc>) -> Result<i64, Error> {
        Ok((repo::locked_until(c, key).await? - millis(now)).max(0))
    }

    /// Refuses, and records the refusal, while `wait_ms` is left of a lock.
    async fn refuse_if_locked(
        &self,
        c: &mut AnyConnection,
        wait_ms: i64,
        username: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        if wait_ms <= 0 {
            return Ok(());
        }
        Err(self.locked(c, wait_ms, username, source, now).await)
    }

    /// The refusal of a sign-in while a lock lasts, recorded.
    async fn locked(
        &self,
        c: &mut AnyConnection,
        wait_ms: i64,
        username: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Error {
        let e = Event::new(Action::SignIn, Outcome::Denied).username(username).source(source).detail("locked");
        if let Err(e) = record(c, e, now).await {
            return e;
        }
        Error::Locked { retry_after_secs: u64::try_from((wait_ms + 999) / 1000).unwrap_or(1) }
    }

    /// The known-device token for a browser that signed in fully to this account.
    pub(crate) fn known_device(&self, account_id: &str, now: DateTime<Utc>) -> Option<SecretString> {
        crate::device::issue(&self.key.derive("known-devices"), account_id, now).map(SecretString::new)
    }

    /// Counts a failure against the account and the source, locking either past its
    /// threshold, and records it.
    async fn fail(
        &self,
        c: &mut AnyConnection,
        account_id: Option<&str>,
        username: &str,
        source: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let now_ms = millis(now);
        for (key, threshold) in [(account_key(username), ACCOUNT_THRESHOLD), (source_key(source), SOURCE_THRESHOLD)] {
            let failures = repo::count_failure(c, &key, now_ms, now_ms - FAILURE_WINDOW_SECS * 1000).await?;
            if failures >= threshold {
                repo::lock_until(c, &key, now_ms + lock_duration_ms(failures, threshold)).await?;
                let mut e =
                    Event::new(Action::Lockout, Outcome::Success).username(username).source(source).object(&key);
                if let Some(id) = account_id {
                    e = e.account(id);
                }
                record(c, e, now).await?;
            }
        }
        let mut e = Event::new(Action::SignIn, Outcome::Failure).username(username).source(source).detail(reason);
        if let Some(id) = account_id {
            e = e.account(id);
        }
        record(c, e, now).await
    }

    async fn succeed(
        &self,
        c: &mut AnyConnection,
        creds: &Credentials,
        source: &str,
        how: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        repo::clear_throttle(c, &account_key(&creds.username)).await?;
        record(
            c,
            Event::new(Action::SignIn, Outcome::Success)
                .account(&creds.id)
                .username(&creds.username)
                .source(source)
                .detail(how),
            now,
        )
        .await
    }

    /// Throttle check and password verification. No database connection is held while
    /// argon2 runs, so a burst of sign-ins cannot starve the pool.
    ///
    /// A locked account refuses everyone. A locked source (too many failures from one
    /// address) does not refuse the right password for an account that has a second factor
    /// still to pass, nor for one this browser has signed in to before: an attacker at a
    /// shared address cannot lock out the people behind it. The password is checked either
    /// way, so the answer does not tell which accounts have a second factor.
    async fn check_password(&self, attempt: &SignInAttempt<'_>, now: DateTime<Utc>) -> Result<Credentials, Error> {
        // No username is longer than 64 characters; a longer one (a password typed in the
        // wrong box, say) is recorded clipped and goes no further.
        let username: String = attempt.username.trim().to_lowercase().chars().take(65).collect();
        let (creds, source_wait) = {
            let mut c = self.conn().await?;
            let account_wait = self.lock_wait(&mut c, &account_key(&username), now).await?;
            self.refuse_if_locked(&mut c, account_wait, &username, attempt.source, now).await?;
            let source_wait = self.lock_wait(&mut c, &source_key(attempt.source), now).await?;
            (repo::credentials_by_username(&mut c, &username).await?, source_wait)
        };
        let phc = creds.as_ref().and_then(|c| c.password_hash.clone());
        let right = verify_password(attempt.password.clone(), phc).await?;
        let mut c = self.conn().await?;
        if right && let Some(creds) = creds {
            let known = attempt.device.is_some_and(|d| {
                let key = self.key.derive("known-devices");
                crate::device::holds(&key, d, &creds.id, creds.devices_valid_after, now)
            });
            if source_wait == 0 || known || creds.totp_secret.is_some() {
                return Ok(creds);
            }
            // The right password from a locked source, with nothing more to show: refused
            // until the lock ends, but not counted as a failure.
            return Err(self.locked(&mut c, source_wait, &username, attempt.source, now).await);
        }
        self.fail(&mut c, creds.as_ref().map(|c| c.id.as_str()), &username, attempt.source, "bad_password", now)
            .await?;
        self.refuse_if_locked(&mut c, source_wait, &username, attempt.source, now).await?;
        Err(Error::InvalidCredentials)
    }

    /// Verifies a TOTP code (refusing a replayed step) or consumes a recovery code.
    async fn check_code(
        &self,
        c: &mut AnyConnection,
        creds: &Credentials,
        code: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let Some(sealed) = creds.totp_secret.as_deref() else { return Err(Error::InvalidCode) };
        let secret = self.key.open(sealed, &totp_context(&creds.id)).map_err(|e| Error::Internal(e.to_string()))?;
        let totp = mfa::totp(&secret, &creds.username).map_err(|e| Error::Internal(e.to_string()))?;
        let unix = u64::try_from(now.timestamp()).unwrap_or(0);
        if let Some(step) = mfa::verify(&totp, code, unix) {
            let step = i64::try_from(step).unwrap_or(i64::MAX);
            if step > creds.totp_last_step && repo::claim_totp_step(c, &creds.id, step).await? {
                return Ok(());
            }
            // The right code a second time (a replay, or a second tap): recorded, and
            // answered as such, but it is no guess and counts towards no lockout.
            let e = Event::new(Action::SignIn, Outcome::Failure)
                .account(&creds.id)
                .username(&creds.username)
                .source(source)
                .detail("code_reused");
            record(c, e, now).await?;
            return Err(Error::CodeReused);
        }
        if repo::use_recovery_code(c, &creds.id, &self.recovery_code_hash(code), millis(now)).await? {
            let e = Event::new(Action::RecoveryCodeUsed, Outcome::Success)
                .account(&creds.id)
                .username(&creds.username)
                .source(source);
            return record(c, e, now).await;
        }
        self.fail(c, Some(&creds.id), &creds.username, source, "bad_code", now).await?;
        Err(Error::InvalidCode)
    }

    async fn create_session(
        &self,
        c: &mut AnyConnection,
        account_id: &str,
        stage: &str,
        source: &str,
        user_agent: &str,
        now: DateTime<Utc>,
    ) -> Result<SecretString, Error> {
        let token = SecretString::new(random_token(32));
        let now_ms = millis(now);
        let lifetime_ms = if stage == "mfa" {
            PENDING_SIGN_IN_SECS * 1000
        } else {
            i64::try_from(self.policy.absolute.as_millis()).unwrap_or(i64::MAX)
        };
        let ua: String = user_agent.chars().take(200).collect();
        repo::insert_session(
            c,
            &sha256_hex(token.expose()),
            &SessionRow {
                id: new_id(),
                account_id: account_id.into(),
                stage: stage.into(),
                created_at: now_ms,
                last_seen_at: now_ms,
                expires_at: now_ms.saturating_add(lifetime_ms),
                source: source.into(),
                user_agent: ua,
            },
        )
        .await?;
        Ok(token)
    }

    async fn principal(&self, c: &mut AnyConnection, account_id: &str) -> Result<(Principal, repo::AccountRow), Error> {
        let account = repo::account(c, account_id).await?.ok_or(Error::Unauthenticated)?;
        let roles = repo::roles_of(c, account_id).await?;
        Ok((principal_of(account.clone(), roles), account))
    }

    async fn deny<P: super::Permission>(
        &self,
        c: &mut AnyConnection,
        cap: &Capability<P>,
        object: &str,
        subject: Option<&str>,
        denial: Denial,
        now: DateTime<Utc>,
    ) -> Error {
        let detail = format!("{}: {denial}", P::CODE);
        let mut event = Event::new(Action::Access, Outcome::Denied)
            .account(cap.account_id())
            .username(cap.username())
            .object(object)
            .detail(&detail);
        if let Some(s) = subject {
            event = event.subject(s);
        }
        match record(c, event, now).await {
            Ok(()) => Error::Denied(denial),
            Err(e) => e,
        }
    }

    /// Signing in: password and second factor, browser sessions opened, API tokens issued.
    pub fn sign_in(&self) -> SignIn<'_> {
        SignIn(self)
    }

    /// Open browser sessions and API tokens: who is calling, signing out, revocation.
    pub fn sessions(&self) -> Sessions<'_> {
        Sessions(self)
    }

    /// What people set on their own account: password, authenticator, preferences, the address for notifications.
    pub fn settings(&self) -> Settings<'_> {
        Settings(self)
    }

    /// Regions (province to grid) and departments, and who holds which post.
    pub fn organisation(&self) -> Organisation<'_> {
        Organisation(self)
    }

    /// Creating accounts and granting or revoking roles (separated duties), and their display names.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts(self)
    }

    /// Residents and enterprises as staff see them, within jurisdiction and clearance, every read on the audit trail; what services prefill from.
    pub fn people(&self) -> People<'_> {
        People(self)
    }

    /// 我的数据: a person's own data, who used it and why, and their requests to correct it.
    pub fn my_data(&self) -> OwnData<'_> {
        OwnData(self)
    }

    /// The security trail: refusals recorded, and the events auditors read.
    pub fn trail(&self) -> Trail<'_> {
        Trail(self)
    }
}

fn principal_of(account: repo::AccountRow, roles: Vec<super::HeldRole>) -> Principal {
    Principal::new(
        account.id,
        account.username,
        account.display_name,
        account.kind,
        account.region,
        account.department,
        roles,
    )
}

/// The AEAD context of a citizen's sealed field: a ciphertext copied to another row or
/// column does not open.
fn citizen_context(field: &str, account_id: &str) -> String {
    format!("citizens.{field}:{account_id}")
}

/// A purpose for seeing plain personal data: stated in words, not blank, not an essay.
fn stated_purpose(purpose: Option<&str>) -> Result<Option<&str>, Error> {
    match purpose.map(str::trim) {
        None => Ok(None),
        Some("") => Err(Error::invalid("purpose", "state why the plain value is needed")),
        Some(p) if p.chars().count() > 200 => Err(Error::invalid("purpose", "at most 200 characters")),
        Some(p) => Ok(Some(p)),
    }
}

fn protect_error(e: protect::Error) -> Error {
    match e {
        protect::Error::Storage(s) => Error::Storage(s),
        other => Error::Internal(other.to_string()),
    }
}

/// A resident's sealed fields, opened; zeroized when dropped.
struct OpenResident {
    id_number: zeroize::Zeroizing<String>,
    mobile: zeroize::Zeroizing<String>,
    address: Option<zeroize::Zeroizing<String>>,
}

async fn open_resident(p: &Protector, c: &mut AnyConnection, r: &repo::ResidentRow) -> Result<OpenResident, Error> {
    let id = &r.account_id;
    Ok(OpenResident {
        id_number: p.open_in(c, &r.id_number_enc, &citizen_context("id_number", id)).await.map_err(protect_error)?,
        mobile: p.open_in(c, &r.mobile_enc, &citizen_context("mobile", id)).await.map_err(protect_error)?,
        address: match &r.address_enc {
            Some(a) => Some(p.open_in(c, a, &citizen_context("address", id)).await.map_err(protect_error)?),
            None => None,
        },
    })
}

/// The record as `roles` may see it: masked, or plain where policy allows and `unmask` asks.
fn resident_view(
    r: repo::ResidentRow,
    open: &OpenResident,
    policy: &protect::MaskingPolicy,
    roles: &[String],
    unmask: bool,
) -> ResidentView {
    ResidentView {
        name: policy.show("resident.name", &r.real_name, roles, unmask),
        id_number: policy.show("resident.id_number", &open.id_number, roles, unmask),
        mobile: policy.show("resident.mobile", &open.mobile, roles, unmask),
        address: open.address.as_ref().map(|a| policy.show("resident.address", a, roles, unmask)),
        masked: !unmask,
        id: r.account_id,
        region: r.region,
    }
}

fn level_of(s: &str) -> Option<RegionLevel> {
    [
        RegionLevel::Province,
        RegionLevel::City,
        RegionLevel::District,
        RegionLevel::Street,
        RegionLevel::Community,
        RegionLevel::Grid,
    ]
    .into_iter()
    .find(|l| l.as_str() == s)
}

fn already_enrolled() -> Error {
    Error::Conflict {
        code: ErrorCode::MfaAlreadyEnrolled,
        message: "two-step verification is already on for this account".into(),
    }
}

fn duty_conflict(role: &str, held: &str) -> Error {
    Error::Conflict {
        code: ErrorCode::DutyConflict,
        message: format!(
            "{role} cannot be combined with {held}: system admin, security admin and auditor are separate duties, \
             each held alone"
        ),
    }
}

fn unique_as(e: sqlx::Error, code: ErrorCode, message: &str) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::Conflict { code, message: message.into() },
        _ => Error::Storage(e),
    }
}

/// The local operator at the console (CLI commands, fixtures, the demo seeder): whoever holds
/// the platform's master key can already open every sealed value, so the console acts
/// platform-wide. Only a holder of the key can make one ([`Identity::console`]); the HTTP
/// layer never holds it.
pub struct Console {
    _held: (),
}

impl Console {
    /// A platform-wide capability for `P`, in the console's name.
    pub fn grant<P: super::Permission>(&self) -> Capability<P> {
        Capability::console()
    }
}

impl Identity {
    /// The console, for the holder of this platform's master key.
    pub fn console(&self, key: &MasterKey) -> Result<Console, Error> {
        if key.id() == self.key.id() {
            Ok(Console { _held: () })
        } else {
            Err(Error::Denied(Denial::Forbidden("console")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_backoff_doubles_and_caps() {
        assert_eq!(lock_duration_ms(5, 5), 30_000);
        assert_eq!(lock_duration_ms(6, 5), 60_000);
        assert_eq!(lock_duration_ms(7, 5), 120_000);
        assert_eq!(lock_duration_ms(50, 5), 3_600_000);
    }

    #[test]
    fn usernames() {
        assert!(valid_username("clerk.mingyue"));
        assert!(!valid_username("Clerk"));
        assert!(!valid_username("ab"));
        assert!(!valid_username(".clerk"));
        assert!(!valid_username("clerk mingyue"));
    }
}
