//! Service tests of 政府信息公开, each run on SQLite and on PostgreSQL: publishing with its
//! history on the public ledger, interpretations, search, requests for information with
//! their deadlines (holidays, extension, the clarification's pause), every answer type, and
//! the annual report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

extern crate tongban_openness as openness;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use identity::Principal;
use kernel::authz::{DisclosureAnswer, DisclosurePublish};
use kernel::error::ErrorCode;
use openness::{
    Answer, AnswerType, DeadlineStatus, Delivery, DocumentDraft, DocumentFilter, DocumentKind, DocumentText, Error,
    HandlingAction, LegalGround, NewInformationRequest, Openness, RequestState, Theme, Validity,
};
use services::calendar::WorkingCalendar;
use sha2::Digest;
use testkit::{PASSWORD, TOTP, TestDb, on_both_databases};

/// Monday 23 November 2026, 09:00 China time.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 1, 0, 0).unwrap()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

struct World {
    openness: Openness,
    signed_in: testkit::SignedIn,
    t: TestDb,
}

impl World {
    async fn principal(&self, username: &str) -> Principal {
        let staff = username.starts_with("officer");
        self.signed_in.principal(&self.t.identity, username, PASSWORD, staff.then_some(TOTP), t0()).await
    }

    async fn publisher(&self, username: &str) -> identity::Capability<DisclosurePublish> {
        self.principal(username).await.authorize().unwrap()
    }

    async fn answerer(&self, username: &str) -> identity::Capability<DisclosureAnswer> {
        self.principal(username).await.authorize().unwrap()
    }
}

