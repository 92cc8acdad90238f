//! 主动公开: documents a department publishes of its own accord, with the metadata Chinese
//! portals carry, every revision kept, and each publication, revision and repeal an entry on
//! the `public` ledger whose SHA-256 anyone can recompute from the revision the API returns.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

use super::repo::{self, DocumentRow, RevisionRow};
use super::search::DocumentIndex;
use super::{
    Change, DocumentKind, Error, Openness, Theme, Validity, china_day, conflict, internal, optional_text, text_between,
};
use identity::{Capability, PlacedDepartment};
use kernel::audit::{Action, Outcome};
use kernel::authz::DisclosurePublish;
use kernel::db::{from_millis, millis};
use kernel::error::ErrorCode;

kernel::area! {
    /// A department's officers publish, revise and repeal documents and set its guide.
    Publishing of Openness
}

kernel::area! {
    /// What anyone may read: documents, their history, search, catalogues and guides.
    Documents of Openness
}

/// What an officer writes, and may change in a revision.
#[derive(Debug, Clone)]
pub struct DocumentText {
    pub theme: Theme,
    pub title: String,
    /// 文号, such as 明政发〔2026〕3号.
    pub document_number: Option<String>,
    /// 成文日期
    pub written_on: NaiveDate,
    pub body: String,
}

/// A document to publish: who publishes it, what it is, and its text.
#[derive(Debug, Clone)]
pub struct DocumentDraft {
    /// The publishing department's code (发布机构): the officer's own.
    pub department: String,
    pub kind: DocumentKind,
    /// For a 政策解读, the id of the policy it explains.
    pub interprets: Option<String>,
    pub text: DocumentText,
}

/// A published document as catalogues and search list it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DisclosureDocumentSummary)]
pub struct DocumentSummary {
    pub id: String,
    /// 索引号
    pub index_number: String,
    pub department_code: String,
    /// 发布机构
    pub department_name: String,
    pub kind: DocumentKind,
    pub theme: Theme,
    pub title: String,
    /// 文号
    pub document_number: Option<String>,
    /// 成文日期
    pub written_on: NaiveDate,
    /// 发布日期
    pub published_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// 有效性
    pub validity: Validity,
    pub version: i64,
    /// For a 政策解读, the policy it explains.
    pub interprets: Option<String>,
}

/// One publication, revision or repeal of a document, as it stood then.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DisclosureRevision)]
pub struct Revision {
    pub version: i64,
    pub change: Change,
    pub title: String,
    pub document_number: Option<String>,
    pub written_on: NaiveDate,
    pub theme: Theme,
    pub body: String,
    /// Why it was revised or repealed.
    pub note: Option<String>,
    /// SHA-256 (hex) of the revision's canonical JSON, as its ledger entry carries it.
    pub sha256: String,
    /// Its entry on the `public` ledger.
    pub ledger_index: i64,
    pub changed_at: DateTime<Utc>,
}

/// A link to another document.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DisclosureDocumentLink)]
pub struct DocumentLink {
    pub id: String,
    pub title: String,
}

/// A document with its text, its history and the documents that explain it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DisclosureDocument)]
pub struct Document {
    #[serde(flatten)]
    pub summary: DocumentSummary,
    pub body: String,
    /// The policy a 政策解读 explains.
    pub interprets_document: Option<DocumentLink>,
    /// The 政策解读 of this document.
    pub interpretations: Vec<DocumentLink>,
    /// Oldest first; the last is in force.
    pub history: Vec<Revision>,
}

impl Document {
    /// The revision in force (the last).
    pub fn current(&self) -> Option<&Revision> {
        self.history.last()
    }
}

/// What a search asks for.
#[derive(Debug, Clone, Default)]
pub struct DocumentFilter {
    /// Words to find in titles, numbers and text.
    pub q: String,
    /// A department's code.
    pub department: Option<String>,
    pub kind: Option<DocumentKind>,
    pub theme: Option<Theme>,
    pub validity: Option<Validity>,
    /// The year of publication.
    pub year: Option<i32>,
}

/// A page of search results, with how many matched by kind, theme and department.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DisclosureSearchResult)]
pub struct SearchResult {
    pub total: usize,
    pub documents: Vec<DocumentSummary>,
    pub by_kind: BTreeMap<String, usize>,
    pub by_theme: BTreeMap<String, usize>,
    /// department code → (name, count)
    pub by_department: BTreeMap<String, (String, usize)>,
}

