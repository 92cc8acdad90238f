//! Ratings and their answers.

use sqlx::AnyConnection;

pub async fn insert_rating(
    c: &mut AnyConnection,
    application_id: &str,
    applicant_id: &str,
    department_id: &str,
    score: i64,
    comment: Option<&str>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO ratings (application_id, applicant_id, department_id, score, comment, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (application_id) DO NOTHING",
    )
    .bind(application_id)
    .bind(applicant_id)
    .bind(department_id)
    .bind(score)
    .bind(comment)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(sqlx::FromRow)]
pub struct RatingRow {
    pub score: i64,
    pub comment: Option<String>,
    pub created_at: i64,
    pub reply: Option<String>,
    pub replied_at: Option<i64>,
}

pub async fn rating(c: &mut AnyConnection, application_id: &str) -> Result<Option<RatingRow>, sqlx::Error> {
    sqlx::query_as("SELECT score, comment, created_at, reply, replied_at FROM ratings WHERE application_id = $1")
        .bind(application_id)
        .fetch_optional(c)
        .await
}

pub async fn reply_rating(
    c: &mut AnyConnection,
    application_id: &str,
    reply: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE ratings SET reply = $1, replied_at = $2 WHERE application_id = $3 AND reply IS NULL")
            .bind(reply)
            .bind(now)
            .bind(application_id)
            .execute(c)
            .await?;
    Ok(done.rows_affected() == 1)
}
