//! 政府信息公开, after the State Council's regulation of 2019: what a department publishes of
//! its own accord (主动公开) — with the metadata Chinese portals carry, every revision kept
//! and each publication, revision and repeal an entry on the `public` ledger — its disclosure
//! guide and catalogue, the requests people make for information (依申请公开) answered
//! within 20 working days, and the annual report computed from those records; and the public
//! ledgers of community finance and public-resource transactions; and open data (数据开放).
//! Owns the tables of migrations 0027, 0028 and 0029.

pub mod data;
mod documents;
mod ledgers;
mod repo;
mod report;
mod requests;
mod search;

use std::sync::{Arc, RwLock};

use sqlx::pool::PoolConnection;

pub use documents::{
    Document, DocumentDraft, DocumentFilter, DocumentLink, DocumentSummary, DocumentText, Documents, Guide, Publishing,
    Revision, SearchResult,
};
pub use ledgers::{
    Direction, FinanceLine, LedgerKind, MonthlyStatement, Party, PublicLedgers, PublicRecord, RecordBody, Stage,
    Subject, TransactionRecord, fen_of_yuan, yuan,
};
pub use report::{AnnualReport, Outcomes, PublicationRow, ReportInputs, ReportRow, Reports};
pub use requests::{
    Answer, CLARIFY_WITHIN_WORKING_DAYS, Deadline, HandlingAction, InformationRequest, NewInformationRequest,
    RequestHandling, Requests, Supervision,
};

use identity::{Denial, Identity};
use kernel::db::Db;
use kernel::error::ErrorCode;
use services::calendar::WorkingCalendar;

/// The working days a department has to answer a request (条例 第三十三条), and the most an
/// extension adds.
pub const ANSWER_WORKING_DAYS: u32 = 20;
pub const MAX_EXTENSION_WORKING_DAYS: u32 = 20;
/// A deadline this many working days away or fewer is near: the department's list raises it.
pub const NEAR_WORKING_DAYS: u32 = 3;

kernel::vocabulary! {
    /// What a published document is (the columns of a 政府信息公开目录).
    #[schema(as = DisclosureDocumentKind)]
    pub enum DocumentKind {
        /// 政策文件
        Policy,
        /// 规章及规范性文件
        Regulation,
        /// 通知公告
        Notice,
        /// 规划计划
        Plan,
        /// 财政预算
        Budget,
        /// 财政决算
        FinalAccount,
        /// 人事信息
        Personnel,
        /// 政策解读: explains a policy it names.
        Interpretation,
    }
}

kernel::vocabulary! {
    /// 主题分类: the subject classification of the State Council's portal (gov.cn 主题分类).
    #[schema(as = DisclosureTheme)]
    pub enum Theme {
        /// 综合政务
        General,
        /// 国民经济管理、国有资产监管
        Economy,
        /// 财政、金融、审计
        Finance,
        /// 国土资源、能源
        Land,
        /// 农业、林业、水利
        Agriculture,
        /// 工业、交通
        Industry,
        /// 商贸、海关、旅游
        Commerce,
        /// 市场监管、安全生产监管
        Market,
        /// 城乡建设、环境保护
        Urban,
        /// 科技、教育
        Education,
        /// 文化、广电、新闻出版
        Culture,
        /// 卫生、体育
        Health,
        /// 人口与计划生育、妇女儿童工作
        Population,
        /// 劳动、人事、监察
        Labour,
        /// 公安、安全、司法
        Justice,
        /// 民政、扶贫、救灾
        CivilAffairs,
    }
}

kernel::vocabulary! {
    /// 有效性
    #[schema(as = DisclosureValidity)]
    pub enum Validity {
        /// 有效
        InForce,
        /// 已废止
        Repealed,
    }
}

kernel::vocabulary! {
    /// What a revision of a document did.
    #[schema(as = DisclosureChange)]
    pub enum Change {
        Published,
        Revised,
        Repealed,
    }
}