/// A department's 政府信息公开指南 and 目录.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DisclosureGuide)]
pub struct Guide {
    pub department_code: String,
    pub department_name: String,
    /// None until the department writes one.
    pub guide: Option<String>,
    pub guide_updated_at: Option<DateTime<Utc>>,
    /// The catalogue: every document it published, newest first.
    pub documents: Vec<DocumentSummary>,
}

/// The bytes a revision's SHA-256 is taken over: these fields as JSON, in this order, no
/// whitespace. Recompute it from `GET /api/v1/disclosure/documents/{id}` to check a page
/// against the ledger.
#[derive(Serialize)]
struct Canonical<'a> {
    body: &'a str,
    change: Change,
    document_id: &'a str,
    document_number: Option<&'a str>,
    index_number: &'a str,
    kind: DocumentKind,
    theme: Theme,
    title: &'a str,
    version: i64,
    written_on: &'a str,
}

fn sha256_of(d: &DocumentRow, change: Change) -> Result<String, Error> {
    let canonical = Canonical {
        body: &d.body,
        change,
        document_id: &d.id,
        document_number: d.document_number.as_deref(),
        index_number: &d.index_number,
        kind: d.kind,
        theme: d.theme,
        title: &d.title,
        version: d.version,
        written_on: &d.written_on,
    };
    let bytes = serde_json::to_vec(&canonical).map_err(internal)?;
    Ok(hex::encode(Sha256::digest(bytes)))
}

/// The public ledger's record of a change to a document.
#[derive(Serialize)]
struct LedgerDetail<'a> {
    index_number: &'a str,
    title: &'a str,
    version: i64,
    sha256: &'a str,
}

impl DocumentText {
    fn checked(&self, now: DateTime<Utc>) -> Result<DocumentText, Error> {
        let earliest = NaiveDate::from_ymd_opt(1949, 10, 1).ok_or_else(|| internal("calendar"))?;
        if self.written_on < earliest || self.written_on > china_day(now) {
            return Err(Error::invalid("written_on", "a date from 1949-10-01 to today"));
        }
        Ok(DocumentText {
            theme: self.theme,
            title: text_between("title", &self.title, 2, 200)?,
            document_number: optional_text("document_number", self.document_number.as_deref(), 60)?,
            written_on: self.written_on,
            body: text_between("body", &self.body, 10, 200_000)?,
        })
    }
}