/// Two departments of 明月区 (civil affairs MZ, human resources RS), an officer of each, a
/// resident and an enterprise; 1 December 2026 is a holiday.
async fn world(t: TestDb) -> World {
    let mut f = testkit::Founding::begin(&t, t0()).await;
    f.region("990102", "明月区", Some("990100")).await;
    f.department("990102-MZ", "明月区民政局", "990102", "MZ").await;
    f.department("990102-RS", "明月区人力资源和社会保障局", "990102", "RS").await;
    f.staff("officer.mz", "民政公开专员", "990102-MZ", "disclosure_officer").await;
    f.staff("officer.rs", "人社公开专员", "990102-RS", "disclosure_officer").await;
    f.account(testkit::resident_account("citizen.a", "王芳", "990102", "11010519491231002X", None)).await;
    let org8 = "12345678";
    let org_check = identity::ids::organisation_code_check(org8).unwrap();
    let body = format!("91990102{org8}{org_check}");
    let credit_code = format!("{body}{}", identity::ids::credit_code_check(&body).unwrap());
    f.account(identity::NewAccount {
        kind: Some(identity::AccountKind::Enterprise),
        username: "firm.a".into(),
        display_name: "明月科技有限公司".into(),
        password: Some(kernel::secrets::SecretString::new(PASSWORD.into())),
        region_code: Some("990102".into()),
        profile: identity::Profile::Enterprise {
            name: "明月科技有限公司".into(),
            credit_code,
            legal_representative: "李明".into(),
        },
        ..identity::NewAccount::default()
    })
    .await;
    f.commit().await;
    let calendar = WorkingCalendar::from_toml(r#"holidays = ["2026-12-01"]"#).unwrap();
    let openness = Openness::new(
        t.db.clone(),
        t.identity.clone(),
        exchange::Exchange::new(t.db.clone(), t.identity.clone(), &kernel::secrets::MasterKey::from_bytes(t.key)),
        calendar,
    );
    World { openness, signed_in: Default::default(), t }
}

fn text(title: &str, body: &str) -> DocumentText {
    DocumentText {
        theme: Theme::CivilAffairs,
        title: title.into(),
        document_number: Some("明民发〔2026〕7号".into()),
        written_on: day("2026-11-20"),
        body: body.into(),
    }
}

fn draft(department: &str, kind: DocumentKind, title: &str, body: &str) -> DocumentDraft {
    DocumentDraft { department: department.into(), kind, interprets: None, text: text(title, body) }
}

const PENSION: &str =
    "为做好城乡居民基本养老保险待遇资格认证工作，现将有关事项通知如下：一、认证对象为本区领取待遇人员。";

on_both_databases!(
    publishing_revising_and_repealing_keep_the_history_on_the_public_ledger,
    officers_publish_only_for_their_own_department,
    an_interpretation_names_the_policy_it_explains,
    search_finds_chinese_words_and_filters_what_it_finds,
    bad_documents_are_refused_and_nothing_is_written,
    a_request_is_due_in_twenty_working_days_and_answered_once,
    a_clarification_stops_the_clock_and_it_counts_again_from_the_reply,
    an_extension_is_granted_once_and_before_the_deadline,
    requests_stay_with_their_people_and_departments,
    the_annual_report_counts_from_the_records,
    deadlines_near_and_past_are_escalated_once_each,
);

async fn publishing_revising_and_repealing_keep_the_history_on_the_public_ledger(t: TestDb) {
    let w = world(t).await;
    let officer = w.publisher("officer.mz").await;
    let published = w
        .openness
        .publishing()
        .publish(&officer, draft("990102-MZ", DocumentKind::Notice, "关于开展养老待遇资格认证的通知", PENSION), t0())
        .await
        .unwrap();
    let s = &published.summary;
    assert_eq!(s.index_number, "990102-MZ/2026-00001");
    assert_eq!((s.version, s.validity, s.department_name.as_str()), (1, Validity::InForce, "明月区民政局"));
    assert_eq!(published.history.len(), 1);

    // The ledger entry carries the SHA-256 of the revision's canonical JSON.
    let entries = ledger::recent(&w.t.db, ledger::Log::Public, None, None, 10).await.unwrap();
    let (index, entry) = entries.iter().find(|(_, e)| e.object.as_deref() == Some(s.id.as_str())).unwrap();
    let first = &published.history[0];
    assert_eq!((*index as i64, entry.action.as_str()), (first.ledger_index, "disclosure_published"));
    let canonical = serde_json::json!({
        "body": PENSION, "change": "published", "document_id": s.id, "document_number": "明民发〔2026〕7号",
        "index_number": s.index_number, "kind": "notice", "theme": "civil_affairs",
        "title": "关于开展养老待遇资格认证的通知", "version": 1, "written_on": "2026-11-20",
    });
    let digest = hex::encode(sha2::Sha256::digest(serde_json::to_vec(&canonical).unwrap()));
    assert_eq!(first.sha256, digest);
    assert!(entry.detail.as_deref().unwrap().contains(&digest));

    // A revision keeps the earlier text; a stale one writes nothing.
    let later = t0() + Duration::days(2);
    let revised = w
        .openness
        .publishing()
        .revise(&officer, &s.id, 1, text("关于开展养老待遇资格认证的通知（修订）", PENSION), "更正认证时间", later)
        .await
        .unwrap();
    assert_eq!((revised.summary.version, revised.history.len()), (2, 2));
    assert_eq!(revised.history[0].title, "关于开展养老待遇资格认证的通知");
    assert_eq!(revised.summary.title, "关于开展养老待遇资格认证的通知（修订）");
    let stale = w.openness.publishing().revise(&officer, &s.id, 1, text("再改一次标题", PENSION), "再改", later).await;
    assert!(matches!(stale, Err(Error::Conflict { code: ErrorCode::RecordChanged, .. })), "{stale:?}");

    let repealed = w.openness.publishing().repeal(&officer, &s.id, 2, "认证工作已结束", later).await.unwrap();
    assert_eq!((repealed.summary.validity, repealed.history.len()), (Validity::Repealed, 3));
    assert_eq!(repealed.current().unwrap().note.as_deref(), Some("认证工作已结束"));
    let again =
        w.openness.publishing().revise(&officer, &s.id, 3, text("废止后再改", PENSION), "不应成功", later).await;
    assert!(matches!(again, Err(Error::Conflict { code: ErrorCode::DocumentRepealed, .. })));
    let entries = ledger::recent(&w.t.db, ledger::Log::Public, None, None, 10).await.unwrap();
    let actions: Vec<&str> = entries.iter().map(|(_, e)| e.action.as_str()).collect();
    assert_eq!(actions, ["disclosure_repealed", "disclosure_revised", "disclosure_published"]);
}

async fn officers_publish_only_for_their_own_department(t: TestDb) {
    let w = world(t).await;
    let mz = w.publisher("officer.mz").await;
    let rs = w.publisher("officer.rs").await;
    let theirs = w
        .openness
        .publishing()
        .publish(&mz, draft("990102-RS", DocumentKind::Notice, "冒名发布的通知", PENSION), t0())
        .await;
    assert!(matches!(theirs, Err(Error::Denied(_))), "{theirs:?}");
    let doc = w
        .openness
        .publishing()
        .publish(&rs, draft("990102-RS", DocumentKind::Notice, "人社局的通知", PENSION), t0())
        .await
        .unwrap();
    let revise = w.openness.publishing().revise(&mz, &doc.summary.id, 1, text("改别人的", PENSION), "越权", t0()).await;
    assert!(matches!(revise, Err(Error::Denied(_))));
    let repeal = w.openness.publishing().repeal(&mz, &doc.summary.id, 1, "越权废止", t0()).await;
    assert!(matches!(repeal, Err(Error::Denied(_))));
    let guide = w.openness.publishing().set_guide(&mz, "990102-RS", "别人的指南内容不由我写", t0()).await;
    assert!(matches!(guide, Err(Error::Denied(_))));
    assert_eq!(w.openness.documents().document(&doc.summary.id).await.unwrap().summary.version, 1);
    // A resident holds no publishing permission at all.
    assert!(w.principal("citizen.a").await.authorize::<DisclosurePublish>().is_err());

    w.openness
        .publishing()
        .set_guide(&rs, "990102-RS", "申请人可通过网上平台提交政府信息公开申请。", t0())
        .await
        .unwrap();
    let guide = w.openness.documents().guide("990102-RS").await.unwrap();
    assert_eq!(guide.guide.as_deref(), Some("申请人可通过网上平台提交政府信息公开申请。"));
    assert_eq!(guide.documents.iter().map(|d| d.title.as_str()).collect::<Vec<_>>(), ["人社局的通知"]);
    assert!(w.openness.documents().guide("990102-MZ").await.unwrap().guide.is_none());
    assert_eq!(w.openness.publishing().mine(&mz).await.unwrap().len(), 0);
}

async fn an_interpretation_names_the_policy_it_explains(t: TestDb) {
    let w = world(t).await;
    let officer = w.publisher("officer.mz").await;
    let p = w.openness.publishing();
    let policy = p
        .publish(&officer, draft("990102-MZ", DocumentKind::Policy, "明月区最低生活保障办法", PENSION), t0())
        .await
        .unwrap();
    let orphan = p.publish(&officer, draft("990102-MZ", DocumentKind::Interpretation, "一图读懂", PENSION), t0()).await;
    assert!(matches!(orphan, Err(Error::Invalid { field: "interprets", .. })), "{orphan:?}");
    let mut misplaced = draft("990102-MZ", DocumentKind::Notice, "通知不解读政策", PENSION);
    misplaced.interprets = Some(policy.summary.id.clone());
    assert!(matches!(p.publish(&officer, misplaced, t0()).await, Err(Error::Invalid { field: "interprets", .. })));
    let mut explained = draft("990102-MZ", DocumentKind::Interpretation, "《明月区最低生活保障办法》政策解读", PENSION);
    explained.interprets = Some(policy.summary.id.clone());
    let interpretation = p.publish(&officer, explained, t0()).await.unwrap();
    assert_eq!(interpretation.interprets_document.as_ref().unwrap().id, policy.summary.id);
    let policy = w.openness.documents().document(&policy.summary.id).await.unwrap();
    assert_eq!(
        policy.interpretations.iter().map(|l| l.title.as_str()).collect::<Vec<_>>(),
        ["《明月区最低生活保障办法》政策解读"]
    );
}

async fn search_finds_chinese_words_and_filters_what_it_finds(t: TestDb) {
    let w = world(t).await;
    let mz = w.publisher("officer.mz").await;
    let rs = w.publisher("officer.rs").await;
    let p = w.openness.publishing();
    p.publish(&mz, draft("990102-MZ", DocumentKind::Notice, "关于养老待遇资格认证的通知", PENSION), t0())
        .await
        .unwrap();
    let budget = "本部门二〇二六年收入预算一千二百万元，支出预算一千二百万元，其中基本支出八百万元。";
    let mut b = draft("990102-MZ", DocumentKind::Budget, "明月区民政局2026年部门预算", budget);
    b.text.theme = Theme::Finance;
    p.publish(&mz, b, t0()).await.unwrap();
    let jobs = "为促进高校毕业生就业创业，对吸纳就业的小微企业给予一次性就业补贴。";
    let mut j = draft("990102-RS", DocumentKind::Policy, "明月区促进高校毕业生就业若干措施", jobs);
    j.text.theme = Theme::Labour;
    p.publish(&rs, j, t0()).await.unwrap();

    let search = |q: &str| DocumentFilter { q: q.into(), ..DocumentFilter::default() };
    let found = w.openness.documents().search(&search("养老认证"), 1, 10).await.unwrap();
    assert_eq!(found.documents.first().unwrap().title, "关于养老待遇资格认证的通知");
    let found = w.openness.documents().search(&search("就业补贴"), 1, 10).await.unwrap();
    assert_eq!(found.total, 1);
    assert_eq!(found.documents[0].department_code, "990102-RS");
    // Everything, newest first, with facets over every match.
    let all = w.openness.documents().search(&search(""), 1, 2).await.unwrap();
    assert_eq!((all.total, all.documents.len()), (3, 2));
    assert_eq!(all.by_department.get("990102-MZ").map(|(_, n)| *n), Some(2));
    assert_eq!(all.by_kind.get("budget"), Some(&1));
    let budgets = DocumentFilter { kind: Some(DocumentKind::Budget), ..DocumentFilter::default() };
    assert_eq!(w.openness.documents().search(&budgets, 1, 10).await.unwrap().documents[0].theme, Theme::Finance);
    let of_rs = DocumentFilter { department: Some("990102-RS".into()), ..DocumentFilter::default() };
    assert_eq!(w.openness.documents().search(&of_rs, 1, 10).await.unwrap().total, 1);
    let last_year = DocumentFilter { year: Some(2025), ..DocumentFilter::default() };
    assert_eq!(w.openness.documents().search(&last_year, 1, 10).await.unwrap().total, 0);

    // A change shows at once: repealed documents are found as repealed.
    let id = w.openness.documents().search(&search("预算"), 1, 1).await.unwrap().documents[0].id.clone();
    p.repeal(&mz, &id, 1, "预算已调整", t0()).await.unwrap();
    let repealed = DocumentFilter { validity: Some(Validity::Repealed), ..DocumentFilter::default() };
    let found = w.openness.documents().search(&repealed, 1, 10).await.unwrap();
    assert_eq!(found.documents.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), [id.as_str()]);
    // Query syntax typed by a person is words, not an error.
    assert_eq!(w.openness.documents().search(&search("就业\"(补贴"), 1, 10).await.unwrap().total, 1);
}

