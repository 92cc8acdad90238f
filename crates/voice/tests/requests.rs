//! Service tests of 12345 requests, each run on SQLite and on PostgreSQL: intake with its
//! proposal, the dispatchers' queue, a department's handling, the person's rating with one
//! reopening, duplicates, deadlines, routing tables and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

extern crate tongban_voice as voice;

use chrono::Duration;
use testkit::{TestDb, on_both_databases};
use voice::{
    Breakdown, Caller, Channel, Contact, Error, ExtensionDecision, HandlerAction, NewRequest, Rating, RequestKind,
    RouteBasis, Stage, Urgency,
};

mod common;
use common::*;

/// Water off for days: the training set's plainest kind of complaint.
const WATER: &str = "我家小区停水三天了，自来水一直没来，打物业电话也没人管，老人做饭洗澡都成问题";
/// Not a word the classifier has seen: it has nothing to be sure of.
const MIXED: &str = "Xyzzy qwvfk plugh";
/// An enquiry for the government-service centre, which the test districts do not have.
const ENQUIRY: &str = "你好，我想反映一个情况，希望你们能重视一下";

fn new(text: &str, region: &str) -> NewRequest {
    NewRequest {
        kind: RequestKind::Complaint,
        text: text.into(),
        region_code: region.into(),
        address: Some("东风街道翠湖小区3栋".into()),
        urgency: Urgency::Normal,
        publishable: true,
        idempotency_key: None,
        photos: Vec::new(),
    }
}

fn steps(v: &voice::RequestView) -> Vec<&str> {
    v.steps.iter().map(|s| s.action.as_str()).collect()
}

on_both_databases!(
    a_clear_request_goes_to_its_department_and_is_answered_and_rated,
    an_unclear_request_waits_for_a_dispatcher_who_decides,
    the_same_key_makes_one_request,
    bad_input_is_refused_and_nothing_is_written,
    a_routing_table_overrides_the_usual_department,
    figures_count_what_departments_did,
    the_department_sees_the_person_masked_and_never_a_reporter,
    an_operator_records_a_call_and_the_callers_rating,
    limits_follow_urgency_and_kind_and_lapses_are_supervised,
    a_repeat_nearby_is_merged_and_receives_the_answer,
    an_extension_is_asked_once_and_a_dispatcher_decides,
    only_agreed_answers_are_published_and_without_numbers,
    photos_come_from_the_persons_own_uploads_and_only_those_of_the_request_see_them,
);

async fn a_clear_request_goes_to_its_department_and_is_answered_and_rated(t: TestDb) {
    let h = hotline(t).await;
    let a = h.principal("citizen.a").await;
    let now = t0();
    let v = h.voice.intake().submit(&a, new(WATER, "990102001"), Channel::Portal, now).await.unwrap();
    assert!(v.number.starts_with("12345-20261123-"), "{}", v.number);
    assert_eq!(v.category.department_kind, "SW", "{:?}", v.category);
    assert!(v.confidence >= voice::CONFIDENT, "{}", v.confidence);
    assert!(!v.reasons.is_empty());
    assert_eq!(v.stage, Stage::Assigned);
    assert_eq!(v.department_name.as_deref(), Some("明月区水务局"));
    assert_eq!(steps(&v), ["route"]);
    assert_eq!(v.region_name, "东风街道");
    assert!(v.due.is_some() && !v.overdue);

    // The submission is on the audit trail as the person's own.
    let entries = ledger::recent(&h.t.db, ledger::Log::Audit, Some("voice_request_submitted"), None, 10).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].1.subject.as_deref(), Some(a.account_id.as_str()));
    assert_eq!(entries[0].1.object.as_deref(), Some(v.number.as_str()));

    // Only the department it went to sees it.
    let water = h.water_clerk("mingyue").await;
    let inbox = h.voice.handling().inbox(&water, now).await.unwrap();
    assert_eq!(inbox.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [v.id.as_str()]);
    let other = h.water_clerk("qinghu").await;
    assert!(h.voice.handling().inbox(&other, now).await.unwrap().is_empty());
    assert!(matches!(
        h.voice.handling().request(&other, None, &v.id, None, now).await,
        Err(Error::NotFound("request"))
    ));
    assert!(matches!(
        h.voice.handling().act(&other, &v.id, HandlerAction::Sign, now).await,
        Err(Error::NotFound("request"))
    ));
    // Nor another resident.
    let b = h.principal("citizen.b").await;
    assert!(matches!(h.voice.my_requests().request(&b, &v.id, now).await, Err(Error::NotFound("request"))));

    // Answering before signing is not a step the workflow has.
    let early = h.voice.handling().act(&water, &v.id, HandlerAction::Answer { text: "已经修好了".into() }, now).await;
    assert!(matches!(early, Err(Error::Workflow(_))), "{early:?}");
    // The person cannot rate before an answer.
    assert!(matches!(
        h.voice.my_requests().rate(&a, &v.id, Rating::Satisfied, None, now).await,
        Err(Error::Workflow(_))
    ));

    let later = now + Duration::hours(2);
    let v = h.voice.handling().act(&water, &v.id, HandlerAction::Sign, later).await.unwrap();
    assert_eq!(v.stage, Stage::Handling);
    let short = h.voice.handling().act(&water, &v.id, HandlerAction::Answer { text: "好".into() }, later).await;
    assert!(matches!(short, Err(Error::Invalid { field: "answer", .. })));
    let answer = "经查，翠湖小区停水系主管爆裂，已于今日抢修完毕并恢复供水。";
    let v = h.voice.handling().act(&water, &v.id, HandlerAction::Answer { text: answer.into() }, later).await.unwrap();
    assert_eq!((v.stage, v.answer.as_deref()), (Stage::Answered, Some(answer)));

    // 不满意 reopens once; the second time it closes with the rating on record.
    let v = h.voice.my_requests().rate(&a, &v.id, Rating::Unsatisfied, Some("还是没水"), later).await.unwrap();
    assert_eq!((v.stage, v.reopened), (Stage::Handling, 1));
    let v = h
        .voice
        .handling()
        .act(&water, &v.id, HandlerAction::Answer { text: "已再次上门检修，水压已恢复正常。".into() }, later)
        .await
        .unwrap();
    let v = h.voice.my_requests().rate(&a, &v.id, Rating::Unsatisfied, None, later).await.unwrap();
    assert_eq!((v.stage, v.rating), (Stage::Closed, Some(Rating::Unsatisfied)));
    assert_eq!(steps(&v), ["route", "sign", "answer", "reopen", "answer", "close_unsatisfied"]);
    assert_tallies_match_recount(&h).await;
    assert_eq!(v.steps[3].comment.as_deref(), Some("还是没水"));
    assert!(h.voice.handling().inbox(&water, later).await.unwrap().is_empty());
    assert_eq!(h.voice.my_requests().list(&a, later).await.unwrap().len(), 1);
}