impl Publishing<'_> {
    /// Publishes a document for the officer's department, on the `public` ledger.
    pub async fn publish(
        &self,
        cap: &Capability<DisclosurePublish>,
        draft: DocumentDraft,
        now: DateTime<Utc>,
    ) -> Result<Document, Error> {
        let text = draft.text.checked(now)?;
        let department = self.publisher(cap, &draft.department).await?;
        let interprets = match (draft.kind, draft.interprets.as_deref().map(str::trim).filter(|s| !s.is_empty())) {
            (DocumentKind::Interpretation, Some(id)) => {
                let mut c = self.conn().await?;
                let policy = repo::document(&mut c, id)
                    .await?
                    .ok_or_else(|| Error::invalid("interprets", "no published document has this id"))?;
                if matches!(policy.kind, DocumentKind::Interpretation) {
                    return Err(Error::invalid(
                        "interprets",
                        "an interpretation explains a policy, not another interpretation",
                    ));
                }
                Some(policy.id)
            }
            (DocumentKind::Interpretation, None) => {
                return Err(Error::invalid("interprets", "name the policy this interpretation explains"));
            }
            (_, Some(_)) => return Err(Error::invalid("interprets", "only an interpretation explains a policy")),
            (_, None) => None,
        };
        let mut tx = self.inner.db.begin().await?;
        let year = china_day(now).year();
        let n = repo::next_index_number(&mut tx, &department.department.id, year).await?;
        let row = DocumentRow {
            id: kernel::db::new_id(),
            index_number: format!("{}/{year}-{n:05}", department.department.code),
            department_id: department.department.id.clone(),
            region_path: department.region_path.clone(),
            kind: draft.kind,
            theme: text.theme,
            title: text.title,
            document_number: text.document_number,
            written_on: text.written_on.to_string(),
            published_at: millis(now),
            validity: Validity::InForce,
            interprets,
            version: 1,
            body: text.body,
            updated_at: millis(now),
        };
        repo::insert_document(&mut tx, &row).await?;
        self.record(&mut tx, cap, &row, (Change::Published, None), now).await?;
        tx.commit().await?;
        self.documents().document(&row.id).await
    }

    /// Revises a document in force; the earlier text stays in its history. `read_version`
    /// is the version the officer edited: if someone revised it since, nothing is written.
    pub async fn revise(
        &self,
        cap: &Capability<DisclosurePublish>,
        id: &str,
        read_version: i64,
        text: DocumentText,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<Document, Error> {
        let text = text.checked(now)?;
        let note = text_between("note", note, 2, 500)?;
        let mut row = self.own(cap, id).await?;
        if row.validity == Validity::Repealed {
            return Err(conflict(ErrorCode::DocumentRepealed, "a repealed document is not revised"));
        }
        row.theme = text.theme;
        row.title = text.title;
        row.document_number = text.document_number;
        row.written_on = text.written_on.to_string();
        row.body = text.body;
        self.write_change(cap, row, read_version, (Change::Revised, note), now).await
    }

    /// Repeals a document (废止): it stays readable, marked repealed, with the reason.
    pub async fn repeal(
        &self,
        cap: &Capability<DisclosurePublish>,
        id: &str,
        read_version: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Document, Error> {
        let reason = text_between("reason", reason, 2, 500)?;
        let mut row = self.own(cap, id).await?;
        if row.validity == Validity::Repealed {
            return Err(conflict(ErrorCode::DocumentRepealed, "the document is already repealed"));
        }
        row.validity = Validity::Repealed;
        self.write_change(cap, row, read_version, (Change::Repealed, reason), now).await
    }

    /// Sets a department's 政府信息公开指南.
    pub async fn set_guide(
        &self,
        cap: &Capability<DisclosurePublish>,
        department_code: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let body = text_between("guide", body, 10, 20_000)?;
        let department = self.publisher(cap, department_code).await?;
        let mut tx = self.inner.db.begin().await?;
        repo::set_guide(&mut tx, &department.department.id, &body, cap.account_id(), millis(now)).await?;
        let mut entry = ledger::Entry::new(Action::DisclosureGuideSet, Outcome::Success, now);
        entry.actor = Some(cap.account_id().to_string());
        entry.object = Some(department.department.code.clone());
        entry.jurisdiction = Some(department.region_path.clone());
        ledger::append_in(&mut tx, ledger::Log::Audit, &entry).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The officer's department's documents, newest first.
    pub async fn mine(&self, cap: &Capability<DisclosurePublish>) -> Result<Vec<DocumentSummary>, Error> {
        let id = cap.department_id().ok_or(Error::NotFound("department"))?;
        let department = self.documents().department(id).await?;
        let index = self.documents().index().await?;
        Ok(index.find("").into_iter().filter(|d| d.department_code == department.department.code).cloned().collect())
    }

    /// The department an officer publishes for: their own (the console, any).
    async fn publisher(&self, cap: &Capability<DisclosurePublish>, code: &str) -> Result<PlacedDepartment, Error> {
        self.department_for(cap, code).await
    }

    /// A document of the officer's department.
    async fn own(&self, cap: &Capability<DisclosurePublish>, id: &str) -> Result<DocumentRow, Error> {
        let mut c = self.conn().await?;
        let row = repo::document(&mut c, id).await?.ok_or(Error::NotFound("document"))?;
        cap.check_department(&row.department_id)?;
        Ok(row)
    }

    async fn write_change(
        &self,
        cap: &Capability<DisclosurePublish>,
        mut row: DocumentRow,
        read_version: i64,
        (change, note): (Change, String),
        now: DateTime<Utc>,
    ) -> Result<Document, Error> {
        if row.version != read_version {
            return Err(conflict(ErrorCode::RecordChanged, "the document changed since you opened it"));
        }
        row.version += 1;
        row.updated_at = millis(now);
        let mut tx = self.inner.db.begin().await?;
        if !repo::update_document(&mut tx, &row, read_version).await? {
            return Err(conflict(ErrorCode::RecordChanged, "the document changed since you opened it"));
        }
        self.record(&mut tx, cap, &row, (change, Some(note)), now).await?;
        tx.commit().await?;
        self.documents().document(&row.id).await
    }

    /// The revision row and its `public` ledger entry, in the caller's transaction.
    async fn record(
        &self,
        tx: &mut AnyConnection,
        cap: &Capability<DisclosurePublish>,
        row: &DocumentRow,
        (change, note): (Change, Option<String>),
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let sha256 = sha256_of(row, change)?;
        let action = match change {
            Change::Published => Action::DisclosurePublished,
            Change::Revised => Action::DisclosureRevised,
            Change::Repealed => Action::DisclosureRepealed,
        };
        let detail =
            LedgerDetail { index_number: &row.index_number, title: &row.title, version: row.version, sha256: &sha256 };
        let mut entry = ledger::Entry::new(action, Outcome::Success, now);
        entry.object = Some(row.id.clone());
        entry.jurisdiction = Some(row.region_path.clone());
        entry.detail = Some(serde_json::to_string(&detail).map_err(internal)?);
        let ledger_index = ledger::append_in(tx, ledger::Log::Public, &entry).await?;
        let revision = RevisionRow {
            document_id: row.id.clone(),
            version: row.version,
            change,
            title: row.title.clone(),
            document_number: row.document_number.clone(),
            written_on: row.written_on.clone(),
            theme: row.theme,
            body: row.body.clone(),
            note,
            sha256,
            ledger_index: i64::try_from(ledger_index).map_err(internal)?,
            changed_by: cap.account_id().to_string(),
            changed_at: millis(now),
        };
        repo::insert_revision(tx, &revision).await?;
        Ok(())
    }
}

fn parse_day(s: &str) -> Result<NaiveDate, Error> {
    s.parse().map_err(|_| internal(format!("a stored date does not parse: {s}")))
}

impl Documents<'_> {
    /// A document with its text and history.
    pub async fn document(&self, id: &str) -> Result<Document, Error> {
        let mut c = self.conn().await?;
        let row = repo::document(&mut c, id).await?.ok_or(Error::NotFound("document"))?;
        // Identity takes a connection of its own: do not hold two at once.
        drop(c);
        let department = self.department(&row.department_id).await?;
        let mut c = self.conn().await?;
        let interprets_document = match &row.interprets {
            Some(p) => repo::document(&mut c, p).await?.map(|d| DocumentLink { id: d.id, title: d.title }),
            None => None,
        };
        let interpretations = repo::interpretations(&mut c, id)
            .await?
            .into_iter()
            .map(|(id, title)| DocumentLink { id, title })
            .collect();
        let history = repo::revisions(&mut c, id).await?.into_iter().map(revision).collect::<Result<Vec<_>, _>>()?;
        Ok(Document {
            summary: summary(&row, &department)?,
            body: row.body,
            interprets_document,
            interpretations,
            history,
        })
    }

    /// Documents matching a search, a page at a time (`page` from 1), with facet counts over
    /// every match.
    pub async fn search(&self, filter: &DocumentFilter, page: usize, per_page: usize) -> Result<SearchResult, Error> {
        let index = self.index().await?;
        let department = filter.department.as_deref().map(str::trim).filter(|d| !d.is_empty());
        let matches: Vec<&DocumentSummary> = index
            .find(&filter.q)
            .into_iter()
            .filter(|d| department.is_none_or(|code| d.department_code == code))
            .filter(|d| filter.kind.is_none_or(|k| d.kind == k))
            .filter(|d| filter.theme.is_none_or(|t| d.theme == t))
            .filter(|d| filter.validity.is_none_or(|v| d.validity == v))
            .filter(|d| {
                filter.year.is_none_or(|y| d.published_at.with_timezone(&services::calendar::cst()).year() == y)
            })
            .collect();
        let mut result = SearchResult {
            total: matches.len(),
            documents: Vec::new(),
            by_kind: BTreeMap::new(),
            by_theme: BTreeMap::new(),
            by_department: BTreeMap::new(),
        };
        for d in &matches {
            *result.by_kind.entry(d.kind.as_str().to_string()).or_default() += 1;
            *result.by_theme.entry(d.theme.as_str().to_string()).or_default() += 1;
            result
                .by_department
                .entry(d.department_code.clone())
                .or_insert_with(|| (d.department_name.clone(), 0))
                .1 += 1;
        }
        let skip = page.saturating_sub(1).saturating_mul(per_page);
        result.documents = matches.into_iter().skip(skip).take(per_page).cloned().collect();
        Ok(result)
    }

    /// The most recently changed documents (the Atom feed), newest change first.
    pub async fn recent(&self, n: usize) -> Result<Vec<Document>, Error> {
        let index = self.index().await?;
        let mut latest: Vec<&DocumentSummary> = index.find("");
        latest.sort_by_key(|d| std::cmp::Reverse(d.updated_at));
        let mut out = Vec::with_capacity(n.min(latest.len()));
        for d in latest.into_iter().take(n) {
            out.push(self.document(&d.id).await?);
        }
        Ok(out)
    }

    /// A department's guide and catalogue (目录).
    pub async fn guide(&self, department_code: &str) -> Result<Guide, Error> {
        let department = self
            .inner
            .identity
            .organisation()
            .placed_department(department_code.trim())
            .await?
            .ok_or(Error::NotFound("department"))?;
        let mut c = self.conn().await?;
        let guide = repo::guide(&mut c, &department.department.id).await?;
        drop(c);
        let index = self.index().await?;
        let documents =
            index.find("").into_iter().filter(|d| d.department_code == department.department.code).cloned().collect();
        Ok(Guide {
            department_code: department.department.code,
            department_name: department.department.name,
            guide_updated_at: guide.as_ref().map(|(_, at)| from_millis(*at)),
            guide: guide.map(|(body, _)| body),
            documents,
        })
    }

    /// The departments that have published, with how many documents: (code, name, count).
    pub async fn publishers(&self) -> Result<Vec<(String, String, usize)>, Error> {
        let index = self.index().await?;
        let mut by: BTreeMap<String, (String, usize)> = BTreeMap::new();
        for d in index.find("") {
            by.entry(d.department_code.clone()).or_insert_with(|| (d.department_name.clone(), 0)).1 += 1;
        }
        Ok(by.into_iter().map(|(code, (name, n))| (code, name, n)).collect())
    }

    async fn department(&self, id: &str) -> Result<PlacedDepartment, Error> {
        self.inner
            .identity
            .organisation()
            .placed_department_by_id(id)
            .await?
            .ok_or_else(|| internal(format!("a document's department {id} is gone")))
    }

    /// The search index, rebuilt when the stored documents changed since it was built.
    pub(crate) async fn index(&self) -> Result<Arc<DocumentIndex>, Error> {
        let mut c = self.conn().await?;
        let generation = repo::generation(&mut c).await?;
        {
            let held = match self.inner.index.read() {
                Ok(held) => held,
                Err(poisoned) => poisoned.into_inner(),
            };
            if let Some((g, index)) = held.as_ref()
                && *g == generation
            {
                return Ok(index.clone());
            }
        }
        let rows = repo::documents(&mut c).await?;
        drop(c);
        let mut departments: HashMap<String, PlacedDepartment> = HashMap::new();
        let mut documents = Vec::with_capacity(rows.len());
        for row in rows {
            if !departments.contains_key(&row.department_id) {
                let d = self.department(&row.department_id).await?;
                departments.insert(row.department_id.clone(), d);
            }
            let department =
                departments.get(&row.department_id).ok_or_else(|| internal("a department just looked up"))?;
            documents.push((summary(&row, department)?, row.body));
        }
        let index = Arc::new(DocumentIndex::build(documents).map_err(internal)?);
        let mut held = match self.inner.index.write() {
            Ok(held) => held,
            Err(poisoned) => poisoned.into_inner(),
        };
        *held = Some((generation, index.clone()));
        Ok(index)
    }
}

fn summary(row: &DocumentRow, department: &PlacedDepartment) -> Result<DocumentSummary, Error> {
    Ok(DocumentSummary {
        id: row.id.clone(),
        index_number: row.index_number.clone(),
        department_code: department.department.code.clone(),
        department_name: department.department.name.clone(),
        kind: row.kind,
        theme: row.theme,
        title: row.title.clone(),
        document_number: row.document_number.clone(),
        written_on: parse_day(&row.written_on)?,
        published_at: from_millis(row.published_at),
        updated_at: from_millis(row.updated_at),
        validity: row.validity,
        version: row.version,
        interprets: row.interprets.clone(),
    })
}

fn revision(r: RevisionRow) -> Result<Revision, Error> {
    Ok(Revision {
        version: r.version,
        change: r.change,
        written_on: parse_day(&r.written_on)?,
        title: r.title,
        document_number: r.document_number,
        theme: r.theme,
        body: r.body,
        note: r.note,
        sha256: r.sha256,
        ledger_index: r.ledger_index,
        changed_at: from_millis(r.changed_at),
    })
}
