//! Public ledgers: a community's income and spending month by month (社区财务公开) and the
//! stages of public-resource transactions (公共资源交易: tender notice, bid opening, award,
//! contract), published by the staff responsible as structured records, each an entry on the
//! `public` ledger carrying the SHA-256 of the record's canonical JSON. A record is never
//! changed; a correction is a new record that names the one it corrects, and both stay.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::repo::{self, PublicRecordRow};
use super::{Error, Openness, china_day, conflict, internal, optional_text, text_between};
use identity::{Capability, RegionLevel};
use kernel::audit::{Action, Outcome};
use kernel::authz::{CommunityFinancePublish, TransactionPublish};
use kernel::db::{from_millis, millis};
use kernel::error::ErrorCode;

kernel::area! {
    /// The public ledgers of community finance and public-resource transactions.
    PublicLedgers of Openness
}

/// The most lines a monthly statement or a transaction record holds.
pub const MAX_LINES: usize = 200;
/// The largest amount a line states, in fen (一百亿元).
pub const MAX_FEN: i64 = 1_000_000_000_000;

kernel::vocabulary! {
    /// Which public ledger a record is on.
    #[schema(as = PublicLedgerKind)]
    pub enum LedgerKind {
        /// 社区财务公开
        CommunityFinance,
        /// 公共资源交易
        Transaction,
    }
}

kernel::vocabulary! {
    /// Money in or out of a community's accounts.
    #[schema(as = PublicLedgerDirection)]
    pub enum Direction {
        /// 收入
        Income,
        /// 支出
        Spending,
    }
}

kernel::vocabulary! {
    /// The stages of a public-resource transaction.
    #[derive(PartialOrd, Ord)]
    #[schema(as = PublicLedgerStage)]
    pub enum Stage {
        /// 招标公告: opens the project.
        TenderNotice,
        /// 开标记录: who bid, and for how much.
        BidOpening,
        /// 中标结果
        Award,
        /// 合同公开
        Contract,
    }
}

/// One line of a monthly statement. Amounts are in fen (分), so sums are exact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PublicLedgerFinanceLine)]
pub struct FinanceLine {
    pub amount_fen: i64,
    /// 科目, such as 上级补助 or 办公费 (1–40 characters).
    pub category: String,
    pub direction: Direction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A community's income and spending of one month, as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PublicLedgerStatement)]
pub struct MonthlyStatement {
    /// The community's region code.
    pub community: String,
    pub lines: Vec<FinanceLine>,
    /// `YYYY-MM`, not after this month.
    pub month: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A party named at a stage: a bidder with its bid, the winner, a contracting party.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PublicLedgerParty)]
pub struct Party {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_fen: Option<i64>,
    pub name: String,
}

/// One stage of a public-resource transaction, as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PublicLedgerTransaction)]
pub struct TransactionRecord {
    /// The amount the stage is about: the budget of a notice, the awarded or contracted sum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_fen: Option<i64>,
    /// What the stage says (the notice's terms, the award's reasons), 2–5,000 characters.
    pub details: String,
    #[serde(default)]
    pub parties: Vec<Party>,
    /// The project's code, such as YL-GC-2026-001.
    pub project_code: String,
    /// The project's name: given by the tender notice, repeated by every later stage.
    pub project_name: String,
    pub stage: Stage,
}

/// What a record says: a community's month or a transaction's stage. Sent as the record
/// itself (untagged), in the form its SHA-256 is taken over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[schema(as = PublicLedgerRecordBody)]
pub enum RecordBody {
    Statement(MonthlyStatement),
    Transaction(TransactionRecord),
}

/// A record on a public ledger, with its proof's coordinates.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = PublicLedgerRecord)]
pub struct PublicRecord {
    pub id: String,
    pub kind: LedgerKind,
    /// The community's code or the project's.
    pub subject_code: String,
    pub subject_name: String,
    /// The statement's month, or the transaction's stage.
    pub period: String,
    /// The record as published: its compact JSON is what the SHA-256 is taken over.
    pub body: RecordBody,
    pub sha256: String,
    pub ledger_index: i64,
    pub published_at: DateTime<Utc>,
    /// The earlier record this one corrects, and the later one that corrects this.
    pub corrects: Option<String>,
    pub corrected_by: Option<String>,
    /// A statement's totals in fen: (income, spending).
    pub totals: Option<(i64, i64)>,
}