async fn bad_documents_are_refused_and_nothing_is_written(t: TestDb) {
    let w = world(t).await;
    let officer = w.publisher("officer.mz").await;
    let p = w.openness.publishing();
    let short = draft("990102-MZ", DocumentKind::Notice, "通", PENSION);
    assert!(matches!(p.publish(&officer, short, t0()).await, Err(Error::Invalid { field: "title", .. })));
    let mut future = draft("990102-MZ", DocumentKind::Notice, "明天才写的通知", PENSION);
    future.text.written_on = day("2026-11-30");
    assert!(matches!(p.publish(&officer, future, t0()).await, Err(Error::Invalid { field: "written_on", .. })));
    let empty = draft("990102-MZ", DocumentKind::Notice, "没有正文的通知", "   ");
    assert!(matches!(p.publish(&officer, empty, t0()).await, Err(Error::Invalid { field: "body", .. })));
    let nowhere = draft("990199-XX", DocumentKind::Notice, "不存在的部门", PENSION);
    assert!(matches!(p.publish(&officer, nowhere, t0()).await, Err(Error::Invalid { field: "department", .. })));
    assert!(matches!(w.openness.documents().document("no-such-id").await, Err(Error::NotFound("document"))));
    assert_eq!(w.openness.documents().search(&DocumentFilter::default(), 1, 10).await.unwrap().total, 0);
    assert!(ledger::recent(&w.t.db, ledger::Log::Public, None, None, 10).await.unwrap().is_empty());
    // The next good one is still number 1.
    let ok = p.publish(&officer, draft("990102-MZ", DocumentKind::Notice, "好的通知", PENSION), t0()).await.unwrap();
    assert_eq!(ok.summary.index_number, "990102-MZ/2026-00001");
}