async fn an_unclear_request_waits_for_a_dispatcher_who_decides(t: TestDb) {
    let h = hotline(t).await;
    let a = h.principal("citizen.a").await;
    let now = t0();
    let v = h.voice.intake().submit(&a, new(MIXED, "990102001"), Channel::Api, now).await.unwrap();
    assert!(v.confidence < voice::CONFIDENT, "{}", v.confidence);
    assert_eq!((v.stage, v.department_id.as_deref()), (Stage::Dispatching, None));
    assert_eq!(steps(&v), ["queue"]);
    // However sure the classifier is, no department of the kind here means a dispatcher.
    let mut enquiry = new(ENQUIRY, "990102001");
    enquiry.kind = RequestKind::Enquiry;
    let e = h.voice.intake().submit(&a, enquiry, Channel::Api, now).await.unwrap();
    assert_eq!((e.category.department_kind.as_str(), e.stage), ("ZW", Stage::Dispatching));

    // Only dispatchers of the district see it.
    let qinghu = h.dispatcher("qinghu").await;
    assert!(h.voice.dispatching().queue(&qinghu, now).await.unwrap().is_empty());
    let city = h.category_of("CG");
    let refused = h.voice.dispatching().dispatch(&qinghu, &v.id, &city.code, "990103-CG", now).await;
    assert!(matches!(refused, Err(Error::Denied(identity::Denial::OutsideJurisdiction))), "{refused:?}");

    let mingyue = h.dispatcher("mingyue").await;
    let queue = h.voice.dispatching().queue(&mingyue, now).await.unwrap();
    assert_eq!(queue.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [v.id.as_str(), e.id.as_str()]);
    let unknown = h.voice.dispatching().dispatch(&mingyue, &v.id, "nonsense", "990102-CG", now).await;
    assert!(matches!(unknown, Err(Error::Invalid { field: "category", .. })));
    let nowhere = h.voice.dispatching().dispatch(&mingyue, &v.id, &city.code, "000000-XX", now).await;
    assert!(matches!(nowhere, Err(Error::Invalid { field: "department", .. })));

    // The dispatcher's category, other than the proposal, is kept as a training example.
    let chosen = if v.proposed.code == city.code { h.water() } else { city.clone() };
    let v = h.voice.dispatching().dispatch(&mingyue, &v.id, &chosen.code, "990102-CG", now).await.unwrap();
    assert_eq!((v.stage, v.category.code.as_str()), (Stage::Assigned, chosen.code.as_str()));
    assert_eq!(v.department_name.as_deref(), Some("明月区城市管理综合执法局"));
    let corrections = h.voice.dispatching().corrections(&mingyue).await.unwrap();
    assert_eq!(corrections, format!("{}\t{MIXED}\n", chosen.code));
    assert_eq!(h.voice.dispatching().queue(&mingyue, now).await.unwrap().len(), 1);

    // 退单: not ours, with the reason; back in the queue.
    let city_clerk = h.principal("city.mingyue").await.authorize().unwrap();
    let no_reason =
        h.voice.handling().act(&city_clerk, &v.id, HandlerAction::SendBack { reason: " ".into() }, now).await;
    assert!(matches!(no_reason, Err(Error::Invalid { field: "reason", .. })));
    let reason = "反映内容不明确，不属于城管职责";
    let v = h
        .voice
        .handling()
        .act(&city_clerk, &v.id, HandlerAction::SendBack { reason: reason.into() }, now)
        .await
        .unwrap();
    assert_eq!((v.stage, v.department_id.as_deref()), (Stage::Dispatching, None));
    assert_eq!(v.steps.last().unwrap().comment.as_deref(), Some(reason));
    assert_eq!(h.voice.dispatching().queue(&mingyue, now).await.unwrap().len(), 2);

    // A day in the queue is overdue.
    let late = now + Duration::days(3);
    assert!(h.voice.dispatching().queue(&mingyue, late).await.unwrap()[0].overdue);
}

