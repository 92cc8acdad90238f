//! Consent: revisions, policies, data agreements, individuals and consent records.

use sqlx::AnyConnection;

// --- consent -----------------------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RevisionRow {
    pub id: String,
    pub schema_name: String,
    pub object_id: String,
    pub snapshot: String,
    pub hash: String,
    pub predecessor_hash: Option<String>,
    pub authorized_by: Option<String>,
    pub created_at: i64,
}

pub(super) const REVISION: &str = "SELECT id, schema_name, object_id, snapshot, hash, predecessor_hash, authorized_by, created_at \
                        FROM consent_revisions";

/// The newest revision of an object.
pub async fn latest_revision(c: &mut AnyConnection, object_id: &str) -> Result<Option<RevisionRow>, sqlx::Error> {
    let q = format!("{REVISION} WHERE object_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(object_id).fetch_optional(c).await
}

/// Every revision of an object, oldest first.
pub async fn revisions_of(c: &mut AnyConnection, object_id: &str) -> Result<Vec<RevisionRow>, sqlx::Error> {
    let q = format!("{REVISION} WHERE object_id = $1 ORDER BY created_at, id");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(object_id).fetch_all(c).await
}

/// Adds a revision and makes it the successor of the object's previous open one.
pub async fn insert_revision(c: &mut AnyConnection, r: &RevisionRow) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE consent_revisions SET successor_id = $1 WHERE object_id = $2 AND successor_id IS NULL")
        .bind(&r.id)
        .bind(&r.object_id)
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "INSERT INTO consent_revisions (id, schema_name, object_id, snapshot, hash, predecessor_hash, authorized_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&r.id)
    .bind(&r.schema_name)
    .bind(&r.object_id)
    .bind(&r.snapshot)
    .bind(&r.hash)
    .bind(&r.predecessor_hash)
    .bind(&r.authorized_by)
    .bind(r.created_at)
    .execute(c)
    .await?;
    Ok(())
}

/// A policy's body, unless deleted.
pub async fn policy(c: &mut AnyConnection, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT body FROM consent_policies WHERE id = $1 AND deleted_at IS NULL")
        .bind(id)
        .fetch_optional(c)
        .await
}

pub async fn upsert_policy(c: &mut AnyConnection, id: &str, body: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO consent_policies (id, body, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET body = $2")
        .bind(id)
        .bind(body)
        .bind(now)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn policies(c: &mut AnyConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT body FROM consent_policies WHERE deleted_at IS NULL ORDER BY created_at, id")
        .fetch_all(c)
        .await
}

/// Active data agreements that use a policy.
pub async fn policy_users(c: &mut AnyConnection, id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) AS n FROM consent_data_agreements WHERE policy_id = $1 AND active = 1 AND deleted_at IS NULL",
    )
    .bind(id)
    .fetch_one(c)
    .await
}

pub async fn delete_policy(c: &mut AnyConnection, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE consent_policies SET deleted_at = $1 WHERE id = $2").bind(now).bind(id).execute(c).await?;
    Ok(())
}

/// A data agreement (unless deleted): body, whether active, and the end of the sharing
/// agreement it serves, if any.
pub async fn data_agreement(
    c: &mut AnyConnection,
    id: &str,
) -> Result<Option<(String, bool, Option<i64>)>, sqlx::Error> {
    let row: Option<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT d.body, d.active, s.valid_until FROM consent_data_agreements d \
         LEFT JOIN sharing_agreements s ON s.id = d.sharing_agreement_id WHERE d.id = $1 AND d.deleted_at IS NULL",
    )
    .bind(id)
    .fetch_optional(c)
    .await?;
    Ok(row.map(|(body, active, valid_until)| (body, active != 0, valid_until)))
}

