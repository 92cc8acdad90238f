//! Service tests of applications in the one-stop service hall, each run on SQLite and on
//! PostgreSQL: a case through supplement, approval, certificate and rating; concurrent
//! submissions; bundles; automatic actions; deadlines, escalation and transfer; withdrawal;
//! assisted submission; and bad input refused without half-written cases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

// The package is `tongban-services`; the code calls it `services`, as its dependents do.
extern crate tongban_services as services;

use chrono::Duration;
use kernel::authz::{ApplicationAssist, CertificateRevoke};
use kernel::error::ErrorCode;
use serde_json::json;
use services::workflow::{Decision, Phase};
use services::{ActionWeight, Confirmation, DueState, Error, InboxFilter};
use testkit::{TestDb, on_both_databases};

mod common;
use common::*;

on_both_databases!(
    a_case_goes_through_supplement_approval_certificate_and_rating,
    concurrent_submissions_each_get_their_own_case,
    a_bundle_goes_to_both_departments_and_stops_at_a_rejection,
    automatic_actions_explain_themselves,
    overdue_tasks_escalate_and_withdrawal_cancels_them,
    withdrawing_in_review_tells_the_applicant_once,
    assisted_submission_needs_the_citizens_confirmation,
    bad_input_is_refused_without_half_written_cases,
);