fn ask(department: &str, key: Option<&str>) -> NewInformationRequest {
    NewInformationRequest {
        department: department.into(),
        description: "请公开明月区2025年城乡低保资金的发放总额及户数".into(),
        purpose: Some("了解低保政策落实情况".into()),
        delivery: Delivery::Online,
        idempotency_key: key.map(str::to_string),
    }
}

fn answer(answer_type: AnswerType, legal_ground: Option<LegalGround>, referral: Option<&str>) -> HandlingAction {
    HandlingAction::Answer(Answer {
        answer_type,
        text: "经查，2025年共发放低保资金3280万元，惠及6120户。".into(),
        legal_ground,
        referral: referral.map(str::to_string),
    })
}

async fn a_request_is_due_in_twenty_working_days_and_answered_once(t: TestDb) {
    let w = world(t).await;
    let person = w.principal("citizen.a").await;
    let officer = w.answerer("officer.mz").await;
    let r = w.openness.requests().submit(&person, ask("990102-MZ", None), t0()).await.unwrap();
    assert!(r.number.starts_with("GK-20261123-"), "{}", r.number);
    // 20 working days from Monday 23 November, with 1 December a holiday: 22 December.
    assert_eq!(r.deadline.due_on, Some(day("2026-12-22")));
    assert_eq!((r.deadline.status, r.deadline.working_days_left), (DeadlineStatus::OnTrack, Some(20)));
    let h = w.openness.handling();
    let near = h.get(&officer, &r.id, Utc.with_ymd_and_hms(2026, 12, 17, 2, 0, 0).unwrap()).await.unwrap();
    assert_eq!((near.deadline.status, near.deadline.working_days_left), (DeadlineStatus::Near, Some(3)));
    let late = h.get(&officer, &r.id, Utc.with_ymd_and_hms(2026, 12, 24, 2, 0, 0).unwrap()).await.unwrap();
    assert_eq!((late.deadline.status, late.deadline.working_days_left), (DeadlineStatus::Overdue, Some(-2)));
    let inbox = h.inbox(&officer, t0()).await.unwrap();
    assert_eq!(inbox.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [r.id.as_str()]);

    // Each answer type carries what it needs and nothing it must not.
    let later = t0() + Duration::days(3);
    for (bad, field) in [
        (answer(AnswerType::Withheld, None, None), "legal_ground"),
        (answer(AnswerType::PartlyDisclosed, None, None), "legal_ground"),
        (answer(AnswerType::Disclosed, Some(LegalGround::StateSecret), None), "legal_ground"),
        (answer(AnswerType::NotHeld, None, None), "referral"),
        (answer(AnswerType::NotExist, None, Some("区财政局")), "referral"),
    ] {
        let refused = h.act(&officer, &r.id, bad, later).await;
        assert!(matches!(refused, Err(Error::Invalid { field: f, .. }) if f == field), "{refused:?}");
    }
    let done = h
        .act(&officer, &r.id, answer(AnswerType::PartlyDisclosed, Some(LegalGround::ThirdPartyRights), None), later)
        .await
        .unwrap();
    assert_eq!((done.state, done.deadline.status), (RequestState::Answered, DeadlineStatus::AnsweredOnTime));
    assert_eq!(done.answer.as_ref().unwrap().legal_ground, Some(LegalGround::ThirdPartyRights));
    let twice = h.act(&officer, &r.id, answer(AnswerType::Disclosed, None, None), later).await;
    assert!(matches!(twice, Err(Error::Conflict { code: ErrorCode::RequestAnswered, .. })));
    // The person reads the answer; the audit trail has every step with them as subject.
    let mine = w.openness.requests().get(&person, &r.id, later).await.unwrap();
    assert_eq!(mine.answer.unwrap().answer_type, AnswerType::PartlyDisclosed);
    let trail = ledger::recent(&w.t.db, ledger::Log::Audit, None, Some(&person.account_id), 10).await.unwrap();
    let actions: Vec<&str> =
        trail.iter().map(|(_, e)| e.action.as_str()).filter(|a| a.starts_with("disclosure_")).collect();
    assert_eq!(actions, ["disclosure_answered", "disclosure_requested"]);

    // Every other answer type lands too, a referral with its holder.
    for (kind, ground, referral) in [
        (AnswerType::Disclosed, None, None),
        (AnswerType::Withheld, Some(LegalGround::ProcessInformation), None),
        (AnswerType::NotExist, None, None),
        (AnswerType::NotHeld, None, Some("明月区财政局，电话 0871-1234567")),
    ] {
        let r = w.openness.requests().submit(&person, ask("990102-MZ", None), t0()).await.unwrap();
        let done = h.act(&officer, &r.id, answer(kind, ground, referral), later).await.unwrap();
        assert_eq!(done.answer.unwrap().referral.as_deref(), referral);
    }
    // Answered late is told apart.
    let r = w.openness.requests().submit(&person, ask("990102-MZ", None), t0()).await.unwrap();
    let very_late = Utc.with_ymd_and_hms(2026, 12, 28, 2, 0, 0).unwrap();
    let done = h.act(&officer, &r.id, answer(AnswerType::Disclosed, None, None), very_late).await.unwrap();
    assert_eq!(done.deadline.status, DeadlineStatus::AnsweredLate);
}

