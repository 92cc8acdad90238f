//! The identity service: every operation on accounts, sessions and tokens.

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

/// The current and the new password, as typed.
#[derive(Clone, Copy)]
pub struct PasswordChange<'a> {
    pub current: &'a SecretString,
    pub new: &'a SecretString,
}

/// What the caller presented at sign-in.
pub struct SignInAttempt<'a> {
    pub username: &'a str,
    pub password: &'a SecretString,
    /// The client address, for per-source throttling and the event trail.
    pub source: &'a str,
}

/// What a full session still has to do before the platform opens up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    Ready,
    MustChangePassword,
    MustEnrolMfa,
}

/// The outcome of a browser sign-in step: a new session cookie value and where to go next.
#[derive(Debug)]
pub struct BrowserSignIn {
    pub token: SecretString,
    pub awaiting_code: bool,
}

/// A live, fully signed-in browser session.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub principal: Principal,
    pub gate: Gate,
    pub locale: Option<String>,
    pub elder_mode: bool,
    pub has_totp: bool,
    pub unused_recovery_codes: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionSummary {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub source: String,
    pub user_agent: String,
    pub current: bool,
}

#[derive(Debug)]
pub struct IssuedToken {
    pub token: SecretString,
    pub expires_in: u64,
}

/// An authenticator enrolment in progress.
#[derive(Debug)]
pub struct Enrolment {
    pub uri: String,
    pub secret_base32: String,
    pub qr_svg: String,
}

/// A new account. `password: None` gives staff and system accounts a generated temporary
/// password (which must be changed at first sign-in) and citizens and enterprises none.
#[derive(Debug, Default)]
pub struct NewAccount {
    pub kind: Option<AccountKind>,
    pub username: String,
    pub display_name: String,
    pub password: Option<SecretString>,
    pub must_change_password: bool,
    pub totp_secret: Option<Vec<u8>>,
    pub region_code: Option<String>,
    pub department_code: Option<String>,
    pub profile: Profile,
}

#[derive(Debug, Default)]
pub enum Profile {
    #[default]
    None,
    Citizen {
        real_name: String,
        id_number: String,
        mobile: String,
        address: Option<String>,
    },
    Enterprise {
        name: String,
        credit_code: String,
        legal_representative: String,
    },
}