async fn a_case_goes_through_supplement_approval_certificate_and_rating(t: TestDb) {
    let h = hall(t).await;
    let s = &h.services;
    let citizen = h.principal("citizen.a").await;
    let now = t0();
    // The name is prefilled and locked: what the applicant sends for it is ignored.
    let mut data = good_form();
    data["applicant_name"] = json!("李四");
    let app = s.intake().submit(&citizen, "TSMZ0001", data, &[], now).await.unwrap();
    assert_eq!(app.status, Phase::Submitted);
    assert!(app.number.starts_with("YL-20261123-"), "{}", app.number);
    assert_eq!(app.form["applicant_name"], json!("王芳"));
    assert_eq!(app.form["id_number"], json!(ID_A));
    assert_eq!(app.prefill["id_number"]["source"], json!("profile.id_number"));
    // Sensitive values are stored sealed.
    let raw: String =
        sqlx::query_scalar("SELECT COALESCE(sealed_form, '') || form_body FROM applications WHERE id = $1")
            .bind(&app.id)
            .fetch_one(&h.t.db.pool)
            .await
            .unwrap();
    assert!(!raw.contains(ID_A) && !raw.contains("1200.5"), "{raw}");

    // The clerk of another district does not see it; the local clerk does.
    let other = h.principal("clerk.qinghu").await;
    assert_eq!(s.casework().inbox(&handle(&other), &InboxFilter::default(), now).await.unwrap().counts.total, 0);
    assert!(s.casework().act(&handle(&other), &app.id, "accept", None, now).await.is_err());
    let clerk = h.principal("clerk.mingyue").await;
    let inbox = s.casework().inbox(&handle(&clerk), &InboxFilter::default(), now).await.unwrap();
    assert_eq!(inbox.counts.total, 1);
    assert_eq!(inbox.items[0].number, app.number);
    // An approver has nothing to do at intake.
    let approver = h.principal("approver.mingyue").await;
    assert!(matches!(s.casework().act(&handle(&approver), &app.id, "accept", None, now).await, Err(Error::Denied(_))));

    // 补正: once, with the list of what is missing.
    assert!(matches!(
        s.casework().act(&handle(&clerk), &app.id, "request_supplement", None, now).await,
        Err(Error::Invalid { field: "comment", .. })
    ));
    let back =
        s.casework().act(&handle(&clerk), &app.id, "request_supplement", Some("请补充收入证明"), now).await.unwrap();
    assert_eq!(back.status, Phase::Supplement);
    let mine = s.my_cases().my_application(&citizen, &app.number).await.unwrap();
    assert_eq!(mine.supplement_note.as_deref(), Some("请补充收入证明"));
    assert!(mine.actions.contains(&"resubmit".to_string()));
    let bad = s.my_cases().resubmit(&citizen, &app.id, json!({"amount": 99999, "agree": true}), now).await;
    let Err(Error::Form(errors)) = bad else { panic!("expected form errors") };
    assert!(errors.iter().any(|e| e.field == "amount" && e.message_zh.contains("5000")));
    assert!(errors.iter().any(|e| e.field == "monthly_income" && e.message_en.contains("required")));
    let again = s.my_cases().resubmit(&citizen, &app.id, good_form(), now).await.unwrap();
    assert_eq!(again.status, Phase::Submitted);
    let second = s.casework().act(&handle(&clerk), &app.id, "request_supplement", Some("再补"), now).await;
    assert!(matches!(second, Err(Error::Conflict { code: ErrorCode::SupplementAlreadyRequested, .. })));

    let reviewing = s.casework().act(&handle(&clerk), &app.id, "accept", Some("材料齐全"), now).await.unwrap();
    assert_eq!(reviewing.status, Phase::InReview);
    assert_eq!(s.casework().inbox(&handle(&clerk), &InboxFilter::default(), now).await.unwrap().counts.total, 0);
    assert_eq!(s.casework().inbox(&handle(&approver), &InboxFilter::default(), now).await.unwrap().counts.total, 1);
    // Staff reading the case is recorded as a use of the applicant's data.
    let seen = s.casework().case_for_staff(&handle(&approver), &app.number, now).await.unwrap();
    assert_eq!(seen.actions, vec!["approve".to_string(), "reject".to_string()]);
    // The page sets apart what ends a case from what moves it on.
    let weight = |a: &str| seen.action_weights.get(a).copied();
    assert_eq!((weight("approve"), weight("reject")), (Some(ActionWeight::Advances), Some(ActionWeight::Ends)));
    let done = s.casework().act(&handle(&approver), &app.id, "approve", None, now).await.unwrap();
    assert_eq!(done.status, Phase::Completed);
    let steps: Vec<&str> = done.timeline.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(steps, ["submit", "request_supplement", "resubmit", "accept", "approve", "complete"]);
    let mut indexes: Vec<i64> = done.timeline.iter().map(|e| e.ledger_index).collect();
    indexes.dedup();
    assert_eq!(indexes.len(), 6, "one ledger entry per transition");
    assert!(s.casework().act(&handle(&approver), &app.id, "approve", None, now).await.is_err());

    // The approval issued a signed certificate that verifies and can be revoked.
    assert_eq!(done.certificates.len(), 1);
    let check = s.certificates().verify_certificate(&done.certificates[0], now).await.unwrap();
    assert!(check.valid && check.signature_valid, "{check:?}");
    assert_eq!(check.holder, "王*");
    let held = s.certificates().my_certificates(&citizen, now).await.unwrap();
    assert_eq!(held[0].fields["amount"], json!(800));
    // Its fields are named as the issuing service's form names them.
    let title = &held[0].field_titles["amount"];
    assert_eq!((title.zh.as_str(), title.en.as_str()), ("申请金额", "Amount"));
    // Its fields prefill later forms while it is valid.
    let uses_it = services::forms::Form::compile(json!({
        "type": "object",
        "properties": {"granted": {"type": "integer", "title": "已获救助", "x-prefill": "certificate:assistance_decision.amount"}}
    }))
    .unwrap();
    let prefill = s.intake().prefill(&citizen, &uses_it, now).await.unwrap();
    assert_eq!(prefill.values["granted"], json!(800));
    assert_eq!(prefill.sources["granted"], "certificate:assistance_decision.amount");
    // It expires after its validity.
    let later = s.certificates().verify_certificate(&done.certificates[0], now + Duration::days(400)).await.unwrap();
    assert!(later.expired && !later.valid);
    let revoke = approver.authorize::<CertificateRevoke>().unwrap();
    s.certificates().revoke_certificate(&revoke, &done.certificates[0], "发现虚假材料", now).await.unwrap();
    assert!(s.certificates().verify_certificate(&done.certificates[0], now).await.unwrap().revoked);
    assert!(
        s.intake().prefill(&citizen, &uses_it, now).await.unwrap().values.is_empty(),
        "a revoked certificate prefills nothing"
    );

    // Every change reached the applicant.
    let notes = s.my_cases().notifications(&citizen, now).await.unwrap();
    assert!(notes.iter().any(|n| n.text_zh.contains("待补正")));
    assert!(notes.iter().any(|n| n.text_zh.contains("已办结")));

    // 好差评: a bad rating needs a reason and opens a rectification task answered to the applicant.
    assert!(matches!(s.ratings().rate(&citizen, &app.id, 2, None, now).await, Err(Error::Invalid { .. })));
    s.ratings().rate(&citizen, &app.id, 2, Some("等待时间太长"), now).await.unwrap();
    assert!(matches!(
        s.ratings().rate(&citizen, &app.id, 5, None, now).await,
        Err(Error::Conflict { code: ErrorCode::AlreadyRated, .. })
    ));
    let inbox = s.casework().inbox(&handle(&clerk), &InboxFilter::default(), now).await.unwrap();
    assert_eq!(inbox.items.iter().filter(|i| i.kind == services::TaskKind::Rectification).count(), 1);
    s.ratings().answer_rating(&handle(&clerk), &app.id, "已优化窗口排班，感谢监督", now).await.unwrap();
    let rated = s.my_cases().my_application(&citizen, &app.id).await.unwrap();
    assert_eq!(rated.rating.unwrap().reply.as_deref(), Some("已优化窗口排班，感谢监督"));
    assert!(s.my_cases().notifications(&citizen, now).await.unwrap().iter().any(|n| n.text_zh.contains("整改答复")));

    // Someone else's case number is simply not found.
    let stranger = h.principal("citizen.b").await;
    assert!(matches!(s.my_cases().my_application(&stranger, &app.number).await, Err(Error::NotFound(_))));
    assert!(matches!(s.my_cases().withdraw(&stranger, &app.id, now).await, Err(Error::NotFound(_))));

    // A form changed after submission does not change how the case reads: it keeps the form
    // of the version it was submitted under.
    let manage = h.t.console().grant::<kernel::authz::ServiceManage>();
    let note = json!({"note": {"type": "string", "title": "备注", "x-title-en": "Note"}});
    let changed = spec("TSMZ0001", "MZ", "standard", Some("assistance_decision"), form_schema(note));
    let republished = s.publish_service(&manage, None, changed, now).await.unwrap();
    let seen = s.my_cases().my_application(&citizen, &app.id).await.unwrap();
    assert_eq!(seen.form_id, app.form_id);
    assert_ne!(seen.form_id, republished.form_id);
}