async fn a_clarification_stops_the_clock_and_it_counts_again_from_the_reply(t: TestDb) {
    let w = world(t).await;
    let person = w.principal("citizen.a").await;
    let officer = w.answerer("officer.mz").await;
    let h = w.openness.handling();
    let r = w.openness.requests().submit(&person, ask("990102-MZ", None), t0()).await.unwrap();
    let ask_clear =
        || HandlingAction::AskClarification { text: "请说明所需资金数据的统计口径和年度".into() };
    let asked = h.act(&officer, &r.id, ask_clear(), t0() + Duration::days(2)).await.unwrap();
    assert_eq!(
        (asked.state, asked.deadline.status, asked.deadline.due_on),
        (RequestState::AwaitingClarification, DeadlineStatus::Paused, None)
    );
    // Nothing is answered while the department waits; long after the first deadline, still paused.
    let answered = h.act(&officer, &r.id, answer(AnswerType::Disclosed, None, None), t0() + Duration::days(3)).await;
    assert!(matches!(answered, Err(Error::Conflict { code: ErrorCode::AwaitingClarification, .. })));
    let waiting = h.get(&officer, &r.id, t0() + Duration::days(40)).await.unwrap();
    assert_eq!(waiting.deadline.status, DeadlineStatus::Paused);
    // The reply on Monday 4 January 2027: 20 working days from then is 1 February.
    let reply_day = Utc.with_ymd_and_hms(2027, 1, 4, 2, 0, 0).unwrap();
    let other = w.principal("firm.a").await;
    assert!(matches!(
        w.openness.requests().clarify(&other, &r.id, "不是我的申请", reply_day).await,
        Err(Error::NotFound("request"))
    ));
    let clarified =
        w.openness.requests().clarify(&person, &r.id, "统计口径为2025年全年城乡低保", reply_day).await.unwrap();
    assert_eq!((clarified.state, clarified.clock_from), (RequestState::Handling, day("2027-01-04")));
    assert_eq!(clarified.deadline.due_on, Some(day("2027-02-01")));
    let again = h.act(&officer, &r.id, ask_clear(), reply_day).await;
    assert!(matches!(again, Err(Error::Conflict { code: ErrorCode::ClarificationAlreadyAsked, .. })));
    let twice = w.openness.requests().clarify(&person, &r.id, "再补充一次", reply_day).await;
    assert!(matches!(twice, Err(Error::Conflict { code: ErrorCode::NotAwaitingClarification, .. })));

    // Past 7 working days from receipt it is too late to ask.
    let r = w.openness.requests().submit(&person, ask("990102-MZ", None), t0()).await.unwrap();
    let too_late = h.act(&officer, &r.id, ask_clear(), t0() + Duration::days(11)).await;
    assert!(matches!(too_late, Err(Error::Conflict { code: ErrorCode::DeadlinePassed, .. })), "{too_late:?}");
}

