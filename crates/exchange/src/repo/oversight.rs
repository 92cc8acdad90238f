//! Consent verification and audit queries.

use sqlx::AnyConnection;

use super::consent::ConsentRecordColumns;
use super::signatures::SignatureColumns;
use super::*;

// --- consent verification and audit ------------------------------------------------------

/// Which consent records a verifier or an auditor asks for (GovStack ConsentRecordFilter:
/// id and opt-in; and the agreement and individual a verifier knows).
#[derive(Debug, Default)]
pub struct ConsentRecordQuery {
    pub id: Option<String>,
    pub data_agreement_id: Option<String>,
    pub individual_id: Option<String>,
    pub opt_in: Option<bool>,
}

/// Whose data agreements a query reaches: a consuming department sees those of its own
/// sharing agreements and the organisation's own (tied to no sharing agreement).
const VISIBLE_TO: &str = "(d.sharing_agreement_id IS NULL OR d.sharing_agreement_id IN \
                          (SELECT id FROM sharing_agreements WHERE consumer_department_id = $1))";

/// One page of the consent records a query selects, oldest first, and how many there are.
pub async fn consent_records_where(
    c: &mut AnyConnection,
    q: &ConsentRecordQuery,
    consumer_department: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ConsentRecordRow>, i64), sqlx::Error> {
    // $1 is always the department (unused when none is given), so the others number alike.
    let mut conditions = vec![if consumer_department.is_some() { VISIBLE_TO } else { "$1 IS NULL" }.to_string()];
    let mut texts = Vec::new();
    for (column, value) in
        [("r.id", &q.id), ("r.data_agreement_id", &q.data_agreement_id), ("r.individual_id", &q.individual_id)]
    {
        if let Some(v) = value {
            texts.push(v.clone());
            conditions.push(format!("{column} = ${}", texts.len() + 1));
        }
    }
    if let Some(opt_in) = q.opt_in {
        conditions.push(format!("r.opt_in = {}", i64::from(opt_in)));
    }
    let from = format!(
        "FROM consent_records r JOIN consent_revisions v ON v.id = r.agreement_revision \
         JOIN consent_data_agreements d ON d.id = r.data_agreement_id WHERE {}",
        conditions.join(" AND ")
    );
    let count = format!("SELECT COUNT(*) AS n {from}");
    let list = format!(
        "SELECT r.id, r.data_agreement_id, r.agreement_revision, v.hash, r.individual_id, r.opt_in, r.state, \
         r.expires_at, r.created_at {from} ORDER BY r.created_at, r.id LIMIT {limit} OFFSET {offset}"
    );
    let mut total =
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count)).bind(consumer_department.map(str::to_string));
    let mut rows = sqlx::query_as::<_, ConsentRecordColumns>(sqlx::AssertSqlSafe(list))
        .bind(consumer_department.map(str::to_string));
    for t in &texts {
        total = total.bind(t.clone());
        rows = rows.bind(t.clone());
    }
    let total = total.fetch_one(&mut *c).await?;
    let rows = rows.fetch_all(c).await?.into_iter().map(ConsentRecordRow::from).collect();
    Ok((rows, total))
}

/// Data agreements as a verifier (a consuming department, live ones) or an auditor (every
/// one, deleted too, with when) sees them.
pub async fn data_agreements_for(
    c: &mut AnyConnection,
    consumer_department: Option<&str>,
) -> Result<Vec<(String, Option<i64>)>, sqlx::Error> {
    let filter = if consumer_department.is_some() {
        format!("WHERE d.deleted_at IS NULL AND {VISIBLE_TO}")
    } else {
        "WHERE $1 IS NULL".to_string()
    };
    let q = format!("SELECT d.body, d.deleted_at FROM consent_data_agreements d {filter} ORDER BY d.created_at, d.id");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(consumer_department.map(str::to_string)).fetch_all(c).await
}

/// A data agreement by id, deleted too (the auditor's read): (body, deleted at).
pub async fn data_agreement_ever(
    c: &mut AnyConnection,
    id: &str,
) -> Result<Option<(String, Option<i64>)>, sqlx::Error> {
    sqlx::query_as("SELECT body, deleted_at FROM consent_data_agreements WHERE id = $1")
        .bind(id)
        .fetch_optional(c)
        .await
}

/// Every signature of a record, oldest first.
pub async fn signatures_of(c: &mut AnyConnection, record_id: &str) -> Result<Vec<SignatureRow>, sqlx::Error> {
    let rows = sqlx::query_as::<_, SignatureColumns>(
        "SELECT id, record_id, body, verified FROM consent_signatures WHERE record_id = $1 ORDER BY created_at, id",
    )
    .bind(record_id)
    .fetch_all(c)
    .await?;
    Ok(rows.into_iter().map(SignatureRow::from).collect())
}
