//! Demo 12345 requests in every state, from residents of the staffed districts, with the
//! districts' routing tables, so that the queue, the inboxes and 我的诉求 have something to
//! show.

use super::*;
use ::voice::{Channel, HandlerAction, NewRequest, Rating, RequestKind, Stage, Urgency, Voice};

/// How many demo requests are seeded.
pub const DEMO_REQUESTS: usize = 300;

/// What happens to a demo request after intake, in turn.
#[derive(Clone, Copy)]
enum Fate {
    Left,
    Signed,
    Answered,
    Satisfied,
    Reopened,
    SentBack,
    /// Signed for, then more time asked; every other one granted.
    Extended,
}

const FATES: [Fate; 9] = [
    Fate::Left,
    Fate::Signed,
    Fate::Answered,
    Fate::Satisfied,
    Fate::Satisfied,
    Fate::Reopened,
    Fate::SentBack,
    Fate::Extended,
    Fate::Left,
];

/// Each staffed district's routing table: every category to the district's department of
/// its usual kind, written out so that a district can change one line.
pub async fn seed_routes(voice: &Voice, console: &Console, now: DateTime<Utc>) -> Result<usize, ::voice::Error> {
    let org = console.grant::<kernel::authz::OrganisationManage>();
    let mut routes = 0;
    for (district, _, _) in staffed_districts() {
        for c in voice.categories().all() {
            let department = format!("{district}-{}", c.department_kind);
            voice.routing().set_route(&org, district, &c.code, &department, now).await?;
            routes += 1;
        }
    }
    Ok(routes)
}

/// A few hundred requests in every state; only on a platform without requests, the same
/// every time. Texts come from the classifier's training set, as residents wrote them.
pub async fn seed_requests(identity: &Identity, voice: &Voice, now: DateTime<Utc>) -> anyhow::Result<usize> {
    if voice.intake().count().await? > 0 {
        return Ok(0);
    }
    let texts = ::voice::classifier::read_labelled(::voice::TRAINING_SET).map_err(|e| anyhow::anyhow!(e))?;
    let mut residents = Vec::new();
    for i in 1..CITIZENS {
        let p = identity.sign_in().console_principal(&format!("resident-{i:04}")).await?;
        let home = p.region.as_ref().map(|r| r.path.clone()).unwrap_or_default();
        if let Some(district) = STAFFED_DISTRICTS.iter().find(|d| home.contains(&format!("/{d}/"))) {
            residents.push((p, district.to_string()));
        }
    }
    let kinds = <RequestKind as strum::VariantArray>::VARIANTS;
    let mut seeded = 0;
    for i in 0..DEMO_REQUESTS {
        // Every seventh line of the training set, so that all categories appear.
        let (Some(example), Some((me, district))) =
            (texts.get((i * 7) % texts.len().max(1)), residents.get(i % residents.len().max(1)))
        else {
            break;
        };
        let region = me.region.as_ref().map(|r| r.code.clone()).unwrap_or_else(|| district.clone());
        let new = NewRequest {
            kind: kinds.get(i % kinds.len()).copied().unwrap_or(RequestKind::Complaint),
            text: example.text.to_string(),
            region_code: region,
            address: None,
            urgency: if i % 11 == 0 { Urgency::Urgent } else { Urgency::Normal },
            publishable: i % 3 != 0,
            idempotency_key: Some(format!("demo-{i}")),
            photos: Vec::new(),
        };
        // Spread over the last four weeks, so that some are overdue.
        let at = now - chrono::Duration::hours(i64::try_from((i * 29) % (28 * 24)).unwrap_or(0) + 1);
        let mut view = voice.intake().submit(me, new, Channel::Portal, at).await?;
        seeded += 1;
        let fate = FATES.get(i % FATES.len()).copied().unwrap_or(Fate::Left);
        let later = at + chrono::Duration::hours(3);
        let dispatcher = identity.sign_in().console_principal(&format!("dispatcher.{}", pinyin_of(district))).await?;
        let dispatcher = dispatcher.authorize::<kernel::authz::VoiceDispatch>()?;
        if view.stage == Stage::Dispatching && !matches!(fate, Fate::Left) {
            // A repeat of an open request is merged into it; the rest are dispatched.
            if let Some(into) = &view.similar_to {
                voice.dispatching().merge(&dispatcher, &view.id, &into.id, later).await?;
                continue;
            }
            let department = format!("{district}-{}", view.category.department_kind);
            let code = view.category.code.clone();
            view = voice.dispatching().dispatch(&dispatcher, &view.id, &code, &department, later).await?;
        }
        if view.stage != Stage::Assigned {
            continue;
        }
        let Some(post) = handler_of(&view.category.department_kind) else { continue };
        let handler = identity.sign_in().console_principal(&format!("{post}.{}", pinyin_of(district))).await?;
        let cap = handler.authorize::<kernel::authz::VoiceHandle>()?;
        let handling = voice.handling();
        match fate {
            Fate::Left => {}
            Fate::SentBack => {
                let reason = "经核实，该事项不属于本部门职责，请重新派单".to_string();
                handling.act(&cap, &view.id, HandlerAction::SendBack { reason }, later).await?;
            }
            Fate::Extended => {
                handling.act(&cap, &view.id, HandlerAction::Sign, later).await?;
                let reason = "需协调多个部门现场会商，申请延期".to_string();
                handling.act(&cap, &view.id, HandlerAction::AskExtension { days: 5, reason }, later).await?;
                if i % 2 == 0 {
                    voice.dispatching().decide_extension(&dispatcher, &view.id, true, later).await?;
                }
            }
            Fate::Signed | Fate::Answered | Fate::Satisfied | Fate::Reopened => {
                handling.act(&cap, &view.id, HandlerAction::Sign, later).await?;
                if matches!(fate, Fate::Signed) {
                    continue;
                }
                let answer = "您反映的问题已收悉，我部门已派人现场核查并处理完毕，感谢您的监督。".to_string();
                handling.act(&cap, &view.id, HandlerAction::Answer { text: answer }, later).await?;
                let rating = match fate {
                    Fate::Satisfied => Some(if i % 2 == 0 { Rating::Satisfied } else { Rating::BasicallySatisfied }),
                    Fate::Reopened => Some(Rating::Unsatisfied),
                    _ => None,
                };
                if let Some(rating) = rating {
                    voice.my_requests().rate(me, &view.id, rating, None, later + chrono::Duration::hours(1)).await?;
                }
            }
        }
    }
    Ok(seeded)
}

fn pinyin_of(district: &str) -> &'static str {
    staffed_districts().find(|(code, _, _)| *code == district).map_or("mingyue", |(_, _, p)| *p)
}

/// The demo staff member who answers a department's requests, where the demo has one.
fn handler_of(kind: &str) -> Option<&'static str> {
    match kind {
        "SW" => Some("water"),
        "CG" => Some("city"),
        "MZ" => Some("clerk"),
        "GA" => Some("police"),
        "SJ" => Some("approver"),
        _ => None,
    }
}