async fn an_extension_is_granted_once_and_before_the_deadline(t: TestDb) {
    let w = world(t).await;
    let person = w.principal("citizen.a").await;
    let officer = w.answerer("officer.mz").await;
    let h = w.openness.handling();
    let r = w.openness.requests().submit(&person, ask("990102-MZ", None), t0()).await.unwrap();
    let extend =
        |days: u32| HandlingAction::Extend { working_days: days, reason: "需要向多个街道调取数据".into() };
    let too_long = h.act(&officer, &r.id, extend(21), t0()).await;
    assert!(matches!(too_long, Err(Error::Invalid { field: "working_days", .. })));
    let extended = h.act(&officer, &r.id, extend(20), t0() + Duration::days(10)).await.unwrap();
    // 22 December plus 20 working days: 19 January 2027.
    assert_eq!((extended.deadline.due_on, extended.extension_days), (Some(day("2027-01-19")), 20));
    assert!(matches!(
        h.act(&officer, &r.id, extend(5), t0() + Duration::days(11)).await,
        Err(Error::Conflict { code: ErrorCode::AlreadyExtended, .. })
    ));
    // After the deadline an extension is refused.
    let r = w.openness.requests().submit(&person, ask("990102-MZ", None), t0()).await.unwrap();
    let after = Utc.with_ymd_and_hms(2026, 12, 23, 2, 0, 0).unwrap();
    assert!(matches!(
        h.act(&officer, &r.id, extend(5), after).await,
        Err(Error::Conflict { code: ErrorCode::DeadlinePassed, .. })
    ));
}