#[allow(clippy::too_many_arguments)]
pub async fn upsert_data_agreement(
    c: &mut AnyConnection,
    id: &str,
    body: &str,
    policy_id: Option<&str>,
    active: bool,
    sharing_agreement: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO consent_data_agreements (id, body, policy_id, active, sharing_agreement_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET body = $2, policy_id = $3, active = $4",
    )
    .bind(id)
    .bind(body)
    .bind(policy_id)
    .bind(i64::from(active))
    .bind(sharing_agreement)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn data_agreements(c: &mut AnyConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT body FROM consent_data_agreements WHERE deleted_at IS NULL ORDER BY created_at, id")
        .fetch_all(c)
        .await
}

pub async fn delete_data_agreement(c: &mut AnyConnection, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE consent_data_agreements SET deleted_at = $1, active = 0 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

/// Closes the data agreement of a sharing agreement to new consent.
pub async fn deactivate_data_agreements_of(c: &mut AnyConnection, sharing_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE consent_data_agreements SET active = 0 WHERE sharing_agreement_id = $1")
        .bind(sharing_id)
        .execute(c)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IndividualRow {
    pub id: String,
    pub external_id: Option<String>,
    pub external_id_type: Option<String>,
    pub identity_provider_id: Option<String>,
    pub account_id: Option<String>,
}

pub async fn insert_individual(c: &mut AnyConnection, r: &IndividualRow, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO consent_individuals (id, external_id, external_id_type, identity_provider_id, account_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&r.id)
    .bind(&r.external_id)
    .bind(&r.external_id_type)
    .bind(&r.identity_provider_id)
    .bind(&r.account_id)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

const INDIVIDUAL: &str =
    "SELECT id, external_id, external_id_type, identity_provider_id, account_id FROM consent_individuals";

pub async fn individual(c: &mut AnyConnection, id: &str) -> Result<Option<IndividualRow>, sqlx::Error> {
    let q = format!("{INDIVIDUAL} WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(c).await
}

pub async fn individuals(c: &mut AnyConnection) -> Result<Vec<IndividualRow>, sqlx::Error> {
    let q = format!("{INDIVIDUAL} ORDER BY created_at, id");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).fetch_all(c).await
}

pub async fn update_individual(c: &mut AnyConnection, r: &IndividualRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE consent_individuals SET external_id = $1, external_id_type = $2, identity_provider_id = $3 WHERE id = $4",
    )
    .bind(&r.external_id)
    .bind(&r.external_id_type)
    .bind(&r.identity_provider_id)
    .bind(&r.id)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn individual_of_account(
    c: &mut AnyConnection,
    account_id: &str,
) -> Result<Option<IndividualRow>, sqlx::Error> {
    let q = format!("{INDIVIDUAL} WHERE account_id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(account_id).fetch_optional(c).await
}

pub async fn individual_by_external(
    c: &mut AnyConnection,
    external_id: &str,
    external_id_type: Option<&str>,
) -> Result<Option<IndividualRow>, sqlx::Error> {
    let q = format!("{INDIVIDUAL} WHERE external_id = $1 AND COALESCE(external_id_type, '') = COALESCE($2, '')");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(external_id).bind(external_id_type).fetch_optional(c).await
}

/// The account's answer for the data agreement of a sharing agreement: (opt-in, expiry).
pub async fn consent_for_sharing(
    c: &mut AnyConnection,
    sharing_id: &str,
    account_id: &str,
) -> Result<Option<(bool, Option<i64>)>, sqlx::Error> {
    let row: Option<(i64, Option<i64>)> = sqlx::query_as(
        "SELECT r.opt_in, r.expires_at FROM consent_records r \
         JOIN consent_data_agreements d ON d.id = r.data_agreement_id \
         JOIN consent_individuals i ON i.id = r.individual_id \
         WHERE d.sharing_agreement_id = $1 AND d.active = 1 AND i.account_id = $2",
    )
    .bind(sharing_id)
    .bind(account_id)
    .fetch_optional(c)
    .await?;
    Ok(row.map(|(opt_in, expires_at)| (opt_in != 0, expires_at)))
}

#[derive(Debug, Clone)]
pub struct ConsentRecordRow {
    pub id: String,
    pub data_agreement_id: String,
    pub agreement_revision: String,
    /// The consented revision's hash.
    pub revision_hash: String,
    pub individual_id: String,
    pub opt_in: bool,
    pub state: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

const CONSENT_RECORD: &str = "SELECT r.id, r.data_agreement_id, r.agreement_revision, v.hash, r.individual_id, r.opt_in, \
                              r.state, r.expires_at, r.created_at FROM consent_records r \
                              JOIN consent_revisions v ON v.id = r.agreement_revision";

/// A consent record as stored: opt-in is an integer (0 or 1).
#[derive(sqlx::FromRow)]
pub(super) struct ConsentRecordColumns {
    id: String,
    data_agreement_id: String,
    agreement_revision: String,
    hash: String,
    individual_id: String,
    opt_in: i64,
    state: String,
    expires_at: Option<i64>,
    created_at: i64,
}

impl From<ConsentRecordColumns> for ConsentRecordRow {
    fn from(r: ConsentRecordColumns) -> Self {
        ConsentRecordRow {
            id: r.id,
            data_agreement_id: r.data_agreement_id,
            agreement_revision: r.agreement_revision,
            revision_hash: r.hash,
            individual_id: r.individual_id,
            opt_in: r.opt_in != 0,
            state: r.state,
            expires_at: r.expires_at,
            created_at: r.created_at,
        }
    }
}

pub async fn consent_record(
    c: &mut AnyConnection,
    data_agreement_id: &str,
    individual_id: &str,
) -> Result<Option<ConsentRecordRow>, sqlx::Error> {
    let q = format!("{CONSENT_RECORD} WHERE r.data_agreement_id = $1 AND r.individual_id = $2");
    let row = sqlx::query_as::<_, ConsentRecordColumns>(sqlx::AssertSqlSafe(q))
        .bind(data_agreement_id)
        .bind(individual_id)
        .fetch_optional(c)
        .await?;
    Ok(row.map(ConsentRecordRow::from))
}

pub async fn consent_record_by_id(c: &mut AnyConnection, id: &str) -> Result<Option<ConsentRecordRow>, sqlx::Error> {
    let q = format!("{CONSENT_RECORD} WHERE r.id = $1");
    let row = sqlx::query_as::<_, ConsentRecordColumns>(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(c).await?;
    Ok(row.map(ConsentRecordRow::from))
}

pub async fn consent_records_of(
    c: &mut AnyConnection,
    individual_id: &str,
) -> Result<Vec<ConsentRecordRow>, sqlx::Error> {
    let q = format!("{CONSENT_RECORD} WHERE r.individual_id = $1 ORDER BY r.created_at, r.id");
    let rows =
        sqlx::query_as::<_, ConsentRecordColumns>(sqlx::AssertSqlSafe(q)).bind(individual_id).fetch_all(c).await?;
    Ok(rows.into_iter().map(ConsentRecordRow::from).collect())
}

/// Sets an individual's answer for a data agreement (one record per pair).
pub async fn upsert_consent_record(c: &mut AnyConnection, r: &ConsentRecordRow, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO consent_records (id, data_agreement_id, agreement_revision, individual_id, opt_in, state, expires_at, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (data_agreement_id, individual_id) DO UPDATE SET opt_in = $5, agreement_revision = $3, \
         expires_at = $7, updated_at = $9",
    )
    .bind(&r.id)
    .bind(&r.data_agreement_id)
    .bind(&r.agreement_revision)
    .bind(&r.individual_id)
    .bind(i64::from(r.opt_in))
    .bind(&r.state)
    .bind(r.expires_at)
    .bind(r.created_at)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

/// The data agreements a person may answer (active, or answered before), newest first, with
/// their answer: (id, body, opt-in, expiry, answered at).
#[allow(clippy::type_complexity)]
pub async fn consents_of_account(
    c: &mut AnyConnection,
    account_id: &str,
) -> Result<Vec<(String, String, Option<bool>, Option<i64>, Option<i64>)>, sqlx::Error> {
    let rows: Vec<(String, String, Option<i64>, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT d.id, d.body, r.opt_in, r.expires_at, r.updated_at FROM consent_data_agreements d \
         LEFT JOIN consent_individuals i ON i.account_id = $1 \
         LEFT JOIN consent_records r ON r.data_agreement_id = d.id AND r.individual_id = i.id \
         WHERE d.deleted_at IS NULL AND (d.active = 1 OR r.id IS NOT NULL) ORDER BY d.created_at DESC, d.id",
    )
    .bind(account_id)
    .fetch_all(c)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, body, opt_in, expires_at, answered_at)| (id, body, opt_in.map(|v| v != 0), expires_at, answered_at))
        .collect())
}