async fn the_same_key_makes_one_request(t: TestDb) {
    let h = hotline(t).await;
    let a = h.principal("citizen.a").await;
    let mut request = new(WATER, "990102001");
    request.idempotency_key = Some("form-7f3a".into());
    let first = h.voice.intake().submit(&a, request.clone(), Channel::Portal, t0()).await.unwrap();
    let again = h.voice.intake().submit(&a, request.clone(), Channel::Portal, t0()).await.unwrap();
    assert_eq!(first.number, again.number);
    // The same key of another person is another request.
    let b = h.principal("citizen.b").await;
    request.region_code = "990103001".into();
    let theirs = h.voice.intake().submit(&b, request, Channel::Portal, t0()).await.unwrap();
    assert_ne!(theirs.number, first.number);
    assert_eq!(h.voice.my_requests().list(&a, t0()).await.unwrap().len(), 1);
    let entries = ledger::recent(&h.t.db, ledger::Log::Audit, Some("voice_request_submitted"), None, 10).await.unwrap();
    assert_eq!(entries.len(), 2);
}

async fn bad_input_is_refused_and_nothing_is_written(t: TestDb) {
    let h = hotline(t).await;
    let a = h.principal("citizen.a").await;
    let submit = |r: NewRequest| {
        let (voice, a) = (h.voice.clone(), a.clone());
        async move { voice.intake().submit(&a, r, Channel::Portal, t0()).await }
    };
    assert!(matches!(submit(new("太吵", "990102001")).await, Err(Error::Invalid { field: "text", .. })));
    assert!(matches!(submit(new(&"吵".repeat(2001), "990102001")).await, Err(Error::Invalid { field: "text", .. })));
    assert!(matches!(submit(new("楼下烧烤\u{0}太吵了", "990102001")).await, Err(Error::Invalid { field: "text", .. })));
    assert!(matches!(submit(new(WATER, "123456")).await, Err(Error::Invalid { field: "region", .. })));
    let mut long_address = new(WATER, "990102001");
    long_address.address = Some("号".repeat(201));
    assert!(matches!(submit(long_address).await, Err(Error::Invalid { field: "address", .. })));
    // Staff make requests as residents, not with their work account.
    let clerk = h.principal("water.mingyue").await;
    let staff = h.voice.intake().submit(&clerk, new(WATER, "990102001"), Channel::Portal, t0()).await;
    assert!(matches!(staff, Err(Error::Invalid { field: "account", .. })));
    assert!(h.voice.my_requests().list(&a, t0()).await.unwrap().is_empty());
    let entries = ledger::recent(&h.t.db, ledger::Log::Audit, Some("voice_request_submitted"), None, 10).await.unwrap();
    assert!(entries.is_empty());
    // A dispatcher's classification stores nothing and checks the region.
    let d = h.dispatcher("mingyue").await;
    let p = h.voice.routing().classify(&d, WATER, None).await.unwrap();
    assert_eq!(p.category.department_kind, "SW");
    assert_eq!(p.department.map(|d| d.code).as_deref(), Some("990102-SW"));
    assert!(matches!(
        h.voice.routing().classify(&d, WATER, Some("990103")).await,
        Err(Error::Denied(identity::Denial::OutsideJurisdiction))
    ));
    assert!(h.voice.dispatching().queue(&d, t0()).await.unwrap().is_empty());
}

async fn a_routing_table_overrides_the_usual_department(t: TestDb) {
    let h = hotline(t).await;
    let console = h.t.console();
    let water = h.water();
    let org = console.grant::<kernel::authz::OrganisationManage>();
    let unknown = h.voice.routing().set_route(&org, "990102", &water.code, "000000-XX", t0()).await;
    assert!(matches!(unknown, Err(Error::NotFound("department"))));
    h.voice.routing().set_route(&org, "990102", &water.code, "990102-CG", t0()).await.unwrap();
    let d = h.dispatcher("mingyue").await;
    let p = h.voice.routing().classify(&d, WATER, Some("990102001")).await.unwrap();
    assert_eq!(p.department.map(|d| d.code).as_deref(), Some("990102-CG"));
    assert_eq!(p.route, RouteBasis::RoutingTable { region_code: "990102".into() });
    // The other district keeps the usual department.
    let q = h.dispatcher("qinghu").await;
    let p = h.voice.routing().classify(&q, WATER, None).await.unwrap();
    assert_eq!(p.department.map(|d| d.code).as_deref(), Some("990103-SW"));
    assert_eq!(p.route, RouteBasis::NearestOfKind { kind: "SW".into() });
    // The table reads back within the reader's jurisdiction only.
    let mingyue = h.principal("dispatcher.mingyue").await.authorize().unwrap();
    let routes = h.voice.routing().routes(&mingyue).await.unwrap();
    assert_eq!(
        routes
            .iter()
            .map(|r| (r.region_name.as_str(), r.category.code.as_str(), r.department_name.as_str()))
            .collect::<Vec<_>>(),
        [("明月区", water.code.as_str(), "明月区城市管理综合执法局")]
    );
    let qinghu = h.principal("dispatcher.qinghu").await.authorize().unwrap();
    assert!(h.voice.routing().routes(&qinghu).await.unwrap().is_empty());
}