kernel::vocabulary! {
    /// How the person wants the information (获取信息的方式).
    #[schema(as = DisclosureDelivery)]
    pub enum Delivery {
        /// 在线查看
        Online,
        /// 电子邮件
        Email,
        /// 邮寄
        Post,
        /// 当面领取
        Pickup,
    }
}

kernel::vocabulary! {
    /// Who asked: the annual report counts natural persons and organisations apart.
    #[schema(as = DisclosureApplicantKind)]
    pub enum ApplicantKind {
        /// 自然人
        Person,
        /// 法人或其他组织
        Enterprise,
    }
}

kernel::vocabulary! {
    /// Where a request for information stands.
    #[schema(as = DisclosureRequestState)]
    pub enum RequestState {
        /// 办理中
        Handling,
        /// 待补正: the department asked the person to make the request clear; the clock stops.
        AwaitingClarification,
        /// 已答复
        Answered,
    }
}

kernel::vocabulary! {
    /// The answers the regulation allows (条例 第三十六条).
    #[schema(as = DisclosureAnswerType)]
    pub enum AnswerType {
        /// 予以公开
        Disclosed,
        /// 部分公开: the part withheld rests on a legal ground.
        PartlyDisclosed,
        /// 不予公开, on a legal ground.
        Withheld,
        /// 信息不存在 (经检索没有所申请公开信息)
        NotExist,
        /// 非本机关负责公开: names who holds it.
        NotHeld,
    }
}

impl AnswerType {
    pub fn needs_ground(self) -> bool {
        matches!(self, AnswerType::PartlyDisclosed | AnswerType::Withheld)
    }
}

kernel::vocabulary! {
    /// Why information is withheld: the regulation's articles 14 to 16.
    #[schema(as = DisclosureLegalGround)]
    pub enum LegalGround {
        /// 第十四条: 依法确定为国家秘密
        StateSecret,
        /// 第十四条: 法律、行政法规禁止公开
        ProhibitedByLaw,
        /// 第十四条: 公开后可能危及国家安全、公共安全、经济安全、社会稳定
        EndangersSecurity,
        /// 第十五条: 涉及商业秘密、个人隐私等，公开会对第三方合法权益造成损害
        ThirdPartyRights,
        /// 第十六条第一款: 内部事务信息
        InternalAffairs,
        /// 第十六条第二款: 过程性信息
        ProcessInformation,
        /// 第十六条第二款: 行政执法案卷信息
        EnforcementFiles,
    }
}

kernel::vocabulary! {
    /// How close a request's deadline is.
    #[schema(as = DisclosureDeadlineStatus)]
    pub enum DeadlineStatus {
        OnTrack,
        /// Within [`NEAR_WORKING_DAYS`] working days.
        Near,
        /// Past the last day and not answered.
        Overdue,
        /// Waiting for the person's clarification.
        Paused,
        /// Answered by the last day.
        AnsweredOnTime,
        AnsweredLate,
    }
}

/// Errors of the openness module; each maps to one stable client code in the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The document or request is not in a state for this (another officer moved it, a
    /// second click, a deadline passed).
    #[error("{reason}")]
    Conflict { code: ErrorCode, reason: &'static str },
    /// What was submitted is well-formed but cannot be published as it is (rows that do
    /// not fit their columns, a dataset that is not k-anonymous).
    #[error("{reason}")]
    Rejected { code: ErrorCode, reason: String },
    #[error(transparent)]
    Denied(#[from] Denial),
    /// A conditional dataset read without a key.
    #[error("this dataset is open on conditions: apply for it and read it with the API key you receive")]
    AccessRequired,
    #[error("the API key is unknown, refused, revoked or for another dataset")]
    InvalidApiKey,
    #[error("the key's calls per minute are used up: try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
        Error::Invalid { field, reason: reason.into() }
    }
}