/// Submissions made at once are written together (one group commit): each case has its own
/// consecutive number, its history row on the ledger, its task and its notification.
async fn concurrent_submissions_each_get_their_own_case(t: TestDb) {
    let h = hall(t).await;
    let citizen = h.principal("citizen.a").await;
    let now = t0();
    let submissions: Vec<_> = (0..24)
        .map(|_| {
            let (s, citizen) = (h.services.clone(), citizen.clone());
            tokio::spawn(async move { s.intake().submit(&citizen, "TSMZ0001", good_form(), &[], now).await })
        })
        .collect();
    let mut cases = Vec::new();
    for s in submissions {
        cases.push(s.await.unwrap().unwrap());
    }
    let mut numbers: Vec<u32> = cases.iter().map(|c| c.number.rsplit('-').next().unwrap().parse().unwrap()).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=24).collect::<Vec<u32>>(), "consecutive and distinct");
    let mut indexes: Vec<i64> = cases.iter().map(|c| c.timeline[0].ledger_index).collect();
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(indexes.len(), 24, "one ledger entry each");
    for c in &cases {
        assert_eq!((c.timeline.len(), c.status), (1, Phase::Submitted));
        assert_eq!(c.form["id_number"], json!(ID_A), "the sealed value answers opened");
        // The answer built from what was written is what reading the case back shows.
        let stored = h.services.my_cases().my_application(&citizen, &c.id).await.unwrap();
        assert_eq!(serde_json::to_value(c).unwrap(), serde_json::to_value(&stored).unwrap());
    }
    let clerk = h.principal("clerk.mingyue").await;
    assert_eq!(
        h.services.casework().inbox(&handle(&clerk), &InboxFilter::default(), now).await.unwrap().counts.total,
        24
    );
    let notes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE application_id IS NOT NULL")
        .fetch_one(&h.t.db.pool)
        .await
        .unwrap();
    assert_eq!(notes, 24);
}

