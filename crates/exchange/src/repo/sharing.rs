//! Sharing agreements, the joined read of an exchange call, and the departments' figures.

use sqlx::AnyConnection;
use std::sync::LazyLock;

use super::registries::RegistryColumns;
use super::*;
use crate::sharing::AgreementStatus;

// --- sharing agreements ------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct AgreementRow {
    pub id: String,
    pub registry_id: String,
    pub consumer_department_id: String,
    pub requested_by: String,
    pub fields: String,
    pub purpose: String,
    pub legal_basis: String,
    pub verify_only: bool,
    pub plain_values: bool,
    pub consent_required: bool,
    pub rate_per_minute: i64,
    pub status: String,
    pub valid_from: i64,
    pub valid_until: i64,
    pub reason: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub created_at: i64,
}

macro_rules! agreement_columns {
    () => {
        "id, registry_id, consumer_department_id, requested_by, fields, purpose, legal_basis, verify_only, \
         plain_values, consent_required, rate_per_minute, status, valid_from, valid_until, reason, decided_by, \
         decided_at, created_at"
    };
}
const AGREEMENT: &str = concat!("SELECT ", agreement_columns!(), " FROM sharing_agreements");

/// An agreement as stored: its flags are integers (0 or 1).
#[derive(sqlx::FromRow)]
struct AgreementColumns {
    id: String,
    registry_id: String,
    consumer_department_id: String,
    requested_by: String,
    fields: String,
    purpose: String,
    legal_basis: String,
    verify_only: i64,
    plain_values: i64,
    consent_required: i64,
    rate_per_minute: i64,
    status: String,
    valid_from: i64,
    valid_until: i64,
    reason: Option<String>,
    decided_by: Option<String>,
    decided_at: Option<i64>,
    created_at: i64,
}

impl From<AgreementColumns> for AgreementRow {
    fn from(a: AgreementColumns) -> Self {
        AgreementRow {
            id: a.id,
            registry_id: a.registry_id,
            consumer_department_id: a.consumer_department_id,
            requested_by: a.requested_by,
            fields: a.fields,
            purpose: a.purpose,
            legal_basis: a.legal_basis,
            verify_only: a.verify_only != 0,
            plain_values: a.plain_values != 0,
            consent_required: a.consent_required != 0,
            rate_per_minute: a.rate_per_minute,
            status: a.status,
            valid_from: a.valid_from,
            valid_until: a.valid_until,
            reason: a.reason,
            decided_by: a.decided_by,
            decided_at: a.decided_at,
            created_at: a.created_at,
        }
    }
}

pub async fn insert_agreement(c: &mut AnyConnection, a: &AgreementRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sharing_agreements (id, registry_id, consumer_department_id, requested_by, fields, purpose, \
         legal_basis, verify_only, plain_values, consent_required, rate_per_minute, status, valid_from, valid_until, \
         reason, decided_by, decided_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(&a.id)
    .bind(&a.registry_id)
    .bind(&a.consumer_department_id)
    .bind(&a.requested_by)
    .bind(&a.fields)
    .bind(&a.purpose)
    .bind(&a.legal_basis)
    .bind(i64::from(a.verify_only))
    .bind(i64::from(a.plain_values))
    .bind(i64::from(a.consent_required))
    .bind(a.rate_per_minute)
    .bind(&a.status)
    .bind(a.valid_from)
    .bind(a.valid_until)
    .bind(&a.reason)
    .bind(&a.decided_by)
    .bind(a.decided_at)
    .bind(a.created_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn agreement(c: &mut AnyConnection, id: &str) -> Result<Option<AgreementRow>, sqlx::Error> {
    let q = format!("{AGREEMENT} WHERE id = $1");
    let row = sqlx::query_as::<_, AgreementColumns>(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(c).await?;
    Ok(row.map(AgreementRow::from))
}

/// What a call under an agreement needs, in one round trip: the agreement, its registry and
/// the newest record with this key index (none when nobody holds it).
pub async fn call_target(
    c: &mut AnyConnection,
    agreement_id: &str,
    key_index: &str,
) -> Result<Option<(AgreementRow, RegistryRow, Option<RecordRow>)>, sqlx::Error> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {}, {}, {} FROM sharing_agreements a JOIN registries r ON r.id = a.registry_id \
             LEFT JOIN registry_records d ON d.registry_id = a.registry_id AND d.key_index = $2 \
             WHERE a.id = $1 ORDER BY d.seq DESC, d.id DESC LIMIT 1",
            aliased("a", agreement_columns!()),
            aliased("r", registry_columns!()),
            aliased("d", record_columns!()),
        )
    });
    let Some(row) =
        sqlx::query(sqlx::AssertSqlSafe(SQL.as_str())).bind(agreement_id).bind(key_index).fetch_optional(c).await?
    else {
        return Ok(None);
    };
    let agreement = agreement_at(&Prefixed(&row, "a_"))?;
    let registry = registry_at(&Prefixed(&row, "r_"))?;
    let record = match Prefixed(&row, "d_").try_get::<Option<String>>("id")? {
        Some(_) => Some(record_at(&Prefixed(&row, "d_"))?),
        None => None,
    };
    Ok(Some((agreement.into(), registry.into(), record)))
}