async fn figures_count_what_departments_did(t: TestDb) {
    let h = hotline(t).await;
    let a = h.principal("citizen.a").await;
    let water = h.water_clerk("mingyue").await;
    let t0 = t0();
    let mut ids = Vec::new();
    for street in ["990102001", "990102002", "990102003"] {
        ids.push(h.voice.intake().submit(&a, new(WATER, street), Channel::Portal, t0).await.unwrap().id);
    }
    let handling = h.voice.handling();
    let answer = || HandlerAction::Answer { text: "已派人现场处理，供水已经恢复。".into() };
    // On time, answered and rated 满意.
    handling.act(&water, &ids[0], HandlerAction::Sign, t0 + Duration::hours(1)).await.unwrap();
    handling.act(&water, &ids[0], answer(), t0 + Duration::hours(2)).await.unwrap();
    h.voice.my_requests().rate(&a, &ids[0], Rating::Satisfied, None, t0 + Duration::hours(3)).await.unwrap();
    // Never signed for. Signed four days late, then answered.
    handling.act(&water, &ids[2], HandlerAction::Sign, t0 + Duration::days(4)).await.unwrap();
    handling.act(&water, &ids[2], answer(), t0 + Duration::days(4) + Duration::hours(1)).await.unwrap();

    let d = h.dispatcher("mingyue").await;
    let figures = h.voice.figures().table(&d, Breakdown::Department, t0 + Duration::days(5)).await.unwrap();
    assert_eq!(figures.len(), 1, "{figures:?}");
    let f = &figures[0];
    assert_eq!(f.name, "明月区水务局");
    assert_eq!((f.requests, f.signing_due, f.signed_on_time, f.answered, f.overdue), (3, 3, 1, 2, 1));
    assert_eq!((f.rated, f.satisfied), (1, 1));
    assert!((f.response_rate.unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert!((f.resolution_rate.unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(f.satisfaction_rate, Some(1.0));
    assert!((f.avg_hours_to_sign.unwrap() - 48.5).abs() < 1e-9, "{:?}", f.avg_hours_to_sign);
    assert_eq!(f.top_categories, [(h.water().code, 3)]);
    // The same requests by district and by category.
    let by_district = h.voice.figures().table(&d, Breakdown::District, t0 + Duration::days(5)).await.unwrap();
    assert_eq!(
        by_district.iter().map(|f| (f.code.as_str(), f.name.as_str(), f.requests)).collect::<Vec<_>>(),
        [("990102", "明月区", 3)]
    );
    let by_category = h.voice.figures().table(&d, Breakdown::Category, t0 + Duration::days(5)).await.unwrap();
    assert_eq!(by_category.len(), 1);
    assert_eq!((by_category[0].code.as_str(), by_category[0].answered), (h.water().code.as_str(), 2));
    // Another district's dispatcher sees none of it.
    let q = h.dispatcher("qinghu").await;
    assert!(h.voice.figures().table(&q, Breakdown::Department, t0).await.unwrap().is_empty());

    // The platform's tallies, kept as each step was written, say the same, and a recount
    // from the records agrees with them.
    use kernel::tally::{Filter, Group, Measure as M};
    let filter = Filter {
        region: kernel::authz::subtree_bounds("/990000/990100/990102/"),
        from: "2026-11-01".parse().unwrap(),
        to: "2026-12-31".parse().unwrap(),
        department_id: None,
        service: None,
    };
    let mut c = h.t.db.pool.acquire().await.unwrap();
    let sums = kernel::tally::sums(&mut c, &filter, Group::Nothing).await.unwrap().remove("").unwrap();
    let got: Vec<i64> = [
        M::HotlineReceived,
        M::HotlineSigned,
        M::HotlineSignedOnTime,
        M::HotlineAnswered,
        M::HotlineRated,
        M::HotlineSatisfied,
    ]
    .iter()
    .map(|m| sums.get(m).copied().unwrap_or(0))
    .collect();
    assert_eq!(got, [3, 2, 1, 2, 1, 1]);
    drop(c);
    assert_tallies_match_recount(&h).await;
}

async fn the_department_sees_the_person_masked_and_never_a_reporter(t: TestDb) {
    let h = hotline(t).await;
    let a = h.principal("citizen.a").await;
    let clerk = h.principal("water.mingyue").await;
    let (handle, read) = (clerk.authorize().unwrap(), clerk.authorize().unwrap());
    let v = h.voice.intake().submit(&a, new(WATER, "990102001"), Channel::Portal, t0()).await.unwrap();
    let handling = h.voice.handling();
    let seen = handling.request(&handle, Some(&read), &v.id, None, t0()).await.unwrap();
    assert_eq!(seen.request.id, v.id);
    let Contact::Shown { name, mobile, masked } = seen.contact else { panic!("{:?}", seen.contact) };
    assert!(masked && name != "王芳" && name.starts_with('王') && mobile.contains("****"), "{name} {mobile}");
    let empty = handling.request(&handle, Some(&read), &v.id, Some(" "), t0()).await;
    assert!(matches!(empty, Err(Error::Invalid { field: "purpose", .. })), "{empty:?}");
    let purpose = "电话回访，核实停水范围";
    let shown = handling.request(&handle, Some(&read), &v.id, Some(purpose), t0()).await.unwrap();
    assert_eq!(shown.contact, Contact::Shown { name: "王芳".into(), mobile: "13812345678".into(), masked: false });
    // Both readings are on the person's trail, the plain one with its purpose.
    let unmasked = ledger::recent(&h.t.db, ledger::Log::Audit, Some("resident_unmasked"), None, 10).await.unwrap();
    assert_eq!(unmasked.len(), 1);
    assert_eq!(unmasked[0].1.subject.as_deref(), Some(a.account_id.as_str()));
    assert_eq!(unmasked[0].1.purpose.as_deref(), Some(purpose));
    assert_eq!(ledger::recent(&h.t.db, ledger::Log::Audit, Some("resident_read"), None, 10).await.unwrap().len(), 1);
    // Without the right to look residents up, nobody is shown.
    let blind = handling.request(&handle, None, &v.id, None, t0()).await.unwrap();
    assert_eq!(blind.contact, Contact::NotPermitted);

    // A 举报 never shows who made it, whatever the purpose.
    let mut report = new(WATER, "990102002");
    report.kind = RequestKind::Report;
    let r = h.voice.intake().submit(&a, report, Channel::Portal, t0()).await.unwrap();
    let seen = handling.request(&handle, Some(&read), &r.id, Some(purpose), t0()).await.unwrap();
    assert_eq!(seen.contact, Contact::Hidden);
    assert_eq!(
        ledger::recent(&h.t.db, ledger::Log::Audit, Some("resident_unmasked"), None, 10).await.unwrap().len(),
        1
    );
}

async fn an_operator_records_a_call_and_the_callers_rating(t: TestDb) {
    let h = hotline(t).await;
    let operator: identity::Capability<kernel::authz::VoiceRecord> =
        h.principal("operator.mingyue").await.authorize().unwrap();
    let caller = || Caller { name: "李建国".into(), mobile: "138 1234 5678".into() };
    let intake = h.voice.intake();
    let bad = intake.record_call(
        &operator,
        Caller { name: "李建国".into(), mobile: "12ab".into() },
        new(WATER, "990102001"),
        t0(),
    );
    assert!(matches!(bad.await, Err(Error::Invalid { field: "caller_mobile", .. })));
    let nameless = intake.record_call(
        &operator,
        Caller { name: " ".into(), mobile: "13812345678".into() },
        new(WATER, "990102001"),
        t0(),
    );
    assert!(matches!(nameless.await, Err(Error::Invalid { field: "caller_name", .. })));
    let elsewhere = intake.record_call(&operator, caller(), new(WATER, "990103001"), t0()).await;
    assert!(matches!(elsewhere, Err(Error::Denied(identity::Denial::OutsideJurisdiction))), "{elsewhere:?}");
    let mut request = new(WATER, "990102001");
    request.idempotency_key = Some("call-0001".into());
    let v = intake.record_call(&operator, caller(), request.clone(), t0()).await.unwrap();
    assert_eq!((v.channel, v.stage), (Channel::Hotline, Stage::Assigned));
    assert_eq!(intake.record_call(&operator, caller(), request, t0()).await.unwrap().number, v.number);
    assert_eq!(intake.count().await.unwrap(), 1);
    assert_eq!(intake.call(&operator, &v.id, t0()).await.unwrap().number, v.number);

    // The bureau sees the caller masked; a stated purpose shows them; both are on the trail.
    let clerk = h.principal("water.mingyue").await;
    let (handle, read) = (clerk.authorize().unwrap(), clerk.authorize().unwrap());
    let seen = h.voice.handling().request(&handle, Some(&read), &v.id, None, t0()).await.unwrap();
    assert_eq!(seen.contact, Contact::Shown { name: "李**".into(), mobile: "138****5678".into(), masked: true });
    let plain = h.voice.handling().request(&handle, None, &v.id, Some("回电核实地址"), t0()).await.unwrap();
    assert_eq!(plain.contact, Contact::Shown { name: "李建国".into(), mobile: "13812345678".into(), masked: false });
    let reads = ledger::recent(&h.t.db, ledger::Log::Audit, Some("voice_caller_read"), None, 10).await.unwrap();
    assert_eq!(reads.len(), 2);
    assert_eq!(reads[0].1.purpose.as_deref(), Some("回电核实地址"));

    // Answered, the operator records the caller's rating from the call back.
    h.voice.handling().act(&handle, &v.id, HandlerAction::Sign, t0()).await.unwrap();
    let answer = HandlerAction::Answer { text: "已安排抢修，今晚恢复供水。".into() };
    h.voice.handling().act(&handle, &v.id, answer, t0()).await.unwrap();
    let a = h.principal("citizen.a").await;
    assert!(matches!(
        h.voice.my_requests().rate(&a, &v.id, Rating::Satisfied, None, t0()).await,
        Err(Error::NotFound("request"))
    ));
    let rated =
        intake.record_rating(&operator, &v.id, Rating::Unsatisfied, Some("来电人说仍未恢复"), t0()).await.unwrap();
    assert_eq!((rated.stage, rated.reopened), (Stage::Handling, 1));
    // A resident's own request is rated on their account, not by the operator.
    let own = intake.submit(&a, new(WATER, "990102002"), Channel::Portal, t0()).await.unwrap();
    let refused = intake.record_rating(&operator, &own.id, Rating::Satisfied, None, t0()).await;
    assert!(matches!(refused, Err(Error::Invalid { field: "request", .. })));
}

async fn limits_follow_urgency_and_kind_and_lapses_are_supervised(t: TestDb) {
    let h = hotline(t).await;
    let a = h.principal("citizen.a").await;
    let water = h.water_clerk("mingyue").await;
    // t0 is Monday 09:00 China time.
    let t0 = t0();
    let china =
        |d: chrono::DateTime<chrono::Utc>| d.with_timezone(&services::calendar::cst()).format("%a %H:%M").to_string();
    let normal = h.voice.intake().submit(&a, new(WATER, "990102001"), Channel::Portal, t0).await.unwrap();
    assert_eq!(china(normal.due.unwrap()), "Tue 23:59", "signing: one working day");
    let mut urgent = new(WATER, "990102002");
    urgent.urgency = Urgency::Urgent;
    let urgent = h.voice.intake().submit(&a, urgent, Channel::Portal, t0).await.unwrap();
    assert_eq!(urgent.due.unwrap(), t0 + Duration::hours(2), "urgent: signed for within two hours");
    let signed = h.voice.handling().act(&water, &normal.id, HandlerAction::Sign, t0).await.unwrap();
    assert_eq!(china(signed.due.unwrap()), "Mon 23:59", "answering: five working days, to the next Monday");
    assert!(signed.due.unwrap() > t0 + Duration::days(6));
    let mut enquiry = new(WATER, "990102003");
    enquiry.kind = RequestKind::Enquiry;
    let enquiry = h.voice.intake().submit(&a, enquiry, Channel::Portal, t0).await.unwrap();
    let enquiry = h.voice.handling().act(&water, &enquiry.id, HandlerAction::Sign, t0).await.unwrap();
    assert_eq!(china(enquiry.due.unwrap()), "Tue 23:59", "an enquiry is answered within a working day");

    // 督办: once when a step is due within four hours (the urgent one at once), once when it
    // is overdue; the others are days away.
    let near = h.voice.supervise(t0).await.unwrap();
    assert_eq!((near.due_soon, near.overdue), (1, 0));
    assert_eq!(h.voice.supervise(t0 + Duration::minutes(95)).await.unwrap(), voice::Supervision::default());
    let late = h.voice.supervise(t0 + Duration::hours(3)).await.unwrap();
    assert_eq!((late.due_soon, late.overdue), (0, 1));
    let inbox = h.voice.handling().inbox(&water, t0 + Duration::hours(3)).await.unwrap();
    let row = inbox.iter().find(|r| r.id == urgent.id).unwrap();
    assert!(row.supervised && row.overdue);
    let entries =
        ledger::recent(&h.t.db, ledger::Log::Audit, Some("voice_request_supervised"), None, 10).await.unwrap();
    assert_eq!(entries.len(), 2);
    // The bureau's desk was told, by the outbox, each time.
    let told: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE topic = 'notification'")
        .fetch_one(&h.t.db.pool)
        .await
        .unwrap();
    assert_eq!(told, 2);
    // Signing for it starts the next step afresh.
    let moved = h.voice.handling().act(&water, &urgent.id, HandlerAction::Sign, t0 + Duration::hours(3)).await.unwrap();
    assert!(!moved.supervised && !moved.overdue);

    // An answer the person never rates closes, unrated, once its three working days pass.
    let answer = HandlerAction::Answer { text: "咨询的事项已电话答复，详见办事指南。".into() };
    let answered = h.voice.handling().act(&water, &enquiry.id, answer, t0 + Duration::hours(4)).await.unwrap();
    assert_eq!(china(answered.due.unwrap()), "Thu 23:59");
    assert_eq!(h.voice.supervise(t0 + Duration::days(3)).await.unwrap().closed_unrated, 0);
    assert_eq!(h.voice.supervise(t0 + Duration::days(4)).await.unwrap().closed_unrated, 1);
    let closed = h.voice.my_requests().request(&a, &enquiry.id, t0 + Duration::days(4)).await.unwrap();
    assert_eq!((closed.stage, closed.rating, steps(&closed).last().copied()), (Stage::Closed, None, Some("lapse")));
    assert_eq!(h.voice.supervise(t0 + Duration::days(5)).await.unwrap().closed_unrated, 0);
}

/// The same burst main in other words.
const WATER_AGAIN: &str = "翠湖小区停水三天了，自来水到现在还没来，老人做饭都成问题，物业也不管";

async fn a_repeat_nearby_is_merged_and_receives_the_answer(t: TestDb) {
    let h = hotline(t).await;
    let a = h.principal("citizen.a").await;
    let now = t0();
    let first = h.voice.intake().submit(&a, new(WATER, "990102001"), Channel::Portal, now).await.unwrap();
    assert_eq!((first.stage, first.also_reported), (Stage::Assigned, 0));
    // Something else in the same place is not a repeat; the same thing elsewhere neither.
    let other = "楼下烧烤店每天晚上油烟很大，吵到半夜，窗户都不敢开";
    let unlike = h.voice.intake().submit(&a, new(other, "990102001"), Channel::Portal, now).await.unwrap();
    assert!(unlike.similar_to.is_none());
    let away = h.voice.intake().submit(&a, new(WATER_AGAIN, "990102004"), Channel::Portal, now).await.unwrap();
    assert!(away.similar_to.is_none());
    // The repeat waits for a dispatcher, however sure its category; both see the other.
    let again = h.voice.intake().submit(&a, new(WATER_AGAIN, "990102001"), Channel::Portal, now).await.unwrap();
    assert_eq!(again.stage, Stage::Dispatching);
    assert_eq!(again.similar_to.as_ref().map(|l| l.number.as_str()), Some(first.number.as_str()));
    assert_eq!(again.also_reported, 1);
    assert_eq!(h.voice.my_requests().request(&a, &first.id, now).await.unwrap().also_reported, 1);

    let qinghu = h.dispatcher("qinghu").await;
    let outside = h.voice.dispatching().merge(&qinghu, &again.id, &first.id, now).await;
    assert!(matches!(outside, Err(Error::Denied(identity::Denial::OutsideJurisdiction))), "{outside:?}");
    let d = h.dispatcher("mingyue").await;
    let itself = h.voice.dispatching().merge(&d, &again.id, &again.id, now).await;
    assert!(matches!(itself, Err(Error::Invalid { field: "into", .. })), "{itself:?}");
    let unknown = h.voice.dispatching().merge(&d, &again.id, "12345-19990101-000001", now).await;
    assert!(matches!(unknown, Err(Error::NotFound("request"))));
    let merged = h.voice.dispatching().merge(&d, &again.id, &first.number, now).await.unwrap();
    assert_eq!(merged.stage, Stage::Merged);
    assert_eq!(merged.merged_into.as_ref().map(|l| l.id.as_str()), Some(first.id.as_str()));
    // A merged request cannot be merged or dispatched again.
    assert!(matches!(
        h.voice.dispatching().dispatch(&d, &again.id, &h.water().code, "990102-SW", now).await,
        Err(Error::Workflow(_))
    ));
    assert!(h.voice.dispatching().queue(&d, now).await.unwrap().iter().all(|r| r.id != again.id));

    // The answer to the first is the answer to both; each person rates their own.
    let water = h.water_clerk("mingyue").await;
    h.voice.handling().act(&water, &first.id, HandlerAction::Sign, now).await.unwrap();
    let answer = "经查，翠湖小区停水系主管爆裂，已抢修完毕并恢复供水。";
    h.voice.handling().act(&water, &first.id, HandlerAction::Answer { text: answer.into() }, now).await.unwrap();
    let again = h.voice.my_requests().request(&a, &again.id, now).await.unwrap();
    assert_eq!((again.stage, again.answer.as_deref()), (Stage::Answered, Some(answer)));
    assert_eq!(again.department_name.as_deref(), Some("明月区水务局"));
    assert_eq!(steps(&again), ["queue", "merge", "answer_merged"]);
    let rated = h.voice.my_requests().rate(&a, &again.id, Rating::Satisfied, None, now).await.unwrap();
    assert_eq!(rated.stage, Stage::Closed);
    let merges = ledger::recent(&h.t.db, ledger::Log::Audit, Some("voice_request_merged"), None, 10).await.unwrap();
    assert_eq!(merges.len(), 1);

    // Merged into a request already answered, a repeat has its answer at once.
    let late = h.voice.intake().submit(&a, new(WATER_AGAIN, "990102004"), Channel::Portal, now).await.unwrap();
    assert_eq!(late.similar_to.as_ref().map(|l| l.id.as_str()), Some(away.id.as_str()));
    let into_answered = h.voice.dispatching().merge(&d, &late.id, &first.id, now).await.unwrap();
    assert_eq!((into_answered.stage, into_answered.answer.as_deref()), (Stage::Answered, Some(answer)));
    assert_tallies_match_recount(&h).await;
}

async fn an_extension_is_asked_once_and_a_dispatcher_decides(t: TestDb) {
    let h = hotline(t).await;
    let a = h.principal("citizen.a").await;
    let water = h.water_clerk("mingyue").await;
    let now = t0();
    let v = h.voice.intake().submit(&a, new(WATER, "990102001"), Channel::Portal, now).await.unwrap();
    let signed = h.voice.handling().act(&water, &v.id, HandlerAction::Sign, now).await.unwrap();
    let due = signed.due.unwrap();
    let ask = |days: u32, reason: &str| HandlerAction::AskExtension { days, reason: reason.into() };
    let reason = "主管更换需协调燃气、电力管线迁改";
    for days in [0, voice::MAX_EXTENSION_DAYS + 1] {
        let refused = h.voice.handling().act(&water, &v.id, ask(days, reason), now).await;
        assert!(matches!(refused, Err(Error::Invalid { field: "days", .. })), "{refused:?}");
    }
    let unexplained = h.voice.handling().act(&water, &v.id, ask(3, " "), now).await;
    assert!(matches!(unexplained, Err(Error::Invalid { field: "reason", .. })));
    let asked = h.voice.handling().act(&water, &v.id, ask(3, reason), now).await.unwrap();
    assert_eq!(asked.stage, Stage::Extending);
    // The clock runs on while the dispatcher decides; no answer meanwhile.
    assert_eq!(asked.due, Some(due));
    let ext = asked.extension.as_ref().unwrap();
    assert_eq!((ext.days, ext.reason.as_str(), ext.decision), (3, reason, ExtensionDecision::Pending));
    let answer = HandlerAction::Answer { text: "已经修好了，恢复供水。".into() };
    assert!(matches!(h.voice.handling().act(&water, &v.id, answer, now).await, Err(Error::Workflow(_))));
    assert!(h.voice.handling().inbox(&water, now).await.unwrap().iter().any(|r| r.id == v.id));

    let qinghu = h.dispatcher("qinghu").await;
    let outside = h.voice.dispatching().decide_extension(&qinghu, &v.id, true, now).await;
    assert!(matches!(outside, Err(Error::Denied(identity::Denial::OutsideJurisdiction))));
    let d = h.dispatcher("mingyue").await;
    assert_eq!(h.voice.dispatching().queue(&d, now).await.unwrap().iter().filter(|r| r.id == v.id).count(), 1);
    let granted = h.voice.dispatching().decide_extension(&d, &v.id, true, now).await.unwrap();
    assert_eq!(granted.stage, Stage::Handling);
    assert_eq!(granted.extension.as_ref().unwrap().decision, ExtensionDecision::Granted);
    // Three working days on from the Monday limit: Thursday, 23:59 China time.
    let china = |d: chrono::DateTime<chrono::Utc>| {
        d.with_timezone(&services::calendar::cst()).format("%m-%d %a %H:%M").to_string()
    };
    assert_eq!(china(due), "11-30 Mon 23:59");
    assert_eq!(china(granted.due.unwrap()), "12-03 Thu 23:59");
    // Once only.
    let twice = h.voice.handling().act(&water, &v.id, ask(2, reason), now).await;
    assert!(matches!(twice, Err(Error::Workflow(_))), "{twice:?}");
    let decided = ledger::recent(&h.t.db, ledger::Log::Audit, Some("voice_extension_decided"), None, 10).await.unwrap();
    assert_eq!(decided[0].1.detail.as_deref(), Some("granted 3"));

    // Refused, the limit stands.
    let w = h.voice.intake().submit(&a, new(WATER, "990102002"), Channel::Portal, now).await.unwrap();
    let w = h.voice.handling().act(&water, &w.id, HandlerAction::Sign, now).await.unwrap();
    h.voice.handling().act(&water, &w.id, ask(5, reason), now).await.unwrap();
    let refused = h.voice.dispatching().decide_extension(&d, &w.id, false, now).await.unwrap();
    assert_eq!((refused.stage, refused.due), (Stage::Handling, w.due));
    assert_eq!(refused.extension.unwrap().decision, ExtensionDecision::Refused);
    // Nothing to decide on a request that asked for nothing.
    let nothing = h.voice.dispatching().decide_extension(&d, &w.id, true, now).await;
    assert!(matches!(nothing, Err(Error::Workflow(_))));
}

async fn only_agreed_answers_are_published_and_without_numbers(t: TestDb) {
    let h = hotline(t).await;
    let a = h.principal("citizen.a").await;
    let water = h.water_clerk("mingyue").await;
    let now = t0();
    let with_phone = format!("{WATER}，我电话13812345678");
    let mut private = new(WATER, "990102002");
    private.publishable = false;
    let mut ids = Vec::new();
    for r in [new(&with_phone, "990102001"), private, new(WATER, "990102003")] {
        ids.push(h.voice.intake().submit(&a, r, Channel::Portal, now).await.unwrap().id);
    }
    // The first two are answered; the third is not yet.
    for id in &ids[..2] {
        h.voice.handling().act(&water, id, HandlerAction::Sign, now).await.unwrap();
        let answer = HandlerAction::Answer { text: "已抢修完毕，如有问题请拨打 0571-88886666。".into() };
        h.voice.handling().act(&water, id, answer, now).await.unwrap();
    }
    let published = h.voice.published().page(1).await.unwrap();
    assert_eq!(published.len(), 1, "{published:?}");
    let p = &published[0];
    assert!(p.text.ends_with("我电话＊＊＊＊") && !p.text.contains("138"), "{}", p.text);
    assert!(p.answer.contains("＊＊＊＊") && !p.answer.contains("8888"), "{}", p.answer);
    assert_eq!((p.region_name.as_str(), p.department_name.as_deref()), ("东风街道", Some("明月区水务局")));
    assert!(h.voice.published().page(2).await.unwrap().is_empty());
    assert!(matches!(h.voice.published().page(0).await, Err(Error::Invalid { field: "page", .. })));
}

async fn photos_come_from_the_persons_own_uploads_and_only_those_of_the_request_see_them(t: TestDb) {
    let h = hotline(t).await;
    let (a, b) = (h.principal("citizen.a").await, h.principal("citizen.b").await);
    let png: &[u8] = b"\x89PNG\r\n\x1a\n a burst main, photographed";
    let documents = h.services.documents();
    let photo = documents.upload(&a, "爆管.png", None, png, t0()).await.unwrap();
    let pdf = documents.upload(&a, "说明.pdf", None, b"%PDF-1.7 a letter", t0()).await.unwrap();
    let theirs = documents.upload(&b, "别人的.png", None, png, t0()).await.unwrap();
    let with = |photos: Vec<String>| {
        let mut r = new(WATER, "990102001");
        r.photos = photos;
        r
    };
    for refused in [vec![pdf.id.clone()], vec![theirs.id.clone()], vec!["no-such-upload".to_string()]] {
        let r = h.voice.intake().submit(&a, with(refused), Channel::Portal, t0()).await;
        assert!(matches!(r, Err(Error::Invalid { field: "photos", .. })), "{r:?}");
    }
    let seven: Vec<String> = (0..7).map(|i| format!("upload-{i}")).collect();
    let r = h.voice.intake().submit(&a, with(seven), Channel::Portal, t0()).await;
    assert!(matches!(r, Err(Error::Invalid { field: "photos", .. })), "{r:?}");
    assert_eq!(h.voice.intake().count().await.unwrap(), 0, "nothing is written");

    // The same photo ticked twice is one photo.
    let v = h
        .voice
        .intake()
        .submit(&a, with(vec![photo.id.clone(), photo.id.clone()]), Channel::Portal, t0())
        .await
        .unwrap();
    assert_eq!(
        v.photos.iter().map(|p| (p.filename.as_str(), p.content_type.as_str())).collect::<Vec<_>>(),
        [("爆管.png", "image/png")]
    );
    // The person, the department it went to and the district's dispatchers see it; no one else.
    let (_, bytes) = h.voice.my_requests().photo(&a, &v.id, &photo.id).await.unwrap();
    assert_eq!(bytes, png);
    assert!(matches!(h.voice.my_requests().photo(&b, &v.id, &photo.id).await, Err(Error::NotFound("request"))));
    let water = h.water_clerk("mingyue").await;
    let (p, bytes) = h.voice.handling().photo(&water, &v.id, &photo.id).await.unwrap();
    assert_eq!((p.filename.as_str(), bytes.as_slice()), ("爆管.png", png));
    let elsewhere = h.water_clerk("qinghu").await;
    assert!(matches!(h.voice.handling().photo(&elsewhere, &v.id, &photo.id).await, Err(Error::NotFound("request"))));
    // Another upload is not this request's photo, even the person's own.
    assert!(matches!(h.voice.handling().photo(&water, &v.id, &pdf.id).await, Err(Error::NotFound("photo"))));
    let d = h.dispatcher("mingyue").await;
    assert_eq!(h.voice.dispatching().photo(&d, &v.id, &photo.id).await.unwrap().1, png);
    let q = h.dispatcher("qinghu").await;
    assert!(matches!(
        h.voice.dispatching().photo(&q, &v.id, &photo.id).await,
        Err(Error::Denied(identity::Denial::OutsideJurisdiction))
    ));
    // A caller's photos come by the portal, not through the operator.
    let operator = h.principal("operator.mingyue").await.authorize().unwrap();
    let caller = Caller { name: "李建国".into(), mobile: "13812345678".into() };
    let call = h.voice.intake().record_call(&operator, caller, with(vec![photo.id.clone()]), t0()).await;
    assert!(matches!(call, Err(Error::Invalid { field: "photos", .. })), "{call:?}");
}