/// A community or project with records, for the ledgers' index.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = PublicLedgerSubject)]
pub struct Subject {
    pub kind: LedgerKind,
    pub code: String,
    pub name: String,
    pub records: i64,
    pub last_published_at: DateTime<Utc>,
}

/// An amount in yuan as people type it (`1234`, `1234.5`, `1,234.56`, `¥1234.56`), in fen;
/// none for anything else (a third decimal, a sign, letters).
pub fn fen_of_yuan(text: &str) -> Option<i64> {
    let cleaned: String = text.trim().trim_start_matches(['¥', '￥']).chars().filter(|c| *c != ',').collect();
    let (whole, fraction) = cleaned.split_once('.').unwrap_or((cleaned.as_str(), ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > 2 {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fen = format!("{fraction:0<2}").parse::<i64>().ok()?;
    whole.parse::<i64>().ok()?.checked_mul(100)?.checked_add(fen)
}

/// Fen as yuan with two decimals and thousands separators (1,234.56).
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let (whole, cents) = (fen.unsigned_abs() / 100, fen.unsigned_abs() % 100);
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(d);
    }
    format!("{sign}{grouped}.{cents:02}")
}

fn amount(field: &'static str, fen: i64) -> Result<i64, Error> {
    if !(1..=MAX_FEN).contains(&fen) {
        return Err(Error::invalid(field, "an amount in fen from 1 to 10,000,000,000.00 yuan"));
    }
    Ok(fen)
}

fn month_start(month: &str) -> Result<NaiveDate, Error> {
    NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .map_err(|_| Error::invalid("month", "a month as YYYY-MM"))
}

impl MonthlyStatement {
    fn checked(&self, now: DateTime<Utc>) -> Result<MonthlyStatement, Error> {
        let month = self.month.trim();
        let start = month_start(month)?;
        let today = china_day(now);
        if start > today || start.year() < 2000 {
            return Err(Error::invalid("month", "a month from 2000-01 to this one"));
        }
        if self.lines.is_empty() || self.lines.len() > MAX_LINES {
            return Err(Error::invalid("lines", format!("from 1 to {MAX_LINES} lines")));
        }
        let lines = self
            .lines
            .iter()
            .map(|l| {
                Ok(FinanceLine {
                    amount_fen: amount("amount_fen", l.amount_fen)?,
                    category: text_between("category", &l.category, 1, 40)?,
                    direction: l.direction,
                    note: optional_text("note", l.note.as_deref(), 200)?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(MonthlyStatement {
            community: self.community.trim().to_string(),
            lines,
            month: start.format("%Y-%m").to_string(),
            note: optional_text("note", self.note.as_deref(), 500)?,
        })
    }

    /// (income, spending) in fen.
    pub fn totals(&self) -> (i64, i64) {
        self.lines.iter().fold((0, 0), |(i, s), l| match l.direction {
            Direction::Income => (i + l.amount_fen, s),
            Direction::Spending => (i, s + l.amount_fen),
        })
    }
}

impl TransactionRecord {
    fn checked(&self) -> Result<TransactionRecord, Error> {
        let code = text_between("project_code", &self.project_code, 3, 40)?;
        if !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(Error::invalid("project_code", "letters, digits and hyphens"));
        }
        if self.parties.len() > MAX_LINES {
            return Err(Error::invalid("parties", format!("at most {MAX_LINES}")));
        }
        let needs_parties = matches!(self.stage, Stage::BidOpening | Stage::Award | Stage::Contract);
        if needs_parties && self.parties.is_empty() {
            return Err(Error::invalid("parties", "name the bidders, the winner or the contracting parties"));
        }
        let parties = self
            .parties
            .iter()
            .map(|p| {
                Ok(Party {
                    amount_fen: p.amount_fen.map(|a| amount("amount_fen", a)).transpose()?,
                    name: text_between("parties", &p.name, 2, 100)?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(TransactionRecord {
            amount_fen: self.amount_fen.map(|a| amount("amount_fen", a)).transpose()?,
            details: text_between("details", &self.details, 2, 5_000)?,
            parties,
            project_code: code,
            project_name: text_between("project_name", &self.project_name, 2, 200)?,
            stage: self.stage,
        })
    }
}

/// What the ledger entry of a record says, beside its action.
#[derive(Serialize)]
struct LedgerDetail<'a> {
    kind: LedgerKind,
    subject: &'a str,
    period: &'a str,
    sha256: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    corrects: Option<&'a str>,
}

/// What a record is before it is written.
struct Draft<'a> {
    kind: LedgerKind,
    subject: (&'a str, &'a str),
    period: &'a str,
    region_path: &'a str,
    department_id: Option<&'a str>,
    body: String,
    corrects: Option<String>,
}

impl PublicLedgers<'_> {
    /// Publishes a community's statement of a month: once a month, unless it corrects the
    /// month's latest statement (`corrects`).
    pub async fn publish_statement(
        &self,
        cap: &Capability<CommunityFinancePublish>,
        statement: &MonthlyStatement,
        corrects: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<PublicRecord, Error> {
        let statement = statement.checked(now)?;
        let mut c = self.conn().await?;
        let community = self
            .inner
            .identity
            .organisation()
            .region_in(&mut c, &statement.community)
            .await?
            .ok_or_else(|| Error::invalid("community", "no region has this code"))?;
        drop(c);
        if community.level != RegionLevel::Community.as_str() {
            return Err(Error::invalid("community", "a community's code (社区)"));
        }
        cap.check_record(&community.path, 1)?;
        let body = serde_json::to_string(&statement).map_err(internal)?;
        let draft = Draft {
            kind: LedgerKind::CommunityFinance,
            subject: (&community.code, &community.name),
            period: &statement.month,
            region_path: &community.path,
            department_id: None,
            body,
            corrects: corrects.map(str::to_string),
        };
        self.write(cap.account_id(), draft, Action::CommunityFinancePublished, now).await
    }

    /// Publishes a stage of a public-resource transaction for the officer's department. A
    /// project opens with its tender notice; its later stages keep its name.
    pub async fn publish_transaction(
        &self,
        cap: &Capability<TransactionPublish>,
        record: &TransactionRecord,
        corrects: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<PublicRecord, Error> {
        let record = record.checked()?;
        let department_id =
            cap.department_id().ok_or_else(|| Error::invalid("department", "the officer has no department"))?;
        let department = self
            .inner
            .identity
            .organisation()
            .placed_department_by_id(department_id)
            .await?
            .ok_or(Error::NotFound("department"))?;
        cap.check_record(&department.region_path, 1)?;
        let mut c = self.conn().await?;
        let earlier = repo::public_records(&mut c, LedgerKind::Transaction, &record.project_code).await?;
        drop(c);
        match earlier.first() {
            None if record.stage != Stage::TenderNotice => {
                return Err(Error::invalid("stage", "a project opens with its tender notice"));
            }
            None => {}
            Some(first) => {
                // A project stays with the department that opened it.
                let owner =
                    first.department_id.as_deref().ok_or_else(|| internal("a transaction without its department"))?;
                cap.check_department(owner)?;
                if first.subject_name != record.project_name {
                    return Err(Error::invalid("project_name", "the name the project's tender notice gave"));
                }
            }
        }
        let body = serde_json::to_string(&record).map_err(internal)?;
        let draft = Draft {
            kind: LedgerKind::Transaction,
            subject: (&record.project_code, &record.project_name),
            period: record.stage.as_str(),
            region_path: &department.region_path,
            department_id: Some(department_id),
            body,
            corrects: corrects.map(str::to_string),
        };
        self.write(cap.account_id(), draft, Action::PublicTransactionPublished, now).await
    }

    /// A community's statements or a project's stages, oldest first.
    pub async fn records(&self, kind: LedgerKind, subject_code: &str) -> Result<Vec<PublicRecord>, Error> {
        let mut c = self.conn().await?;
        let rows = repo::public_records(&mut c, kind, subject_code.trim()).await?;
        let corrected: BTreeMap<String, String> =
            rows.iter().filter_map(|r| r.corrects.clone().map(|earlier| (earlier, r.id.clone()))).collect();
        rows.into_iter().map(|r| record(r, &corrected)).collect()
    }

    /// The communities and projects with records, newest first.
    pub async fn subjects(&self, kind: LedgerKind) -> Result<Vec<Subject>, Error> {
        let mut c = self.conn().await?;
        Ok(repo::public_subjects(&mut c, kind)
            .await?
            .into_iter()
            .map(|(code, name, records, last)| Subject {
                kind,
                code,
                name,
                records,
                last_published_at: from_millis(last),
            })
            .collect())
    }

    async fn write(
        &self,
        actor: &str,
        d: Draft<'_>,
        action: Action,
        now: DateTime<Utc>,
    ) -> Result<PublicRecord, Error> {
        let sha256 = hex::encode(Sha256::digest(d.body.as_bytes()));
        let mut tx = self.inner.db.begin().await?;
        let earlier = repo::public_records(&mut tx, d.kind, d.subject.0).await?;
        match &d.corrects {
            Some(id) => {
                let target = earlier
                    .iter()
                    .find(|r| &r.id == id)
                    .ok_or_else(|| Error::invalid("corrects", "not a record of this community or project"))?;
                if target.period != d.period {
                    return Err(Error::invalid("corrects", "a correction is of the same month or stage"));
                }
                if earlier.iter().any(|r| r.corrects.as_deref() == Some(id.as_str())) {
                    return Err(conflict(ErrorCode::RecordChanged, "that record is already corrected"));
                }
            }
            None => {
                let once = d.kind == LedgerKind::CommunityFinance || d.period != Stage::BidOpening.as_str();
                if once && earlier.iter().any(|r| r.period == d.period) {
                    return Err(conflict(
                        ErrorCode::AlreadyPublished,
                        "already published: publish a correction of it instead",
                    ));
                }
            }
        }
        let detail = LedgerDetail {
            kind: d.kind,
            subject: d.subject.0,
            period: d.period,
            sha256: &sha256,
            corrects: d.corrects.as_deref(),
        };
        let mut entry = ledger::Entry::new(action, Outcome::Success, now);
        entry.object = Some(d.subject.0.to_string());
        entry.jurisdiction = Some(d.region_path.to_string());
        entry.detail = Some(serde_json::to_string(&detail).map_err(internal)?);
        let ledger_index = ledger::append_in(&mut tx, ledger::Log::Public, &entry).await?;
        let row = PublicRecordRow {
            id: kernel::db::new_id(),
            kind: d.kind,
            subject_code: d.subject.0.to_string(),
            subject_name: d.subject.1.to_string(),
            period: d.period.to_string(),
            region_path: d.region_path.to_string(),
            department_id: d.department_id.map(str::to_string),
            body: d.body,
            sha256,
            ledger_index: i64::try_from(ledger_index).map_err(internal)?,
            corrects: d.corrects,
            published_by: actor.to_string(),
            published_at: millis(now),
        };
        repo::insert_public_record(&mut tx, &row).await?;
        tx.commit().await?;
        record(row, &BTreeMap::new())
    }
}

fn record(r: PublicRecordRow, corrected: &BTreeMap<String, String>) -> Result<PublicRecord, Error> {
    // Written from these types: a body that does not read back is a fault.
    let body = match r.kind {
        LedgerKind::CommunityFinance => RecordBody::Statement(serde_json::from_str(&r.body).map_err(internal)?),
        LedgerKind::Transaction => RecordBody::Transaction(serde_json::from_str(&r.body).map_err(internal)?),
    };
    let totals = match &body {
        RecordBody::Statement(s) => Some(s.totals()),
        RecordBody::Transaction(_) => None,
    };
    Ok(PublicRecord {
        corrected_by: corrected.get(&r.id).cloned(),
        id: r.id,
        kind: r.kind,
        subject_code: r.subject_code,
        subject_name: r.subject_name,
        period: r.period,
        body,
        sha256: r.sha256,
        ledger_index: r.ledger_index,
        published_at: from_millis(r.published_at),
        corrects: r.corrects,
        totals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_in_yuan_read_to_the_fen_and_nothing_else() {
        for (text, fen) in
            [("1234", 123_400), ("1234.5", 123_450), ("1,234.56", 123_456), ("￥0.07", 7), ("  12.30 ", 1_230)]
        {
            assert_eq!(fen_of_yuan(text), Some(fen), "{text}");
        }
        for bad in ["", "-5", "1.234", "12a", "1.2.3", ".5", "¥", "99999999999999999999"] {
            assert_eq!(fen_of_yuan(bad), None, "{bad}");
        }
        assert_eq!(yuan(123_456), "1,234.56");
        assert_eq!(yuan(7), "0.07");
        assert_eq!(yuan(100_000_000_000), "1,000,000,000.00");
    }
}