async fn a_bundle_goes_to_both_departments_and_stops_at_a_rejection(t: TestDb) {
    let h = hall(t).await;
    let s = &h.services;
    let citizen = h.principal("citizen.a").await;
    let now = t0();
    let (_, form) = s.intake().bundle_form("TSBD0001").await.unwrap();
    assert_eq!(form.sections.len(), 1, "shared fields appear once");
    for outcome in ["approve", "reject"] {
        let app = s.intake().submit_bundle(&citizen, "TSBD0001", good_form(), now).await.unwrap();
        assert_eq!(app.bundle.as_deref(), Some("TSBD0001"));
        let clerk = h.principal("clerk.mingyue").await;
        let app = s.casework().act(&handle(&clerk), &app.id, "accept", None, now).await.unwrap();
        assert_eq!(app.branches.len(), 2);
        let mz = h.principal("approver.mingyue").await;
        let wj = h.principal("wj.mingyue").await;
        assert_eq!(s.casework().inbox(&handle(&wj), &InboxFilter::default(), now).await.unwrap().counts.total, 1);
        let app = s.casework().act(&handle(&mz), &app.id, "approve", None, now).await.unwrap();
        assert_eq!(app.status, Phase::InReview, "waits for the other department");
        assert_eq!(app.branches["TSMZ0001"], Decision::Approved);
        let comment = (outcome == "reject").then_some("不符合条件");
        let app = s.casework().act(&handle(&wj), &app.id, outcome, comment, now).await.unwrap();
        let expected = if outcome == "approve" { Phase::Completed } else { Phase::Rejected };
        assert_eq!(app.status, expected);
        assert_eq!(s.casework().inbox(&handle(&wj), &InboxFilter::default(), now).await.unwrap().counts.total, 0);
        if outcome == "approve" {
            assert_eq!(app.certificates.len(), 1, "the member that issues one did");
        }
    }
}

async fn automatic_actions_explain_themselves(t: TestDb) {
    let h = hall(t).await;
    let s = &h.services;
    let citizen = h.principal("citizen.a").await;
    let clerk = h.principal("clerk.mingyue").await;
    let now = t0();
    let app = s.intake().submit(&citizen, "TSMZ0002", good_form(), &[], now).await.unwrap();
    assert_eq!(app.form["age"], json!(76));
    let app = s.casework().act(&handle(&clerk), &app.id, "accept", None, now).await.unwrap();
    assert_eq!(app.status, Phase::Completed);
    let auto = app.timeline.iter().find(|e| e.action == "auto_approve").unwrap();
    assert_eq!(auto.actor, "system");
    assert!(auto.explanation.as_deref().unwrap().contains("age = 76 >= 75"), "{:?}", auto.explanation);
}