fn conflict(code: ErrorCode, reason: &'static str) -> Error {
    Error::Conflict { code, reason }
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

identity::from_identity_error!(Error);

/// The openness module's handle: what its areas share.
#[derive(Clone)]
pub struct Openness {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    identity: Identity,
    /// Open data reads registries through the exchange, which owns them.
    exchange: exchange::Exchange,
    calendar: WorkingCalendar,
    /// The search index over published documents and the state of the table it was built
    /// from; rebuilt when that state changes, so every node answers what is stored.
    index: RwLock<Option<(search::Generation, Arc<search::DocumentIndex>)>>,
    /// The open-data catalogue as searched, and the state of the table it was read from.
    datasets: RwLock<Option<(data::catalogue::Generation, Arc<data::catalogue::Shelf>)>>,
}

impl Openness {
    /// The module; deadlines count on `calendar`, the platform's working days.
    pub fn new(db: Db, identity: Identity, exchange: exchange::Exchange, calendar: WorkingCalendar) -> Openness {
        let inner = Inner { db, identity, exchange, calendar, index: RwLock::new(None), datasets: RwLock::new(None) };
        Openness { inner: Arc::new(inner) }
    }

    async fn conn(&self) -> Result<PoolConnection<sqlx::Any>, Error> {
        Ok(self.inner.db.pool.acquire().await?)
    }

    /// The department with this code, where the capability acts for it: its own department,
    /// within its jurisdiction.
    async fn department_for<P: identity::Permission>(
        &self,
        cap: &identity::Capability<P>,
        code: &str,
    ) -> Result<identity::PlacedDepartment, Error> {
        let department = self
            .inner
            .identity
            .organisation()
            .placed_department(code.trim())
            .await?
            .ok_or_else(|| Error::invalid("department", "no department has this code"))?;
        cap.check_department(&department.department.id)?;
        cap.check_record(&department.region_path, 1)?;
        Ok(department)
    }

    /// A department's officers publish, revise and repeal documents and set its guide.
    pub fn publishing(&self) -> Publishing<'_> {
        Publishing(self)
    }

    /// What anyone may read: documents, their history, search, catalogues and guides.
    pub fn documents(&self) -> Documents<'_> {
        Documents(self)
    }

    /// A person's requests for information.
    pub fn requests(&self) -> Requests<'_> {
        Requests(self)
    }

    /// A department's handling of the requests addressed to it.
    pub fn handling(&self) -> RequestHandling<'_> {
        RequestHandling(self)
    }

    /// The annual report (年度报告).
    pub fn reports(&self) -> Reports<'_> {
        Reports(self)
    }

    /// The public ledgers of community finance and public-resource transactions.
    pub fn ledgers(&self) -> PublicLedgers<'_> {
        PublicLedgers(self)
    }

    /// Data officers open datasets (数据开放).
    pub fn data_publishing(&self) -> data::DataPublishing<'_> {
        data::DataPublishing(self)
    }

    /// The open-data catalogue anyone reads.
    pub fn catalogue(&self) -> data::DataCatalogue<'_> {
        data::DataCatalogue(self)
    }

    /// Applications for conditional datasets, and their keys.
    pub fn access(&self) -> data::DataAccess<'_> {
        data::DataAccess(self)
    }

    /// 数据需求: datasets people ask for.
    pub fn data_demands(&self) -> data::DataDemands<'_> {
        data::DataDemands(self)
    }
}

/// Trims a text and checks its length in characters.
fn text_between(field: &'static str, text: &str, min: usize, max: usize) -> Result<String, Error> {
    kernel::wire::text_within(text, min, max).map_err(|reason| Error::invalid(field, reason))
}

/// An optional text: blank is none.
fn optional_text(field: &'static str, text: Option<&str>, max: usize) -> Result<Option<String>, Error> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => text_between(field, t, 1, max).map(Some),
    }
}

/// The China day of an instant.
fn china_day(now: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
    now.with_timezone(&services::calendar::cst()).date_naive()
}
