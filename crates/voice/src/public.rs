//! The public list of answered requests (诉求公开): only those whose authors agreed, without
//! who made them, and with telephone, identity-card and other long numbers and e-mail
//! addresses masked in the text and the answer.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use regex::Regex;
use serde::Serialize;

use super::repo;
use super::{Category, Error, Rating, RequestKind, Voice, internal};
use kernel::db::from_millis;

kernel::area! {
    /// Answered requests open to the public.
    Published of Voice
}

/// How many answers a page of the list shows.
pub const PER_PAGE: u32 = 20;

/// An answered request as the public reads it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = VoicePublishedAnswer)]
pub struct PublishedAnswer {
    pub number: String,
    pub kind: RequestKind,
    pub category: Category,
    pub region_name: String,
    pub department_name: Option<String>,
    pub text: String,
    pub answer: String,
    pub rating: Option<Rating>,
    pub submitted_at: DateTime<Utc>,
    pub answered_at: DateTime<Utc>,
}

/// Long numbers (telephone, identity-card and account numbers, with the separators people
/// type inside them and an ID's final X) and e-mail addresses.
static TRACEABLE: LazyLock<Result<Regex, regex::Error>> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+|[0-9](?:[0-9 -]*[0-9])?[Xx]?"));

/// Masks what could name or reach a person: runs of seven or more digits and e-mail
/// addresses. House numbers, dates and counts stay.
pub fn deidentify(text: &str) -> Result<String, Error> {
    let re = TRACEABLE.as_ref().map_err(internal)?;
    Ok(re
        .replace_all(text, |m: &regex::Captures<'_>| {
            let found = m.get(0).map_or("", |m| m.as_str());
            if found.contains('@') || found.chars().filter(char::is_ascii_digit).count() >= 7 {
                "＊＊＊＊".to_string()
            } else {
                found.to_string()
            }
        })
        .into_owned())
}

impl Published<'_> {
    /// A page (from 1) of the published answers, the latest first.
    pub async fn page(&self, page: u32) -> Result<Vec<PublishedAnswer>, Error> {
        if page == 0 || page > 10_000 {
            return Err(Error::invalid("page", "a page number from 1"));
        }
        let mut c = self.conn().await?;
        let offset = i64::from((page - 1) * PER_PAGE);
        let rows = repo::published_answers(&mut c, i64::from(PER_PAGE), offset).await?;
        let organisation = self.inner.identity.organisation();
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let region = organisation.region_in(&mut c, &row.region_code).await?;
            let department_name = match &row.department_id {
                Some(id) => organisation.department_name_in(&mut c, id).await?,
                None => None,
            };
            let category = self.inner.categories.get(&row.category).cloned();
            let (Some(region), Some(category), Some(answer)) = (region, category, row.answer) else {
                return Err(internal(format!("request {} does not read back whole", row.number)));
            };
            out.push(PublishedAnswer {
                number: row.number,
                kind: row.kind,
                category,
                region_name: region.name,
                department_name,
                text: deidentify(&row.text)?,
                answer: deidentify(&answer)?,
                rating: row.rating.map(Rating::try_from).transpose().map_err(internal)?,
                submitted_at: from_millis(row.created_at),
                answered_at: from_millis(row.updated_at),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::deidentify;

    #[test]
    fn numbers_and_addresses_that_reach_a_person_are_masked() {
        let d = |t: &str| deidentify(t).unwrap();
        assert_eq!(d("我电话13812345678，身份证11010519491231002X"), "我电话＊＊＊＊，身份证＊＊＊＊");
        assert_eq!(d("打 010-6552 1234 找我"), "打 ＊＊＊＊ 找我");
        assert_eq!(d("写信到 wang.li+x@example.com 谢谢"), "写信到 ＊＊＊＊ 谢谢");
        // House numbers, dates and counts stay.
        assert_eq!(d("幸福路12号3单元，2026年12月已经坏了3天"), "幸福路12号3单元，2026年12月已经坏了3天");
    }
}