async fn requests_stay_with_their_people_and_departments(t: TestDb) {
    let w = world(t).await;
    let person = w.principal("citizen.a").await;
    let firm = w.principal("firm.a").await;
    let rs = w.answerer("officer.rs").await;
    let r = w.openness.requests().submit(&person, ask("990102-MZ", Some("key-1")), t0()).await.unwrap();
    let same = w.openness.requests().submit(&person, ask("990102-MZ", Some("key-1")), t0()).await.unwrap();
    assert_eq!(same.id, r.id);
    assert_eq!(w.openness.requests().mine(&person, t0()).await.unwrap().len(), 1);
    assert!(matches!(w.openness.requests().get(&firm, &r.id, t0()).await, Err(Error::NotFound(_))));
    assert!(matches!(w.openness.handling().get(&rs, &r.id, t0()).await, Err(Error::Denied(_))));
    let answered = w.openness.handling().act(&rs, &r.id, answer(AnswerType::Disclosed, None, None), t0()).await;
    assert!(matches!(answered, Err(Error::Denied(_))));
    assert!(w.openness.handling().inbox(&rs, t0()).await.unwrap().is_empty());
    let from_firm = w.openness.requests().submit(&firm, ask("990102-MZ", Some("key-1")), t0()).await.unwrap();
    assert_ne!(from_firm.id, r.id);
    assert_eq!(from_firm.applicant_kind, openness::ApplicantKind::Enterprise);
    // Staff do not apply from their work account; bad input writes nothing.
    let staff = w.principal("officer.mz").await;
    assert!(matches!(
        w.openness.requests().submit(&staff, ask("990102-MZ", None), t0()).await,
        Err(Error::Invalid { .. })
    ));
    let mut short = ask("990102-MZ", None);
    short.description = "低保".into();
    assert!(matches!(
        w.openness.requests().submit(&person, short, t0()).await,
        Err(Error::Invalid { field: "description", .. })
    ));
    assert!(matches!(
        w.openness.requests().submit(&person, ask("000000-XX", None), t0()).await,
        Err(Error::Invalid { field: "department", .. })
    ));
    assert_eq!(w.openness.requests().mine(&person, t0()).await.unwrap().len(), 1);
}