async fn overdue_tasks_escalate_and_withdrawal_cancels_them(t: TestDb) {
    let h = hall(t).await;
    let s = &h.services;
    let citizen = h.principal("citizen.a").await;
    let now = t0();
    let app = s.intake().submit(&citizen, "TSMZ0001", good_form(), &[], now).await.unwrap();
    let clerk = h.principal("clerk.mingyue").await;
    let leader = h.principal("leader.mingyue").await;
    // Intake has one working day: due soon at once, overdue after it.
    let inbox = s.casework().inbox(&handle(&clerk), &InboxFilter::default(), now).await.unwrap();
    assert_eq!(inbox.items[0].due, DueState::DueSoon);
    assert_eq!(s.casework().inbox(&handle(&leader), &InboxFilter::default(), now).await.unwrap().counts.total, 0);
    let later = now + Duration::days(3);
    let report = s.casework().run_timers(later).await.unwrap();
    assert_eq!((report.warned, report.escalated), (1, 1));
    assert_eq!(s.casework().run_timers(later).await.unwrap().escalated, 0, "escalated once");
    let told = s.my_cases().notifications(&leader, later).await.unwrap();
    assert!(
        told.iter().any(|n| n.application_id.as_deref() == Some(app.id.as_str()) && n.text_en.contains("escalated")),
        "the supervisor is told of the escalation: {told:?}"
    );
    let leader_inbox = s.casework().inbox(&handle(&leader), &InboxFilter::default(), later).await.unwrap();
    assert_eq!(leader_inbox.counts.overdue, 1);
    assert!(leader_inbox.items[0].escalated);
    let overdue = InboxFilter { due: Some(DueState::Overdue), ..InboxFilter::default() };
    assert_eq!(s.casework().inbox(&handle(&clerk), &overdue, later).await.unwrap().items.len(), 1);
    // The supervisor may act on the escalated task.
    let taken = s.casework().case_for_staff(&handle(&leader), &app.id, later).await.unwrap();
    assert!(taken.actions.contains(&"accept".to_string()));
    s.casework().assign(&handle(&clerk), &leader_inbox.items[0].task_id, None, later).await.unwrap();
    let mine = InboxFilter { mine: true, ..InboxFilter::default() };
    assert_eq!(s.casework().inbox(&handle(&clerk), &mine, later).await.unwrap().items.len(), 1);
    // Transfer: only to a colleague of the same department holding the task's role.
    let task_id = &leader_inbox.items[0].task_id;
    let choice = s.casework().transfer_choice(&handle(&clerk), task_id).await.unwrap();
    let clerk2 = h.principal("clerk2.mingyue").await;
    let names: Vec<&str> = choice.colleagues.iter().map(|c| c.account_id.as_str()).collect();
    assert_eq!(names, vec![clerk2.account_id.as_str()], "not the caller, not another role or district");
    let approver = h.principal("approver.mingyue").await;
    assert!(matches!(
        s.casework().assign(&handle(&clerk), task_id, Some(&approver.account_id), later).await,
        Err(Error::Conflict { code: ErrorCode::NotEligible, .. })
    ));
    s.casework().assign(&handle(&clerk), task_id, Some(&clerk2.account_id), later).await.unwrap();
    assert_eq!(s.casework().inbox(&handle(&clerk2), &mine, later).await.unwrap().items.len(), 1);
    assert_eq!(s.casework().inbox(&handle(&clerk), &mine, later).await.unwrap().items.len(), 0);
    let other = h.principal("clerk.qinghu").await;
    assert!(s.casework().transfer_choice(&handle(&other), task_id).await.is_err(), "another district's task");

    let gone = s.my_cases().withdraw(&citizen, &app.id, later).await.unwrap();
    assert_eq!(gone.status, Phase::Withdrawn);
    assert_eq!(s.casework().inbox(&handle(&clerk), &InboxFilter::default(), later).await.unwrap().counts.total, 0);
    assert!(matches!(
        s.my_cases().withdraw(&citizen, &app.id, later).await,
        Err(Error::Conflict { code: ErrorCode::AlreadyDecided, .. })
    ));
    assert!(matches!(
        s.ratings().rate(&citizen, &app.id, 5, None, later).await,
        Err(Error::Conflict { code: ErrorCode::NotFinished, .. })
    ));
}

async fn withdrawing_in_review_tells_the_applicant_once(t: TestDb) {
    let h = hall(t).await;
    let s = &h.services;
    let citizen = h.principal("citizen.a").await;
    let clerk = h.principal("clerk.mingyue").await;
    let now = t0();
    let app = s.intake().submit(&citizen, "TSMZ0001", good_form(), &[], now).await.unwrap();
    s.casework().act(&handle(&clerk), &app.id, "accept", None, now).await.unwrap();
    s.my_cases().notifications(&citizen, now).await.unwrap();
    let gone = s.my_cases().withdraw(&citizen, &app.id, now).await.unwrap();
    assert_eq!(gone.status, Phase::Withdrawn);
    assert_eq!(gone.timeline.last().unwrap().action, "withdraw");
    let unread: Vec<String> = s
        .my_cases()
        .notifications(&citizen, now)
        .await
        .unwrap()
        .into_iter()
        .filter(|n| !n.read)
        .map(|n| n.text_zh)
        .collect();
    assert_eq!(unread.len(), 1, "{unread:?}");
    assert!(unread[0].contains("已撤回"), "{unread:?}");
    let approver = h.principal("approver.mingyue").await;
    assert_eq!(s.casework().inbox(&handle(&approver), &InboxFilter::default(), now).await.unwrap().counts.total, 0);
}