#[derive(Debug)]
pub struct CreatedAccount {
    pub id: String,
    pub username: String,
    /// Set when the platform generated the password.
    pub temporary_password: Option<SecretString>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResidentView {
    pub id: String,
    /// Masked (张*) unless unmasked with a stated purpose.
    pub name: String,
    /// Masked: 110105********1234.
    pub id_number: String,
    /// Masked: 138****5678.
    pub mobile: String,
    pub address: Option<String>,
    /// false when plain values were shown for a stated purpose (and audited).
    pub masked: bool,
    pub region: RegionRef,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EnterpriseView {
    pub id: String,
    pub name: String,
    pub credit_code: String,
    pub legal_representative: String,
    pub region: RegionRef,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SecurityEvent {
    /// The entry's index in the `audit` ledger (its inclusion proof: /ledger/audit/proof/inclusion).
    pub index: u64,
    /// RFC 3339 UTC.
    pub at: String,
    pub kind: String,
    pub outcome: String,
    pub account_id: Option<String>,
    pub username: Option<String>,
    pub source: Option<String>,
    pub object: Option<String>,
    pub detail: Option<String>,
    pub subject: Option<String>,
    pub request_id: Option<String>,
}

/// 我的数据: what the platform holds about a person and who used it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MyData {
    pub username: String,
    pub display_name: String,
    pub kind: AccountKind,
    /// The resident record, in plain (it is the person's own).
    pub profile: Option<OwnProfile>,
    /// Every recorded access, newest first.
    pub accesses: Vec<DataAccess>,
    pub corrections: Vec<CorrectionView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OwnProfile {
    pub name: String,
    pub id_number: String,
    pub mobile: String,
    pub address: Option<String>,
    pub region: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DataAccess {
    /// Index in the `audit` ledger: `/ledger/audit/proof/inclusion?index=…&size=…` proves it.
    pub index: u64,
    pub at: String,
    pub action: String,
    pub result: String,
    /// The person's own action (a sign-in, a correction request).
    pub by_self: bool,
    /// The staff member, masked (王*).
    pub staff: Option<String>,
    pub department: Option<String>,
    /// The staff member's roles.
    pub post: Option<String>,
    pub purpose: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CorrectionView {
    pub id: String,
    pub field: String,
    /// Shown to the department handling it.
    pub requested: Option<String>,
    pub reason: String,
    pub department: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DepartmentView {
    pub id: String,
    pub code: String,
    pub name: String,
    pub region_name: String,
}

/// What the platform already holds about an applicant (see `Identity::applicant_facts`).
#[derive(Debug, Clone)]
pub struct ApplicantFacts {
    pub account_id: String,
    pub kind: AccountKind,
    pub display_name: String,
    pub region: Option<RegionRef>,
    pub mobile: Option<String>,
    /// They gave an address for notifications by email.
    pub wants_email: bool,
    /// Prefill source → value.
    pub facts: std::collections::BTreeMap<String, serde_json::Value>,
}

/// A department to create: code, name, the region it serves, and its line of work.
#[derive(Debug, Clone, Copy)]
pub struct NewDepartment<'a> {
    pub code: &'a str,
    pub name: &'a str,
    pub region_code: &'a str,
    /// GA 公安, MZ 民政, … (routes data-correction requests).
    pub kind: Option<&'a str>,
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

    async fn ensure_not_locked(
        &self,
        c: &mut AnyConnection,
        keys: &[String],
        username: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let now_ms = millis(now);
        let mut wait_ms = 0;
        for key in keys {
            wait_ms = wait_ms.max(repo::locked_until(c, key).await? - now_ms);
        }
        if wait_ms > 0 {
            record(
                c,
                Event::new(Action::SignIn, Outcome::Denied).username(username).source(source).detail("locked"),
                now,
            )
            .await?;
            let retry_after_secs = u64::try_from((wait_ms + 999) / 1000).unwrap_or(1);
            return Err(Error::Locked { retry_after_secs });
        }
        Ok(())
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

    /// Throttle check and password verification.
    /// Throttle check and password verification. No database connection is held while
    /// argon2 runs, so a burst of sign-ins cannot starve the pool.
    async fn check_password(&self, attempt: &SignInAttempt<'_>, now: DateTime<Utc>) -> Result<Credentials, Error> {
        // No username is longer than 64 characters; a longer one (a password typed in the
        // wrong box, say) is recorded clipped and goes no further.
        let username: String = attempt.username.trim().to_lowercase().chars().take(65).collect();
        let keys = [account_key(&username), source_key(attempt.source)];
        let creds = {
            let mut c = self.conn().await?;
            self.ensure_not_locked(&mut c, &keys, &username, attempt.source, now).await?;
            repo::credentials_by_username(&mut c, &username).await?
        };
        let phc = creds.as_ref().and_then(|c| c.password_hash.clone());
        if verify_password(attempt.password.clone(), phc).await?
            && let Some(creds) = creds
        {
            return Ok(creds);
        }
        let mut c = self.conn().await?;
        self.fail(&mut c, creds.as_ref().map(|c| c.id.as_str()), &username, attempt.source, "bad_password", now)
            .await?;
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
        let accepted = match mfa::verify(&totp, code, unix) {
            Some(step) => {
                let step = i64::try_from(step).unwrap_or(i64::MAX);
                step > creds.totp_last_step && repo::claim_totp_step(c, &creds.id, step).await?
            }
            None => {
                let used = repo::use_recovery_code(c, &creds.id, &self.recovery_code_hash(code), millis(now)).await?;
                if used {
                    record(
                        c,
                        Event::new(Action::RecoveryCodeUsed, Outcome::Success)
                            .account(&creds.id)
                            .username(&creds.username)
                            .source(source),
                        now,
                    )
                    .await?;
                }
                used
            }
        };
        if accepted {
            return Ok(());
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

    /// First browser step: the password. Accounts with an authenticator continue at
    /// [`Identity::complete_sign_in`].
    pub async fn begin_sign_in(
        &self,
        attempt: &SignInAttempt<'_>,
        user_agent: &str,
        now: DateTime<Utc>,
    ) -> Result<BrowserSignIn, Error> {
        let creds = self.check_password(attempt, now).await?;
        let mut c = self.conn().await?;
        if creds.totp_secret.is_some() {
            let token = self.create_session(&mut c, &creds.id, "mfa", attempt.source, user_agent, now).await?;
            return Ok(BrowserSignIn { token, awaiting_code: true });
        }
        self.succeed(&mut c, &creds, attempt.source, "password", now).await?;
        let token = self.create_session(&mut c, &creds.id, "full", attempt.source, user_agent, now).await?;
        Ok(BrowserSignIn { token, awaiting_code: false })
    }

    /// The username a pending (password-accepted) sign-in belongs to.
    pub async fn pending_sign_in(&self, token: &str, now: DateTime<Utc>) -> Result<String, Error> {
        let mut c = self.conn().await?;
        let s = repo::session_by_hash(&mut c, &sha256_hex(token)).await?.ok_or(Error::Unauthenticated)?;
        if s.stage != "mfa" || s.expires_at <= millis(now) {
            return Err(Error::Unauthenticated);
        }
        let creds = repo::credentials_by_id(&mut c, &s.account_id).await?.ok_or(Error::Unauthenticated)?;
        Ok(creds.username)
    }

    /// Second browser step: the code. Replaces the pending session with a full one.
    pub async fn complete_sign_in(
        &self,
        token: &str,
        code: &str,
        source: &str,
        user_agent: &str,
        now: DateTime<Utc>,
    ) -> Result<BrowserSignIn, Error> {
        let mut c = self.conn().await?;
        let s = repo::session_by_hash(&mut c, &sha256_hex(token)).await?.ok_or(Error::Unauthenticated)?;
        if s.stage != "mfa" || s.expires_at <= millis(now) {
            return Err(Error::Unauthenticated);
        }
        let creds = repo::credentials_by_id(&mut c, &s.account_id).await?.ok_or(Error::Unauthenticated)?;
        self.ensure_not_locked(&mut c, &[account_key(&creds.username)], &creds.username, source, now).await?;
        self.check_code(&mut c, &creds, code, source, now).await?;
        repo::revoke_session(&mut c, &creds.id, &s.id, millis(now)).await?;
        self.succeed(&mut c, &creds, source, "password+totp", now).await?;
        let token = self.create_session(&mut c, &creds.id, "full", source, user_agent, now).await?;
        Ok(BrowserSignIn { token, awaiting_code: false })
    }

    /// An account's principal without signing in: for seeding demo data from the console,
    /// never reachable from a request.
    pub async fn console_principal(&self, username: &str) -> Result<Principal, Error> {
        let mut c = self.conn().await?;
        let id = repo::account_id_by_username(&mut c, username).await?.ok_or(Error::NotFound("account"))?;
        Ok(self.principal(&mut c, &id).await?.0)
    }

    async fn principal(&self, c: &mut AnyConnection, account_id: &str) -> Result<(Principal, repo::AccountRow), Error> {
        let account = repo::account(c, account_id).await?.ok_or(Error::Unauthenticated)?;
        let roles = repo::roles_of(c, account_id).await?;
        Ok((principal_of(account.clone(), roles), account))
    }

    /// The signed-in session behind a cookie value; idle and absolute timeouts apply.
    pub async fn session(&self, token: &str, now: DateTime<Utc>) -> Result<Session, Error> {
        let mut c = self.conn().await?;
        let s = repo::session_by_hash(&mut c, &sha256_hex(token)).await?.ok_or(Error::Unauthenticated)?;
        let now_ms = millis(now);
        let idle_ms = i64::try_from(self.policy.idle.as_millis()).unwrap_or(i64::MAX);
        if s.stage != "full" || s.expires_at <= now_ms {
            return Err(Error::Unauthenticated);
        }
        if now_ms - s.last_seen_at > idle_ms {
            repo::revoke_session(&mut c, &s.account_id, &s.id, now_ms).await?;
            return Err(Error::Unauthenticated);
        }
        if now_ms - s.last_seen_at > TOUCH_EVERY_MS {
            repo::touch_session(&mut c, &s.id, now_ms).await?;
        }
        let (principal, account) = self.principal(&mut c, &s.account_id).await?;
        let gate = if account.must_change_password {
            Gate::MustChangePassword
        } else if account.kind == AccountKind::Staff && !account.has_totp {
            Gate::MustEnrolMfa
        } else {
            Gate::Ready
        };
        let unused_recovery_codes = repo::unused_recovery_codes(&mut c, &account.id).await?;
        Ok(Session {
            id: s.id,
            principal,
            gate,
            locale: account.locale,
            elder_mode: account.elder_mode,
            has_totp: account.has_totp,
            unused_recovery_codes,
        })
    }

    pub async fn sign_out(&self, token: &str, now: DateTime<Utc>) -> Result<(), Error> {
        let mut c = self.conn().await?;
        if let Some(s) = repo::session_by_hash(&mut c, &sha256_hex(token)).await? {
            repo::revoke_session(&mut c, &s.account_id, &s.id, millis(now)).await?;
            record(&mut c, Event::new(Action::SignOut, Outcome::Success).account(&s.account_id), now).await?;
        }
        Ok(())
    }

    /// Ends every session and revokes every API token of the account.
    pub async fn sign_out_everywhere(&self, session: &Session, source: &str, now: DateTime<Utc>) -> Result<(), Error> {
        let account_id = session.principal.account_id.as_str();
        let mut tx = self.db.begin().await?;
        let sessions = repo::revoke_sessions(&mut tx, account_id, None, millis(now)).await?;
        let tokens = repo::revoke_tokens(&mut tx, account_id, millis(now)).await?;
        let detail = format!("sessions={sessions} tokens={tokens}");
        record(
            &mut tx,
            Event::new(Action::SignOutEverywhere, Outcome::Success).account(account_id).source(source).detail(&detail),
            now,
        )
        .await?;
        tx.commit().await?;
        self.tokens.forget_account(account_id);
        Ok(())
    }

    /// The caller's own active sessions.
    pub async fn sessions(&self, session: &Session, now: DateTime<Utc>) -> Result<Vec<SessionSummary>, Error> {
        let (account_id, current) = (session.principal.account_id.as_str(), session.id.as_str());
        let mut c = self.conn().await?;
        let idle_ms = i64::try_from(self.policy.idle.as_millis()).unwrap_or(i64::MAX);
        let rows = repo::active_sessions(&mut c, account_id, millis(now)).await?;
        Ok(rows
            .into_iter()
            .filter(|s| millis(now) - s.last_seen_at <= idle_ms)
            .map(|s| SessionSummary {
                current: s.id == current,
                id: s.id,
                created_at: from_millis(s.created_at),
                last_seen_at: from_millis(s.last_seen_at),
                source: s.source,
                user_agent: s.user_agent,
            })
            .collect())
    }

    /// Ends one of the caller's own sessions.
    pub async fn revoke_session(&self, session: &Session, session_id: &str, now: DateTime<Utc>) -> Result<(), Error> {
        let account_id = session.principal.account_id.as_str();
        let mut c = self.conn().await?;
        if !repo::revoke_session(&mut c, account_id, session_id, millis(now)).await? {
            return Err(Error::NotFound("session"));
        }
        record(&mut c, Event::new(Action::SessionRevoked, Outcome::Success).account(account_id).object(session_id), now)
            .await
    }

    // --- API tokens ----------------------------------------------------------------------

    /// `POST /api/v1/auth/token`: password, and the TOTP code when the account has one.
    pub async fn issue_token(
        &self,
        attempt: &SignInAttempt<'_>,
        totp: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, Error> {
        let creds = self.check_password(attempt, now).await?;
        let mut c = self.conn().await?;
        let refusal = if creds.totp_secret.is_some() {
            match totp.map(str::trim).filter(|t| !t.is_empty()) {
                None => Some(Error::MfaRequired),
                Some(code) => match self.check_code(&mut c, &creds, code, attempt.source, now).await {
                    Ok(()) => None,
                    Err(Error::InvalidCode) => return Err(Error::InvalidCredentials),
                    Err(other) => return Err(other),
                },
            }
        } else if creds.kind == AccountKind::Staff {
            Some(Error::MfaEnrolmentRequired)
        } else {
            None
        };
        let refusal = refusal.or(creds.must_change_password.then_some(Error::PasswordChangeRequired));
        if let Some(refusal) = refusal {
            let reason = match refusal {
                Error::MfaRequired => "mfa_required",
                Error::MfaEnrolmentRequired => "mfa_enrolment_required",
                _ => "password_change_required",
            };
            let e = Event::new(Action::SignIn, Outcome::Denied)
                .account(&creds.id)
                .username(&creds.username)
                .source(attempt.source);
            record(&mut c, e.detail(reason), now).await?;
            return Err(refusal);
        }
        self.succeed(&mut c, &creds, attempt.source, "token", now).await?;
        let token = SecretString::new(random_token(32));
        let ttl_ms = i64::try_from(self.policy.token_ttl.as_millis()).unwrap_or(i64::MAX);
        let id = new_id();
        repo::insert_token(
            &mut c,
            &sha256_hex(token.expose()),
            &id,
            &creds.id,
            millis(now),
            millis(now).saturating_add(ttl_ms),
        )
        .await?;
        record(
            &mut c,
            Event::new(Action::TokenIssued, Outcome::Success)
                .account(&creds.id)
                .username(&creds.username)
                .source(attempt.source)
                .object(&id),
            now,
        )
        .await?;
        Ok(IssuedToken { token, expires_in: self.policy.token_ttl.as_secs() })
    }

    pub async fn token_principal(&self, token: &str, now: DateTime<Utc>) -> Result<Principal, Error> {
        let hash = sha256_hex(token);
        let now_ms = millis(now);
        let ttl_ms = i64::try_from(self.policy.auth_cache.as_millis()).unwrap_or(0);
        if ttl_ms > 0
            && let Some(p) = self.tokens.get(&hash, now_ms, ttl_ms)
        {
            return Ok(p);
        }
        let mut c = self.conn().await?;
        let (account, roles, expires_at) =
            repo::token_account(&mut c, &hash, now_ms).await?.ok_or(Error::Unauthenticated)?;
        let principal = principal_of(account, roles);
        if ttl_ms > 0 {
            self.tokens.put(hash, principal.clone(), now_ms, expires_at);
        }
        Ok(principal)
    }

    pub async fn revoke_token(&self, token: &str, source: &str, now: DateTime<Utc>) -> Result<(), Error> {
        let mut c = self.conn().await?;
        let hash = sha256_hex(token);
        let (id, account_id) = repo::live_token(&mut c, &hash, millis(now)).await?.ok_or(Error::Unauthenticated)?;
        repo::revoke_token(&mut c, &hash, millis(now)).await?;
        self.tokens.forget(&hash);
        record(
            &mut c,
            Event::new(Action::TokenRevoked, Outcome::Success).account(&account_id).source(source).object(&id),
            now,
        )
        .await
    }

    // --- self-service --------------------------------------------------------------------

    /// Changes the password and ends every other session and token; returns the cookie value
    /// of a fresh session that replaces the current one.
    pub async fn change_password(
        &self,
        session: &Session,
        change: PasswordChange<'_>,
        source: &str,
        user_agent: &str,
        now: DateTime<Utc>,
    ) -> Result<SecretString, Error> {
        let (session_id, account_id) = (session.id.as_str(), session.principal.account_id.as_str());
        let PasswordChange { current, new } = change;
        let creds = {
            let mut c = self.conn().await?;
            let creds = repo::credentials_by_id(&mut c, account_id).await?.ok_or(Error::Unauthenticated)?;
            // Guessing the current password from a borrowed session is throttled too.
            self.ensure_not_locked(&mut c, &[account_key(&creds.username)], &creds.username, source, now).await?;
            creds
        };
        if !verify_password(current.clone(), creds.password_hash.clone()).await? {
            let mut c = self.conn().await?;
            self.fail(&mut c, Some(account_id), &creds.username, source, "bad_current_password", now).await?;
            return Err(Error::InvalidCredentials);
        }
        password::check_policy(&creds.username, new.expose())?;
        if new == current {
            return Err(Error::invalid("new_password", "the new password must differ from the current one"));
        }
        let phc = hash_password(new.clone()).await?;
        let mut tx = self.db.begin().await?;
        repo::set_password(&mut tx, account_id, &phc, false).await?;
        repo::revoke_sessions(&mut tx, account_id, None, millis(now)).await?;
        repo::revoke_tokens(&mut tx, account_id, millis(now)).await?;
        record(
            &mut tx,
            Event::new(Action::PasswordChanged, Outcome::Success).account(account_id).source(source).object(session_id),
            now,
        )
        .await?;
        let token = self.create_session(&mut tx, account_id, "full", source, user_agent, now).await?;
        tx.commit().await?;
        self.tokens.forget_account(account_id);
        Ok(token)
    }

    /// Starts (or resumes) authenticator enrolment: the secret waits, sealed, until a code
    /// from the app confirms it.
    pub async fn begin_totp_enrolment(&self, session: &Session) -> Result<Enrolment, Error> {
        let account_id = session.principal.account_id.as_str();
        let mut c = self.conn().await?;
        let creds = repo::credentials_by_id(&mut c, account_id).await?.ok_or(Error::Unauthenticated)?;
        if creds.totp_secret.is_some() {
            return Err(already_enrolled());
        }
        let context = totp_context(account_id);
        let secret = match repo::pending_totp(&mut c, account_id).await? {
            Some(sealed) => self.key.open(&sealed, &context).map_err(|e| Error::Internal(e.to_string()))?.to_vec(),
            None => {
                let secret = mfa::new_secret();
                let sealed = self.key.seal(&secret, &context).map_err(|e| Error::Internal(e.to_string()))?;
                repo::set_pending_totp(&mut c, account_id, &sealed).await?;
                secret
            }
        };
        let totp = mfa::totp(&secret, &creds.username).map_err(|e| Error::Internal(e.to_string()))?;
        let uri = totp.get_url();
        let qr_svg = mfa::qr_svg(&uri).ok_or_else(|| Error::Internal("QR code".into()))?;
        Ok(Enrolment { secret_base32: mfa::secret_base32(&secret), uri, qr_svg })
    }

    /// Confirms enrolment with a code from the app; returns the one-time recovery codes
    /// (shown once) and a fresh session cookie value (the privilege changed).
    pub async fn confirm_totp_enrolment(
        &self,
        session: &Session,
        code: &str,
        source: &str,
        user_agent: &str,
        now: DateTime<Utc>,
    ) -> Result<(Vec<String>, SecretString), Error> {
        let account_id = session.principal.account_id.as_str();
        let mut tx = self.db.begin().await?;
        let creds = repo::credentials_by_id(&mut tx, account_id).await?.ok_or(Error::Unauthenticated)?;
        // Replacing a working authenticator needs more than a session: refuse.
        if creds.totp_secret.is_some() {
            return Err(already_enrolled());
        }
        let context = totp_context(account_id);
        let sealed = repo::pending_totp(&mut tx, account_id).await?.ok_or(Error::NotFound("enrolment"))?;
        let secret = self.key.open(&sealed, &context).map_err(|e| Error::Internal(e.to_string()))?;
        let totp = mfa::totp(&secret, &creds.username).map_err(|e| Error::Internal(e.to_string()))?;
        let step = mfa::verify(&totp, code, u64::try_from(now.timestamp()).unwrap_or(0)).ok_or(Error::InvalidCode)?;
        repo::enable_totp(&mut tx, account_id, &sealed, i64::try_from(step).unwrap_or(i64::MAX)).await?;
        let codes = mfa::new_recovery_codes();
        let hashes: Vec<String> = codes.iter().map(|c| self.recovery_code_hash(c)).collect();
        repo::replace_recovery_codes(&mut tx, account_id, &hashes).await?;
        repo::revoke_sessions(&mut tx, account_id, None, millis(now)).await?;
        record(
            &mut tx,
            Event::new(Action::MfaEnrolled, Outcome::Success)
                .account(account_id)
                .username(&creds.username)
                .source(source),
            now,
        )
        .await?;
        let token = self.create_session(&mut tx, account_id, "full", source, user_agent, now).await?;
        tx.commit().await?;
        Ok((codes, token))
    }

    pub async fn set_preferences(
        &self,
        session: &Session,
        locale: Option<&str>,
        elder_mode: Option<bool>,
    ) -> Result<(), Error> {
        let account_id = session.principal.account_id.as_str();
        let mut c = self.conn().await?;
        repo::set_preferences(&mut c, account_id, locale, elder_mode).await?;
        Ok(())
    }

    // --- authorization trail -------------------------------------------------------------

    /// Records a refused authorization (a role check or a jurisdiction check).
    pub async fn record_denial(
        &self,
        principal: &Principal,
        permission: &str,
        object: &str,
        denial: &Denial,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut c = self.conn().await?;
        let detail = format!("{permission}: {denial}");
        record(
            &mut c,
            Event::new(Action::Access, Outcome::Denied)
                .account(&principal.account_id)
                .username(&principal.username)
                .source(source)
                .object(object)
                .detail(&detail),
            now,
        )
        .await
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

    // --- organisation --------------------------------------------------------------------

    /// Creates a region under `parent_code` (or the province root). Codes follow the
    /// administrative division scheme: a child's code extends its parent's.
    pub async fn create_region(
        &self,
        c: &mut AnyConnection,
        cap: &Capability<OrganisationManage>,
        code: &str,
        name: &str,
        parent_code: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<RegionRef, Error> {
        let code = code.trim();
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(Error::invalid("name", "must be 1–64 characters"));
        }
        let (level, parent) = match parent_code {
            None => (RegionLevel::Province, None),
            Some(pc) => {
                let parent = repo::region_by_code(c, pc).await?.ok_or(Error::NotFound("parent region"))?;
                let level = level_of(&parent.level)
                    .and_then(RegionLevel::child)
                    .ok_or_else(|| Error::invalid("parent_code", "a grid has no sub-regions"))?;
                (level, Some(parent))
            }
        };
        if code.len() != level.code_len() || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid("code", format!("a {} code has {} digits", level.as_str(), level.code_len())));
        }
        if let Some(p) = &parent {
            let shared = match level {
                RegionLevel::City => 2,
                RegionLevel::District => 4,
                _ => p.code.len(),
            };
            if code.get(..shared) != p.code.get(..shared) || code == p.code {
                return Err(Error::invalid("code", format!("must extend the parent code {}", p.code)));
            }
        }
        if repo::region_by_code(c, code).await?.is_some() {
            return Err(Error::Conflict {
                code: ErrorCode::RegionExists,
                message: format!("region {code} already exists"),
            });
        }
        let path = format!("{}{code}/", parent.as_ref().map(|p| p.path.as_str()).unwrap_or("/"));
        let id = new_id();
        repo::insert_region(c, &id, code, name, level.as_str(), parent.as_ref().map(|p| p.id.as_str()), &path).await?;
        record(
            c,
            Event::new(Action::RegionCreated, Outcome::Success).account(cap.account_id()).object(&path).detail(name),
            now,
        )
        .await?;
        Ok(RegionRef { id, code: code.into(), name: name.into(), level: level.as_str().into(), path })
    }

    pub async fn create_department(
        &self,
        c: &mut AnyConnection,
        cap: &Capability<OrganisationManage>,
        new: NewDepartment<'_>,
        now: DateTime<Utc>,
    ) -> Result<DepartmentRef, Error> {
        let NewDepartment { code, name, region_code, kind } = new;
        let region = repo::region_by_code(c, region_code).await?.ok_or(Error::NotFound("region"))?;
        if code.trim().is_empty() || name.trim().is_empty() {
            return Err(Error::invalid("code", "code and name are required"));
        }
        if repo::department_by_code(c, code).await?.is_some() {
            return Err(Error::Conflict {
                code: ErrorCode::DepartmentExists,
                message: format!("department {code} already exists"),
            });
        }
        let id = new_id();
        repo::insert_department(c, &id, code.trim(), name.trim(), &region.id, kind).await?;
        let event =
            Event::new(Action::DepartmentCreated, Outcome::Success).account(cap.account_id()).object(code.trim());
        record(c, event.detail(name.trim()), now).await?;
        Ok(DepartmentRef { id, code: code.trim().into(), name: name.trim().into() })
    }

    pub async fn region_count(&self) -> Result<i64, Error> {
        Ok(repo::region_count(&mut *self.conn().await?).await?)
    }

    /// The region tree the caller may see: their subtree, or everything.
    pub async fn regions(&self, cap: &Capability<OrganisationRead>) -> Result<Vec<RegionRef>, Error> {
        let mut c = self.conn().await?;
        let root = match cap.scope() {
            super::Scope::All => "/".to_string(),
            super::Scope::Subtree(p) => p.clone(),
        };
        Ok(repo::regions_in_subtree(&mut c, &root).await?)
    }

    pub async fn departments(&self, cap: &Capability<OrganisationRead>) -> Result<Vec<DepartmentView>, Error> {
        let mut c = self.conn().await?;
        let root = match cap.scope() {
            super::Scope::All => "/".to_string(),
            super::Scope::Subtree(p) => p.clone(),
        };
        Ok(repo::departments_in_subtree(&mut c, &root)
            .await?
            .into_iter()
            .map(|(d, region_name)| DepartmentView { id: d.id, code: d.code, name: d.name, region_name })
            .collect())
    }

    // --- accounts ------------------------------------------------------------------------

    /// Creates an account of any kind, inside the caller's transaction.
    pub async fn create_account(
        &self,
        c: &mut AnyConnection,
        cap: &Capability<AccountCreate>,
        new: NewAccount,
        now: DateTime<Utc>,
    ) -> Result<CreatedAccount, Error> {
        // Usernames, system client names included, are case-insensitive: stored lower-case.
        let kind = new.kind.ok_or_else(|| Error::invalid("kind", "citizen, enterprise, staff or system"))?;
        let username = new.username.trim().to_lowercase();
        match kind {
            AccountKind::System => {
                if !ids::validate_client_name(new.username.trim()) {
                    return Err(Error::invalid("username", "a system client is named INSTANCE/CLASS/MEMBER/SUBSYSTEM"));
                }
            }
            _ => {
                if !valid_username(&username) {
                    return Err(Error::invalid("username", "3–64 characters: a–z, 0–9, '.', '_' or '-'"));
                }
            }
        }
        let display_name = new.display_name.trim();
        if display_name.is_empty() || display_name.chars().count() > 100 {
            return Err(Error::invalid("display_name", "must be 1–100 characters"));
        }
        let region = match &new.region_code {
            Some(code) => Some(repo::region_by_code(c, code).await?.ok_or(Error::NotFound("region"))?),
            None => None,
        };
        let department = match &new.department_code {
            Some(code) => Some(repo::department_by_code(c, code).await?.ok_or(Error::NotFound("department"))?),
            None => None,
        };
        // A staff member without an explicit region works in the department's region.
        let region_id = match (&region, &department) {
            (Some(r), _) => Some(r.id.clone()),
            (None, Some((_, region_id))) => Some(region_id.clone()),
            (None, None) => None,
        };
        if kind == AccountKind::Staff && region_id.is_none() {
            return Err(Error::invalid("region_code", "staff need a region or a department"));
        }
        if matches!(new.profile, Profile::Citizen { .. } | Profile::Enterprise { .. }) && region_id.is_none() {
            return Err(Error::invalid("region_code", "residents and enterprises need a region"));
        }
        let profile = match new.profile {
            Profile::Citizen { real_name, id_number, mobile, address } => {
                let id_number =
                    ids::validate_resident_id(&id_number).map_err(|e| Error::invalid("id_number", e.to_string()))?;
                let mobile = mobile.trim().to_string();
                if mobile.len() != 11 || !mobile.starts_with('1') || !mobile.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Error::invalid("mobile", "an 11-digit mobile number starting with 1"));
                }
                let address = address.map(|a| a.trim().to_string()).filter(|a| !a.is_empty());
                if address.as_ref().is_some_and(|a| a.chars().count() > 200) {
                    return Err(Error::invalid("address", "at most 200 characters"));
                }
                Profile::Citizen { real_name: real_name.trim().into(), id_number, mobile, address }
            }
            Profile::Enterprise { name, credit_code, legal_representative } => {
                let credit_code = ids::validate_credit_code(&credit_code)
                    .map_err(|e| Error::invalid("credit_code", e.to_string()))?;
                Profile::Enterprise {
                    name: name.trim().into(),
                    credit_code,
                    legal_representative: legal_representative.trim().into(),
                }
            }
            Profile::None => Profile::None,
        };
        if repo::username_taken(c, &username).await? {
            return Err(Error::Conflict {
                code: ErrorCode::UsernameTaken,
                message: format!("the username {username} is taken"),
            });
        }
        let (password, temporary, must_change) = match new.password {
            Some(p) => {
                password::check_policy(&username, p.expose())?;
                (Some(p), None, new.must_change_password)
            }
            None if matches!(kind, AccountKind::Staff | AccountKind::System) => {
                let p = SecretString::new(random_token(12));
                (Some(p.clone()), Some(p), kind == AccountKind::Staff)
            }
            None => (None, None, false),
        };
        let phc = match password {
            Some(p) => Some(hash_password(p).await?),
            None => None,
        };
        let id = new_id();
        let sealed_totp = match &new.totp_secret {
            Some(secret) => {
                Some(self.key.seal(secret, &totp_context(&id)).map_err(|e| Error::Internal(e.to_string()))?)
            }
            None => None,
        };
        repo::insert_account(
            c,
            &repo::NewAccountRow {
                id: &id,
                kind,
                username: &username,
                display_name,
                password_hash: phc.as_deref(),
                must_change_password: must_change,
                totp_secret: sealed_totp.as_deref(),
                region_id: region_id.as_deref(),
                department_id: department.as_ref().map(|(d, _)| d.id.as_str()),
                created_at: millis(now),
            },
        )
        .await
        .map_err(|e| unique_as(e, ErrorCode::UsernameTaken, "the username is taken"))?;
        match &profile {
            Profile::Citizen { real_name, id_number, mobile, address } => {
                let p = &self.protector;
                // Sealing runs on the caller's transaction: no second pooled connection.
                let id_number_enc =
                    p.seal_in(c, id_number, &citizen_context("id_number", &id)).await.map_err(protect_error)?;
                let mobile_enc = p.seal_in(c, mobile, &citizen_context("mobile", &id)).await.map_err(protect_error)?;
                let address_enc = match address {
                    Some(a) => Some(p.seal_in(c, a, &citizen_context("address", &id)).await.map_err(protect_error)?),
                    None => None,
                };
                let sealed = repo::SealedCitizen {
                    id_number_enc: &id_number_enc,
                    id_number_bidx: &p.blind_index("id_number", id_number),
                    mobile_enc: &mobile_enc,
                    mobile_bidx: &p.blind_index("mobile", mobile),
                    address_enc: address_enc.as_deref(),
                    key_id: Protector::key_of(&id_number_enc)
                        .ok_or_else(|| Error::Internal("a sealed value names no data key".into()))?,
                };
                repo::insert_citizen(c, &id, real_name, &sealed)
                    .await
                    .map_err(|e| unique_as(e, ErrorCode::IdNumberTaken, "a resident with this ID number exists"))?
            }
            Profile::Enterprise { name, credit_code, legal_representative } => {
                repo::insert_enterprise(c, &id, name, credit_code, legal_representative).await.map_err(|e| {
                    unique_as(e, ErrorCode::CreditCodeTaken, "an enterprise with this credit code exists")
                })?
            }
            Profile::None => {}
        }
        let event = Event::new(Action::AccountCreated, Outcome::Success)
            .account(cap.account_id())
            .object(&id)
            .detail(&username);
        record(c, event, now).await?;
        Ok(CreatedAccount { id, username, temporary_password: temporary })
    }

    /// Creates an account in its own transaction and records it.
    pub async fn create_account_recorded(
        &self,
        cap: &Capability<AccountCreate>,
        new: NewAccount,
        now: DateTime<Utc>,
    ) -> Result<CreatedAccount, Error> {
        let mut tx = self.db.begin().await?;
        let created = self.create_account(&mut tx, cap, new, now).await?;
        tx.commit().await?;
        Ok(created)
    }

    pub async fn account_id(&self, username: &str) -> Result<String, Error> {
        let mut c = self.conn().await?;
        repo::account_id_by_username(&mut c, &username.trim().to_lowercase()).await?.ok_or(Error::NotFound("account"))
    }

    /// Grants a role. Refuses a second separated duty (三员分立); the target's sessions end,
    /// so that their next sign-in carries the new privileges.
    pub async fn grant_role(
        &self,
        c: &mut AnyConnection,
        cap: &Capability<RoleGrantPermission>,
        account_id: &str,
        role: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        if account_id == cap.account_id() {
            return Err(Error::Denied(Denial::OwnAccount));
        }
        let target = repo::account(c, account_id).await?.ok_or(Error::NotFound("account"))?;
        if !matches!(target.kind, AccountKind::Staff | AccountKind::System) {
            return Err(Error::invalid("account_id", "roles are held by staff and system accounts"));
        }
        let duty = repo::role_duty(c, role).await?.ok_or(Error::NotFound("role"))?;
        let held = repo::role_codes_of(c, account_id).await?;
        if held.iter().any(|(code, _)| code == role) {
            return Ok(false);
        }
        // 三员分立: an administrative duty is the account's only role, so an administrator
        // never also reads residents' records.
        let clash = if duty.is_some() { held.first() } else { held.iter().find(|(_, d)| d.is_some()) };
        if let Some((other, _)) = clash {
            return Err(duty_conflict(role, other));
        }
        repo::insert_account_role(c, account_id, role, duty.as_deref(), millis(now), cap.account_id()).await.map_err(
            |e| {
                unique_as(
                    e,
                    ErrorCode::DutyConflict,
                    "an account holds at most one of system admin, security admin and auditor",
                )
            },
        )?;
        repo::revoke_sessions(c, account_id, None, millis(now)).await?;
        record(
            c,
            Event::new(Action::RoleGranted, Outcome::Success)
                .account(cap.account_id())
                .username(cap.username())
                .object(account_id)
                .detail(role),
            now,
        )
        .await?;
        Ok(true)
    }

    pub async fn grant_role_recorded(
        &self,
        cap: &Capability<RoleGrantPermission>,
        account_id: &str,
        role: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let mut tx = self.db.begin().await?;
        let granted = self.grant_role(&mut tx, cap, account_id, role, now).await?;
        tx.commit().await?;
        self.tokens.forget_account(account_id);
        Ok(granted)
    }

    pub async fn revoke_role(
        &self,
        cap: &Capability<RoleGrantPermission>,
        account_id: &str,
        role: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut tx = self.db.begin().await?;
        if !repo::delete_account_role(&mut tx, account_id, role).await? {
            return Err(Error::NotFound("role grant"));
        }
        repo::revoke_sessions(&mut tx, account_id, None, millis(now)).await?;
        record(
            &mut tx,
            Event::new(Action::RoleRevoked, Outcome::Success)
                .account(cap.account_id())
                .username(cap.username())
                .object(account_id)
                .detail(role),
            now,
        )
        .await?;
        tx.commit().await?;
        self.tokens.forget_account(account_id);
        Ok(())
    }

    // --- people records ------------------------------------------------------------------

    /// A resident's record (masked), if within the caller's jurisdiction. The basic record
    /// is internal data (L2); plain identifiers will need a stated purpose.
    pub async fn resident(
        &self,
        cap: &Capability<ResidentRead>,
        account_id: &str,
        purpose: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ResidentView, Error> {
        let purpose = stated_purpose(purpose)?;
        let policy = self.protector.policy().await.map_err(protect_error)?;
        let mut tx = self.db.begin().await?;
        let r = repo::resident(&mut tx, account_id).await?.ok_or(Error::NotFound("resident"))?;
        let object = format!("resident:{account_id}");
        let mut check = cap.check_record(&r.region.path, 2);
        let unmask = purpose.is_some();
        if check.is_ok() && unmask && !policy.may_unmask("resident.id_number", cap.roles()) {
            check = Err(Denial::MaskedForRole);
        }
        if let Err(denial) = check {
            let e = self.deny(&mut tx, cap, &object, Some(account_id), denial, now).await;
            tx.commit().await?;
            return Err(e);
        }
        // Every read of personal data is on the trail, with the person it is about; showing
        // plain values also names the stated purpose.
        let action = if unmask { Action::ResidentUnmasked } else { Action::ResidentRead };
        let event = Event::new(action, Outcome::Success).account(cap.account_id()).username(cap.username());
        let mut event = event.object(&object).subject(account_id).jurisdiction(&r.region.path);
        if let Some(p) = purpose {
            event = event.purpose(p);
        }
        record(&mut tx, event, now).await?;
        tx.commit().await?;
        let open = open_resident(&self.protector, &mut *self.conn().await?, &r).await?;
        Ok(resident_view(r, &open, &policy, cap.roles(), unmask))
    }

    /// The resident with this ID number, found by its blind index (no table is decrypted).
    pub async fn resident_by_id_number(
        &self,
        cap: &Capability<ResidentRead>,
        id_number: &str,
        purpose: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ResidentView, Error> {
        let id_number = ids::validate_resident_id(id_number).map_err(|e| Error::invalid("id_number", e.to_string()))?;
        let bidx = self.protector.blind_index("id_number", &id_number);
        let account_id = {
            let mut c = self.conn().await?;
            repo::citizen_by_id_number_index(&mut c, &bidx).await?.ok_or(Error::NotFound("resident"))?
        };
        self.resident(cap, &account_id, purpose, now).await
    }

    /// Re-seals up to `batch` citizens whose values are not under the active data key;
    /// returns (re-sealed now, still to do). Key rotation calls this until nothing is left.
    pub async fn reseal_citizens(&self, batch: i64) -> Result<(usize, i64), Error> {
        let p = &self.protector;
        let active = p.active_key_id().await.map_err(protect_error)?;
        let rows = {
            let mut c = self.conn().await?;
            repo::citizens_not_under(&mut c, &active, batch.clamp(1, 10_000)).await?
        };
        let mut tx = self.db.begin().await?;
        for r in &rows {
            let open = open_resident(p, &mut tx, r).await?;
            let id = &r.account_id;
            let id_number =
                p.seal_in(&mut tx, &open.id_number, &citizen_context("id_number", id)).await.map_err(protect_error)?;
            let mobile =
                p.seal_in(&mut tx, &open.mobile, &citizen_context("mobile", id)).await.map_err(protect_error)?;
            let address = match &open.address {
                Some(a) => Some(p.seal_in(&mut tx, a, &citizen_context("address", id)).await.map_err(protect_error)?),
                None => None,
            };
            let key = Protector::key_of(&id_number).unwrap_or_default();
            repo::reseal_citizen(&mut tx, id, &id_number, &mobile, address.as_deref(), key).await?;
        }
        let (_, remaining) = repo::citizens_by_key(&mut tx, &active).await?;
        tx.commit().await?;
        Ok((rows.len(), remaining))
    }

    // --- 我的数据: the citizen's own data and who used it ------------------------------

    /// Everything the platform holds about the signed-in person, and every recorded access
    /// to it (newest first), read from the `audit` ledger. Staff names are masked.
    pub async fn my_data(&self, me: &Principal, now: DateTime<Utc>) -> Result<MyData, Error> {
        // Read before taking a connection here: the ledger takes its own.
        let entries = ledger::recent(&self.db, ledger::Log::Audit, None, Some(&me.account_id), 1000)
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let mut c = self.conn().await?;
        let profile = match repo::resident(&mut c, &me.account_id).await? {
            Some(r) => {
                let open = open_resident(&self.protector, &mut c, &r).await?;
                Some(OwnProfile {
                    name: r.real_name.clone(),
                    id_number: open.id_number.to_string(),
                    mobile: open.mobile.to_string(),
                    address: open.address.as_ref().map(|a| a.to_string()),
                    region: r.region.name.clone(),
                })
            }
            None => None,
        };
        let mut posts: std::collections::HashMap<String, Option<repo::Post>> = std::collections::HashMap::new();
        let mut accesses = Vec::with_capacity(entries.len());
        for (index, e) in entries {
            let post = match &e.actor {
                Some(actor) if actor != &me.account_id => {
                    if !posts.contains_key(actor) {
                        let found = repo::post_of(&mut c, actor).await?;
                        posts.insert(actor.clone(), found);
                    }
                    posts.get(actor).cloned().flatten()
                }
                _ => None,
            };
            let by_self = e.actor.as_deref() == Some(me.account_id.as_str());
            accesses.push(DataAccess {
                index,
                at: e.at,
                action: e.action,
                result: e.result,
                by_self,
                staff: post.as_ref().map(|p| protect::Mask::Name.apply(&p.name)),
                department: post.as_ref().and_then(|p| p.department.clone()),
                post: post.map(|p| p.roles.join("、")).filter(|r| !r.is_empty()),
                purpose: e.purpose,
            });
        }
        let corrections = repo::corrections_of(&mut c, &me.account_id)
            .await?
            .into_iter()
            .map(|q| CorrectionView {
                id: q.id,
                field: q.field,
                requested: None,
                reason: q.reason,
                department: q.department,
                status: q.status,
                created_at: from_millis(q.created_at),
            })
            .collect();
        drop(c);
        // Opening sealed data is audited, even for its owner.
        if profile.is_some() {
            let mut c = self.conn().await?;
            let event =
                Event::new(Action::OwnDataViewed, Outcome::Success).account(&me.account_id).username(&me.username);
            record(&mut c, event.subject(&me.account_id), now).await?;
        }
        Ok(MyData {
            username: me.username.clone(),
            display_name: me.display_name.clone(),
            kind: me.kind,
            profile,
            accesses,
            corrections,
        })
    }

    /// What the platform holds about an applicant, as prefill facts (`profile.name`,
    /// `enterprise.credit_code`, …), with where they live and their mobile number. For the
    /// services module, which checks who may ask: the applicant, or staff at the window with
    /// the applicant present (and audits that).
    pub async fn applicant_facts(&self, account_id: &str, now: DateTime<Utc>) -> Result<ApplicantFacts, Error> {
        let mut c = self.conn().await?;
        let account = repo::account(&mut c, account_id).await?.ok_or(Error::NotFound("account"))?;
        let mut facts = std::collections::BTreeMap::new();
        let mut mobile = None;
        if let Some(r) = repo::resident(&mut c, account_id).await? {
            let open = open_resident(&self.protector, &mut c, &r).await?;
            let id_number = open.id_number.to_string();
            facts.insert("profile.name".into(), serde_json::Value::from(r.real_name.clone()));
            if let Some((birth, sex)) = ids::birth_and_sex(&id_number) {
                facts.insert("profile.birth_date".into(), serde_json::Value::from(birth.to_string()));
                facts.insert("profile.sex".into(), serde_json::Value::from(sex));
                facts.insert("profile.age".into(), serde_json::Value::from(ids::age_on(birth, now.date_naive())));
            }
            facts.insert("profile.id_number".into(), serde_json::Value::from(id_number));
            facts.insert("profile.mobile".into(), serde_json::Value::from(open.mobile.to_string()));
            if let Some(a) = &open.address {
                facts.insert("profile.address".into(), serde_json::Value::from(a.to_string()));
            }
            mobile = Some(open.mobile.to_string());
        }
        if let Some(e) = repo::enterprise(&mut c, account_id).await? {
            facts.insert("enterprise.name".into(), serde_json::Value::from(e.name));
            facts.insert("enterprise.credit_code".into(), serde_json::Value::from(e.credit_code));
            facts.insert("enterprise.legal_representative".into(), serde_json::Value::from(e.legal_representative));
        }
        let wants_email = repo::notification_email(&mut c, account_id).await?.is_some();
        Ok(ApplicantFacts {
            account_id: account.id,
            kind: account.kind,
            display_name: account.display_name,
            region: account.region,
            mobile,
            wants_email,
            facts,
        })
    }

    /// An account's display name (for case pages and certificates).
    pub async fn display_name(&self, account_id: &str) -> Result<String, Error> {
        let mut c = self.conn().await?;
        self.display_name_in(&mut c, account_id).await
    }

    /// [`Identity::display_name`] on the caller's connection (or transaction).
    pub async fn display_name_in(&self, c: &mut AnyConnection, account_id: &str) -> Result<String, Error> {
        Ok(repo::account(c, account_id).await?.ok_or(Error::NotFound("account"))?.display_name)
    }

    /// Sets (or, with `None`, clears) the address that gets notifications by email.
    pub async fn set_notification_email(
        &self,
        me: &Principal,
        email: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let email = email.map(str::trim).filter(|e| !e.is_empty());
        if let Some(e) = email
            && (e.len() > 254 || e.parse::<lettre::Address>().is_err())
        {
            return Err(Error::Invalid { field: "email", reason: "an email address such as name@example.cn".into() });
        }
        let context = format!("accounts:notification_email:{}", me.account_id);
        let sealed = match email {
            Some(e) => Some(self.protector.seal(e, &context).await.map_err(|e| Error::Internal(e.to_string()))?),
            None => None,
        };
        let mut tx = self.db.begin().await?;
        repo::set_notification_email(&mut tx, &me.account_id, sealed.as_deref()).await?;
        let event = Event::new(
            if email.is_some() { Action::NotificationEmailSet } else { Action::NotificationEmailCleared },
            Outcome::Success,
        );
        record(&mut tx, event.account(&me.account_id).subject(&me.account_id), now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The address that gets notifications by email, if the person gave one.
    pub async fn notification_email(&self, account_id: &str) -> Result<Option<String>, Error> {
        let mut c = self.conn().await?;
        let Some(sealed) = repo::notification_email(&mut c, account_id).await? else { return Ok(None) };
        let context = format!("accounts:notification_email:{account_id}");
        let plain =
            self.protector.open_in(&mut c, &sealed, &context).await.map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Some(plain.to_string()))
    }

    /// Whether the person wants email, inside the caller's transaction.
    pub async fn wants_email_in(&self, c: &mut AnyConnection, account_id: &str) -> Result<bool, Error> {
        Ok(repo::notification_email(c, account_id).await?.is_some())
    }

    /// A region's path (`/990000/990100/990102/`) by its code.
    pub async fn region_path(&self, code: &str) -> Result<String, Error> {
        let mut c = self.conn().await?;
        Ok(repo::region_by_code(&mut c, code).await?.ok_or(Error::NotFound("region"))?.path)
    }

    /// A department's name by id.
    /// A department by its code, on the caller's connection.
    pub async fn department_by_code_in(
        &self,
        c: &mut AnyConnection,
        code: &str,
    ) -> Result<Option<DepartmentRef>, Error> {
        Ok(repo::department_by_code(c, code).await?.map(|(d, _)| d))
    }

    /// A department's name, on the caller's connection.
    pub async fn department_name_in(
        &self,
        c: &mut AnyConnection,
        department_id: &str,
    ) -> Result<Option<String>, Error> {
        Ok(repo::department_name(c, department_id).await?)
    }

    pub async fn department_name(&self, department_id: &str) -> Result<Option<String>, Error> {
        let mut c = self.conn().await?;
        Ok(repo::department_name(&mut c, department_id).await?)
    }

    /// A staff member's department and role codes (for handing work to a colleague).
    pub async fn staff_post(&self, account_id: &str) -> Result<Option<(Option<String>, Vec<String>)>, Error> {
        let mut c = self.conn().await?;
        let Some(account) = repo::account(&mut c, account_id).await? else { return Ok(None) };
        if account.kind != AccountKind::Staff {
            return Ok(None);
        }
        let roles = repo::role_codes_of(&mut c, account_id).await?.into_iter().map(|(r, _)| r).collect();
        Ok(Some((account.department.map(|d| d.id), roles)))
    }

    /// Staff of a department holding a role (account id, display name): the colleagues a
    /// task can go to, and the supervisors told of an escalation.
    pub async fn staff_holding(&self, department_id: &str, role: &str) -> Result<Vec<(String, String)>, Error> {
        let mut c = self.conn().await?;
        Ok(repo::staff_holding(&mut c, department_id, role).await?)
    }

    /// The department of `kind` (its line of work) nearest a region: in it or above it.
    pub async fn nearest_department(&self, region_path: &str, kind: &str) -> Result<Option<DepartmentRef>, Error> {
        let mut c = self.conn().await?;
        self.nearest_department_in(&mut c, region_path, kind).await
    }

    /// [`Identity::nearest_department`] on the caller's connection (or transaction).
    pub async fn nearest_department_in(
        &self,
        c: &mut AnyConnection,
        region_path: &str,
        kind: &str,
    ) -> Result<Option<DepartmentRef>, Error> {
        Ok(repo::nearest_department(c, region_path, kind).await?)
    }

    /// The account behind a resident ID number, for staff serving someone at the window.
    /// The citizen whose ID number has this blind index (domain `id_number`), on the
    /// caller's connection.
    pub async fn citizen_by_id_index_in(&self, c: &mut AnyConnection, bidx: &str) -> Result<Option<String>, Error> {
        Ok(repo::citizen_by_id_number_index(c, bidx).await?)
    }

    /// [`Identity::citizen_by_id_index_in`] for many indexes at once: index → account.
    pub async fn citizens_by_id_indexes_in(
        &self,
        c: &mut AnyConnection,
        indexes: &[&str],
    ) -> Result<HashMap<String, String>, Error> {
        Ok(repo::citizens_by_id_number_indexes(c, indexes).await?.into_iter().collect())
    }

    pub async fn citizen_by_id_number(&self, id_number: &str) -> Result<Option<String>, Error> {
        let mut c = self.conn().await?;
        let bidx = self.protector.blind_index("id_number", &id_number.trim().to_uppercase());
        Ok(repo::citizen_by_id_number_index(&mut c, &bidx).await?)
    }

    /// Files a correction request with the department that owns the field (for residents'
    /// identity data: the nearest public-security bureau, 公安).
    pub async fn request_correction(
        &self,
        me: &Principal,
        field: &str,
        requested: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<CorrectionView, Error> {
        const FIELDS: [&str; 4] = ["name", "id_number", "mobile", "address"];
        if !FIELDS.contains(&field) {
            return Err(Error::invalid("field", "one of name, id_number, mobile, address"));
        }
        let (requested, reason) = (requested.trim(), reason.trim());
        if requested.is_empty() || requested.chars().count() > 200 {
            return Err(Error::invalid("requested", "the corrected value, at most 200 characters"));
        }
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(Error::invalid("reason", "why the value is wrong, at most 500 characters"));
        }
        let region = me.region.as_ref().ok_or(Error::NotFound("resident record"))?;
        let mut tx = self.db.begin().await?;
        if repo::resident(&mut tx, &me.account_id).await?.is_none() {
            return Err(Error::NotFound("resident record"));
        }
        let department = repo::nearest_department(&mut tx, &region.path, "GA")
            .await?
            .ok_or(Error::NotFound("department owning this data"))?;
        let id = new_id();
        let sealed = self
            .protector
            .seal_in(&mut tx, requested, &format!("correction_requests.requested:{id}"))
            .await
            .map_err(protect_error)?;
        repo::insert_correction(&mut tx, &id, &me.account_id, &department.id, field, &sealed, reason, millis(now))
            .await?;
        let event =
            Event::new(Action::CorrectionRequested, Outcome::Success).account(&me.account_id).username(&me.username);
        record(&mut tx, event.subject(&me.account_id).object(&format!("correction:{id}")).detail(field), now).await?;
        tx.commit().await?;
        Ok(CorrectionView {
            id,
            field: field.into(),
            requested: None,
            reason: reason.into(),
            department: department.name,
            status: "open".into(),
            created_at: now,
        })
    }

    /// Open correction requests addressed to the caller's own department, within the
    /// caller's jurisdiction. Requested values are shown as the masking policy allows the
    /// caller's roles, and every request opened is audited with its purpose.
    pub async fn corrections(
        &self,
        cap: &Capability<ResidentRead>,
        now: DateTime<Utc>,
    ) -> Result<Vec<CorrectionView>, Error> {
        let root = match cap.scope() {
            super::Scope::All => "/".to_string(),
            super::Scope::Subtree(p) => p.clone(),
        };
        let Some(department) = cap.department_id() else { return Ok(Vec::new()) };
        let policy = self.protector.policy().await.map_err(protect_error)?;
        let mut tx = self.db.begin().await?;
        let rows = repo::corrections_in_subtree(&mut tx, &root, 200).await?;
        let mut out = Vec::with_capacity(rows.len());
        for q in rows.into_iter().filter(|q| q.department_id == department) {
            let requested = self
                .protector
                .open_in(&mut tx, &q.requested_enc, &format!("correction_requests.requested:{}", q.id))
                .await
                .map_err(protect_error)?;
            let shown = policy.show(&format!("resident.{}", q.field), &requested, cap.roles(), true);
            let event =
                Event::new(Action::CorrectionRead, Outcome::Success).account(cap.account_id()).username(cap.username());
            let object = format!("correction:{}", q.id);
            let event = event.subject(&q.account_id).object(&object).jurisdiction(&q.region_path);
            record(&mut tx, event.purpose("处理更正申请 handling a correction request"), now).await?;
            out.push(CorrectionView {
                id: q.id,
                field: q.field,
                requested: Some(shown),
                reason: q.reason,
                department: q.department,
                status: q.status,
                created_at: from_millis(q.created_at),
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// How many values of this module are sealed under `key_id` (citizens' identifiers and
    /// correction requests).
    pub async fn citizens_under_key(&self, key_id: &str) -> Result<i64, Error> {
        let mut c = self.conn().await?;
        let citizens = repo::citizens_by_key(&mut c, key_id).await?.0;
        let corrections = repo::corrections_sealed_under(&mut c, key_id).await?;
        Ok(citizens + corrections)
    }

    /// Re-seals correction requests not under the active key; returns how many.
    pub async fn reseal_corrections(&self) -> Result<usize, Error> {
        let p = &self.protector;
        let active = p.active_key_id().await.map_err(protect_error)?;
        let mut tx = self.db.begin().await?;
        let rows = repo::corrections_not_under(&mut tx, &active).await?;
        for (id, sealed) in &rows {
            let context = format!("correction_requests.requested:{id}");
            let plain = p.open_in(&mut tx, sealed, &context).await.map_err(protect_error)?;
            let resealed = p.seal_in(&mut tx, &plain, &context).await.map_err(protect_error)?;
            repo::reseal_correction(&mut tx, id, &resealed).await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }

    pub async fn enterprise(
        &self,
        cap: &Capability<EnterpriseRead>,
        account_id: &str,
        now: DateTime<Utc>,
    ) -> Result<EnterpriseView, Error> {
        let mut tx = self.db.begin().await?;
        let e = repo::enterprise(&mut tx, account_id).await?.ok_or(Error::NotFound("enterprise"))?;
        let object = format!("enterprise:{account_id}");
        if let Err(denial) = cap.check_record(&e.region.path, 1) {
            let err = self.deny(&mut tx, cap, &object, Some(account_id), denial, now).await;
            tx.commit().await?;
            return Err(err);
        }
        let event =
            Event::new(Action::EnterpriseRead, Outcome::Success).account(cap.account_id()).username(cap.username());
        record(&mut tx, event.object(&object).subject(account_id).jurisdiction(&e.region.path), now).await?;
        tx.commit().await?;
        Ok(EnterpriseView {
            id: e.account_id,
            name: e.name,
            credit_code: e.credit_code,
            legal_representative: e.legal_representative,
            region: e.region,
        })
    }

    /// Residents within the caller's jurisdiction (masked), at most `limit`.
    pub async fn residents(
        &self,
        cap: &Capability<ResidentRead>,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<ResidentView>, Error> {
        let mut tx = self.db.begin().await?;
        let root = match cap.scope() {
            super::Scope::All => "/".to_string(),
            super::Scope::Subtree(p) => p.clone(),
        };
        // The list shows basic (L2) records: the caller's clearance must cover that.
        if let Err(denial) = cap.check_record(&root, 2) {
            let e = self.deny(&mut tx, cap, "residents", None, denial, now).await;
            tx.commit().await?;
            return Err(e);
        }
        let rows = repo::residents_in_subtree(&mut tx, &root, limit.clamp(1, 500)).await?;
        // Each person listed had their (masked) data shown: one entry each, for 我的数据.
        for r in &rows {
            let event =
                Event::new(Action::ResidentListed, Outcome::Success).account(cap.account_id()).username(cap.username());
            record(&mut tx, event.object("residents").subject(&r.account_id).jurisdiction(&r.region.path), now).await?;
        }
        tx.commit().await?;
        let policy = self.protector.policy().await.map_err(protect_error)?;
        let mut out = Vec::with_capacity(rows.len());
        let mut c = self.conn().await?;
        for r in rows {
            let open = open_resident(&self.protector, &mut c, &r).await?;
            out.push(resident_view(r, &open, &policy, cap.roles(), false));
        }
        Ok(out)
    }

    pub async fn security_events(
        &self,
        _cap: &Capability<SecurityEventRead>,
        kind: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SecurityEvent>, Error> {
        let limit = u64::try_from(limit.clamp(1, 1000)).unwrap_or(100);
        let rows = ledger::recent(&self.db, ledger::Log::Audit, kind, None, limit).await.map_err(|e| match e {
            ledger::Error::Storage(s) => Error::Storage(s),
            other => Error::Internal(other.to_string()),
        })?;
        Ok(rows
            .into_iter()
            .map(|(index, e)| SecurityEvent {
                index,
                at: e.at,
                kind: e.action,
                outcome: e.result,
                account_id: e.actor,
                username: e.actor_name,
                source: e.source,
                object: e.object,
                detail: e.detail,
                subject: e.subject,
                request_id: e.request_id,
            })
            .collect())
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