async fn the_annual_report_counts_from_the_records(t: TestDb) {
    let w = world(t).await;
    let publisher = w.publisher("officer.mz").await;
    let officer = w.answerer("officer.mz").await;
    let person = w.principal("citizen.a").await;
    let firm = w.principal("firm.a").await;
    let p = w.openness.publishing();
    let a = p.publish(&publisher, draft("990102-MZ", DocumentKind::Policy, "低保办法", PENSION), t0()).await.unwrap();
    p.publish(&publisher, draft("990102-MZ", DocumentKind::Policy, "临时救助办法", PENSION), t0()).await.unwrap();
    p.repeal(&publisher, &a.summary.id, 1, "被新办法取代", t0()).await.unwrap();
    let h = w.openness.handling();
    let r1 = w.openness.requests().submit(&person, ask("990102-MZ", None), t0()).await.unwrap();
    h.act(&officer, &r1.id, answer(AnswerType::Disclosed, None, None), t0()).await.unwrap();
    let r2 = w.openness.requests().submit(&firm, ask("990102-MZ", None), t0()).await.unwrap();
    h.act(&officer, &r2.id, answer(AnswerType::Withheld, Some(LegalGround::ThirdPartyRights), None), t0())
        .await
        .unwrap();
    w.openness.requests().submit(&firm, ask("990102-MZ", None), t0()).await.unwrap();

    let reports = w.openness.reports();
    let report = reports.annual("990102-MZ", 2026, t0()).await.unwrap();
    let policy = report.publications.iter().find(|r| r.kind == DocumentKind::Policy).unwrap();
    assert_eq!((policy.published, policy.repealed, policy.in_force), (2, 1, 1));
    let line = |name: &str| {
        let r = report.requests.iter().find(|r| r.line == name).unwrap();
        (r.person, r.enterprise, r.total)
    };
    assert_eq!(line("received"), (1, 2, 3));
    assert_eq!(line("disclosed"), (1, 0, 1));
    assert_eq!(line("withheld"), (0, 1, 1));
    assert_eq!(line("carried_out"), (0, 1, 1));
    assert_eq!(line("carried_in"), (0, 0, 0));
    assert!(!report.inputs_entered);

    // The open request is carried into the next year's report.
    let next_year = Utc.with_ymd_and_hms(2027, 2, 1, 2, 0, 0).unwrap();
    let next = reports.annual("990102-MZ", 2027, next_year).await.unwrap();
    assert_eq!(next.requests.iter().find(|r| r.line == "carried_in").unwrap().enterprise, 1);
    let policy = next.publications.iter().find(|r| r.kind == DocumentKind::Policy).unwrap();
    assert_eq!((policy.published, policy.in_force), (0, 1));

    let mut inputs = openness::ReportInputs::default();
    inputs.reconsideration.upheld = 2;
    inputs.problems = "主动公开的及时性有待提高。".into();
    reports.set_inputs(&publisher, "990102-MZ", 2026, inputs.clone(), t0()).await.unwrap();
    let report = reports.annual("990102-MZ", 2026, t0()).await.unwrap();
    assert!(report.inputs_entered);
    assert_eq!((report.inputs.clone(), report.inputs.reconsideration.total()), (inputs.clone(), 2));
    let rs = w.publisher("officer.rs").await;
    assert!(matches!(reports.set_inputs(&rs, "990102-MZ", 2026, inputs, t0()).await, Err(Error::Denied(_))));
    assert!(matches!(reports.annual("990102-MZ", 2027, t0()).await, Err(Error::NotFound("report"))));
    assert!(matches!(reports.annual("990102-MZ", 2007, t0()).await, Err(Error::Invalid { field: "year", .. })));
    assert!(matches!(reports.annual("990102-XX", 2026, t0()).await, Err(Error::NotFound(_))));
}

async fn deadlines_near_and_past_are_escalated_once_each(t: TestDb) {
    let w = world(t).await;
    let person = w.principal("citizen.a").await;
    let officer = w.answerer("officer.mz").await;
    let r = w.openness.requests().submit(&person, ask("990102-MZ", None), t0()).await.unwrap();
    let answered = w.openness.requests().submit(&person, ask("990102-MZ", None), t0()).await.unwrap();
    w.openness.handling().act(&officer, &answered.id, answer(AnswerType::Disclosed, None, None), t0()).await.unwrap();
    let supervised = |at: DateTime<Utc>| {
        let o = w.openness.clone();
        async move { o.supervise(at).await.unwrap() }
    };
    let count = |s: openness::Supervision| (s.near, s.overdue);
    assert_eq!(count(supervised(t0()).await), (0, 0));
    // Due 22 December: on the 17th it is three working days away, on the 24th past.
    let near = Utc.with_ymd_and_hms(2026, 12, 17, 2, 0, 0).unwrap();
    assert_eq!(count(supervised(near).await), (1, 0));
    assert_eq!(count(supervised(near + Duration::hours(1)).await), (0, 0), "once per level");
    let past = Utc.with_ymd_and_hms(2026, 12, 24, 2, 0, 0).unwrap();
    assert_eq!(count(supervised(past).await), (0, 1));
    assert_eq!(count(supervised(past + Duration::days(1)).await), (0, 0));
    let entries = ledger::recent(&w.t.db, ledger::Log::Audit, Some("disclosure_supervised"), None, 10).await.unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|(_, e)| e.object.as_deref() == Some(r.number.as_str())));
    // The officer was told by mail, through the outbox, each time.
    let told: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE payload LIKE '%政府信息公开督办%'")
        .fetch_one(&w.t.db.pool)
        .await
        .unwrap();
    assert_eq!(told, 2);
    // An extension gives a new deadline, and a new round of 督办.
    let r2 = w.openness.requests().submit(&person, ask("990102-MZ", None), t0()).await.unwrap();
    assert_eq!(count(supervised(near).await), (1, 0));
    let extend = HandlingAction::Extend { working_days: 5, reason: "需要向多个街道调取数据".into() };
    w.openness.handling().act(&officer, &r2.id, extend, near).await.unwrap();
    // 22 December + 5 working days: 29 December; near again from the 24th.
    assert_eq!(count(supervised(past).await), (1, 0));
}