// One table's columns each, out of `call_target`'s row where they carry the table's prefix.

fn agreement_at(r: &Prefixed<'_>) -> Result<AgreementColumns, sqlx::Error> {
    Ok(AgreementColumns {
        id: r.try_get("id")?,
        registry_id: r.try_get("registry_id")?,
        consumer_department_id: r.try_get("consumer_department_id")?,
        requested_by: r.try_get("requested_by")?,
        fields: r.try_get("fields")?,
        purpose: r.try_get("purpose")?,
        legal_basis: r.try_get("legal_basis")?,
        verify_only: r.try_get("verify_only")?,
        plain_values: r.try_get("plain_values")?,
        consent_required: r.try_get("consent_required")?,
        rate_per_minute: r.try_get("rate_per_minute")?,
        status: r.try_get("status")?,
        valid_from: r.try_get("valid_from")?,
        valid_until: r.try_get("valid_until")?,
        reason: r.try_get("reason")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
        created_at: r.try_get("created_at")?,
    })
}

fn registry_at(r: &Prefixed<'_>) -> Result<RegistryColumns, sqlx::Error> {
    Ok(RegistryColumns {
        id: r.try_get("id")?,
        code: r.try_get("code")?,
        name_zh: r.try_get("name_zh")?,
        name_en: r.try_get("name_en")?,
        department_id: r.try_get("department_id")?,
        description: r.try_get("description")?,
        update_frequency: r.try_get("update_frequency")?,
        key_field: r.try_get("key_field")?,
        key_domain: r.try_get("key_domain")?,
        mediator_access: r.try_get("mediator_access")?,
        database_code: r.try_get("database_code")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn record_at(r: &Prefixed<'_>) -> Result<RecordRow, sqlx::Error> {
    Ok(RecordRow {
        id: r.try_get("id")?,
        registry_id: r.try_get("registry_id")?,
        version: r.try_get("version")?,
        key_index: r.try_get("key_index")?,
        body: r.try_get("body")?,
        key_id: r.try_get("key_id")?,
        seq: r.try_get("seq")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Moves an agreement from `from` to `to`; false when it was no longer in `from`.
pub async fn set_agreement_status(
    c: &mut AnyConnection,
    id: &str,
    from: AgreementStatus,
    to: AgreementStatus,
    reason: Option<&str>,
    by: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sharing_agreements SET status = $1, reason = COALESCE($2, reason), decided_by = $3, decided_at = $4 \
         WHERE id = $5 AND status = $6",
    )
    .bind(to.as_str())
    .bind(reason)
    .bind(by)
    .bind(at)
    .bind(id)
    .bind(from.as_str())
    .execute(c)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Agreements on the registries of `owner` (or consumed by `consumer`), newest first.
pub async fn agreements(
    c: &mut AnyConnection,
    owner: Option<&str>,
    consumer: Option<&str>,
) -> Result<Vec<AgreementRow>, sqlx::Error> {
    let q = format!(
        "{AGREEMENT} WHERE ($1 IS NULL OR registry_id IN (SELECT id FROM registries WHERE department_id = $1)) \
         AND ($2 IS NULL OR consumer_department_id = $2) ORDER BY created_at DESC, id LIMIT 500"
    );
    let rows =
        sqlx::query_as::<_, AgreementColumns>(sqlx::AssertSqlSafe(q)).bind(owner).bind(consumer).fetch_all(c).await?;
    Ok(rows.into_iter().map(AgreementRow::from).collect())
}

/// Adds served calls, one (agreement, day, calls) per agreement and day, in one statement.
pub async fn count_calls(c: &mut AnyConnection, calls: &[(String, String, i64)]) -> Result<(), sqlx::Error> {
    kernel::db::upsert_rows(
        c,
        "exchange_usage (agreement_id, day, calls)",
        "ON CONFLICT (agreement_id, day) DO UPDATE SET calls = exchange_usage.calls + excluded.calls",
        calls,
        |q, (agreement_id, day, n)| q.bind(agreement_id.as_str()).bind(day.as_str()).bind(*n),
    )
    .await
}

/// What one department that owns registries has been asked and has served.
pub struct DepartmentFigureRow {
    pub department_id: String,
    pub registries: i64,
    pub requests: i64,
    /// Requests the owner granted, whether or not they still stand.
    pub granted: i64,
    /// Milliseconds from request to decision of each decided request, shortest first.
    pub decision_delays: Vec<i64>,
    pub calls: i64,
}

/// The figures of every department that owns registries.
pub async fn department_figures(c: &mut AnyConnection) -> Result<Vec<DepartmentFigureRow>, sqlx::Error> {
    let owners: Vec<(String, i64)> = sqlx::query_as(
        "SELECT department_id, COUNT(*) AS n FROM registries GROUP BY department_id ORDER BY department_id",
    )
    .fetch_all(&mut *c)
    .await?;
    let mut out = Vec::with_capacity(owners.len());
    for (department_id, registries) in owners {
        let (requests, granted): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*) AS requests, \
                    CAST(COALESCE(SUM(CASE WHEN a.status IN ($2, $3) THEN 1 ELSE 0 END), 0) AS BIGINT) AS granted \
             FROM sharing_agreements a JOIN registries r ON r.id = a.registry_id WHERE r.department_id = $1",
        )
        .bind(&department_id)
        .bind(AgreementStatus::Granted.as_str())
        .bind(AgreementStatus::Revoked.as_str())
        .fetch_one(&mut *c)
        .await?;
        let decision_delays: Vec<i64> = sqlx::query_scalar(
            "SELECT a.decided_at - a.created_at AS delay FROM sharing_agreements a \
             JOIN registries r ON r.id = a.registry_id \
             WHERE r.department_id = $1 AND a.decided_at IS NOT NULL ORDER BY delay",
        )
        .bind(&department_id)
        .fetch_all(&mut *c)
        .await?;
        let calls: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(u.calls), 0) AS BIGINT) AS n FROM exchange_usage u JOIN sharing_agreements a ON a.id = u.agreement_id \
             JOIN registries r ON r.id = a.registry_id WHERE r.department_id = $1",
        )
        .bind(&department_id)
        .fetch_one(&mut *c)
        .await?;
        out.push(DepartmentFigureRow { department_id, registries, requests, granted, decision_delays, calls });
    }
    Ok(out)
}

/// The calls the registries of a department served on days `from..=to` (`YYYY-MM-DD`), and
/// the milliseconds from request to decision of the requests decided in `[start, end)`.
pub async fn department_served(
    c: &mut AnyConnection,
    department_id: &str,
    (from, to): (&str, &str),
    (start, end): (i64, i64),
) -> Result<(i64, Vec<i64>), sqlx::Error> {
    let calls: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(u.calls), 0) AS BIGINT) AS n FROM exchange_usage u \
         JOIN sharing_agreements a ON a.id = u.agreement_id JOIN registries r ON r.id = a.registry_id \
         WHERE r.department_id = $1 AND u.day >= $2 AND u.day <= $3",
    )
    .bind(department_id)
    .bind(from)
    .bind(to)
    .fetch_one(&mut *c)
    .await?;
    let delays: Vec<i64> = sqlx::query_scalar(
        "SELECT a.decided_at - a.created_at AS delay FROM sharing_agreements a \
         JOIN registries r ON r.id = a.registry_id \
         WHERE r.department_id = $1 AND a.decided_at >= $2 AND a.decided_at < $3 ORDER BY delay",
    )
    .bind(department_id)
    .bind(start)
    .bind(end)
    .fetch_all(&mut *c)
    .await?;
    Ok((calls, delays))
}

/// Counts one call of an agreement in this minute, for every node alike: the calls so far.
/// The first call of a minute clears the agreement's older minutes.
pub async fn count_call(c: &mut AnyConnection, agreement_id: &str, minute: i64) -> Result<i64, sqlx::Error> {
    let calls: i64 = sqlx::query_scalar(
        "INSERT INTO exchange_call_counts (agreement_id, minute, calls) VALUES ($1, $2, 1) \
         ON CONFLICT (agreement_id, minute) DO UPDATE SET calls = exchange_call_counts.calls + 1 RETURNING calls",
    )
    .bind(agreement_id)
    .bind(minute)
    .fetch_one(&mut *c)
    .await?;
    if calls == 1 {
        sqlx::query("DELETE FROM exchange_call_counts WHERE agreement_id = $1 AND minute < $2")
            .bind(agreement_id)
            .bind(minute)
            .execute(&mut *c)
            .await?;
    }
    Ok(calls)
}