async fn assisted_submission_needs_the_citizens_confirmation(t: TestDb) {
    let h = hall(t).await;
    let s = &h.services;
    let now = t0();
    let clerk = h.principal("clerk.mingyue").await;
    let assist = clerk.authorize::<ApplicationAssist>().unwrap();
    let wrong = s
        .intake()
        .submit_assisted(&assist, ID_A, "TSMZ0001", good_form(), Confirmation::Code("000000".into()), now)
        .await;
    assert!(matches!(wrong, Err(Error::Conflict { code: ErrorCode::InvalidCode, .. })));
    s.intake().send_assist_code(&assist, ID_A, now).await.unwrap();
    let citizen = h.principal("citizen.a").await;
    let note = s
        .my_cases()
        .notifications(&citizen, now)
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.text_zh.contains("确认码"))
        .unwrap();
    let code: String = note.text_zh.chars().filter(char::is_ascii_digit).take(6).collect();
    // A form with mistakes does not use the code up: nothing of that attempt is kept.
    let bad = s
        .intake()
        .submit_assisted(&assist, ID_A, "TSMZ0001", json!({"amount": 0}), Confirmation::Code(code.clone()), now)
        .await;
    assert!(matches!(bad, Err(Error::Form(_))));
    let app = s
        .intake()
        .submit_assisted(&assist, ID_A, "TSMZ0001", good_form(), Confirmation::Code(code.clone()), now)
        .await
        .unwrap();
    assert!(app.assisted);
    assert!(app.timeline[0].actor.contains("帮办"));
    assert!(s.my_cases().my_applications(&citizen).await.unwrap().iter().any(|a| a.id == app.id));
    // A code works once.
    let reuse = s.intake().submit_assisted(&assist, ID_A, "TSMZ0001", good_form(), Confirmation::Code(code), now).await;
    assert!(matches!(reuse, Err(Error::Conflict { code: ErrorCode::InvalidCode, .. })));
    // A clerk of another district cannot serve a resident of this one.
    let other = h.principal("clerk.qinghu").await.authorize::<ApplicationAssist>().unwrap();
    assert!(matches!(
        s.intake().submit_assisted(&other, ID_A, "TSMZ0001", good_form(), Confirmation::Signature, now).await,
        Err(Error::Denied(_))
    ));
}

async fn bad_input_is_refused_without_half_written_cases(t: TestDb) {
    let h = hall(t).await;
    let s = &h.services;
    let citizen = h.principal("citizen.a").await;
    let now = t0();
    assert!(matches!(s.intake().submit(&citizen, "NOPE", good_form(), &[], now).await, Err(Error::NotFound(_))));
    assert!(matches!(
        s.intake().submit(&citizen, "TSMZ0001", json!([1, 2]), &[], now).await,
        Err(Error::Invalid { .. })
    ));
    let Err(Error::Form(errors)) =
        s.intake().submit(&citizen, "TSMZ0001", json!({"amount": "lots", "extra": 1}), &[], now).await
    else {
        panic!("expected form errors")
    };
    assert!(errors.iter().any(|e| e.field == "amount"));
    assert!(errors.iter().any(|e| e.field == "agree"));
    let attach = s.intake().submit(&citizen, "TSMZ0001", good_form(), &["not-a-document".to_string()], now).await;
    assert!(matches!(attach, Err(Error::Invalid { field: "documents", .. })));
    assert!(s.my_cases().my_applications(&citizen).await.unwrap().is_empty(), "nothing half-written");
    // Uploads: the content decides the type; attached once to the uploader's own case.
    assert!(matches!(
        s.documents().upload(&citizen, "photo.jpg", None, b"MZ\x90 not an image", now).await,
        Err(Error::Conflict { code: ErrorCode::UnsupportedFileType, .. })
    ));
    let doc = s.documents().upload(&citizen, "../收入证明.pdf", Some("收入证明"), b"%PDF-1.7 test", now).await.unwrap();
    assert_eq!(doc.filename, "收入证明.pdf");
    let app = s.intake().submit(&citizen, "TSMZ0001", good_form(), std::slice::from_ref(&doc.id), now).await.unwrap();
    assert_eq!(app.documents.len(), 1);
    let again = s.intake().submit(&citizen, "TSMZ0001", good_form(), &[doc.id], now).await;
    assert!(matches!(again, Err(Error::Invalid { field: "documents", .. })));
}
