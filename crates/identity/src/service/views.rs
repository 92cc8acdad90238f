//! What identity hands out and takes in: sign-in attempts and their outcomes, sessions and
//! tokens, new accounts, views of residents and enterprises, 我的数据, and departments.

use super::*;

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
    /// The known-device token this browser holds, if any (see `device`).
    pub device: Option<&'a str>,
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
    /// Once signed in fully: the known-device token for the browser to keep.
    pub device: Option<SecretString>,
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
    pub status: CorrectionStatus,
    pub created_at: DateTime<Utc>,
}

/// Where a correction request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CorrectionStatus {
    /// Waiting for the department.
    Open,
    /// The record was corrected.
    Done,
    Rejected,
}

impl CorrectionStatus {
    /// The status a row holds (the table's CHECK admits no other); anything else is a fault.
    pub(crate) fn stored(value: &str) -> Result<CorrectionStatus, Error> {
        value.parse().map_err(|_| Error::Internal(format!("a correction request holds the unknown status {value:?}")))
    }
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
