//! Service tests of hall appointments, each run on SQLite and on PostgreSQL: slots and
//! capacity, booking refusals, rescheduling and the calendar file, check-in at the window,
//! and no-shows that suspend online booking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

// The package is `tongban-services`; the code calls it `services`, as its dependents do.
extern crate tongban_services as services;

use chrono::Duration;
use serde_json::json;
use services::Error;
use testkit::{TestDb, on_both_databases};

mod common;
use common::*;

on_both_databases!(appointments_respect_capacity_and_record_no_shows,);

async fn appointments_respect_capacity_and_record_no_shows(t: TestDb) {
    let console = t.console();
    let h = hall(t).await;
    let s = &h.services;
    let now = t0();
    let hall_spec: services::HallSpec = serde_json::from_value(json!({
        "code": "HALL-T", "name_zh": "明月区政务服务中心", "name_en": "Mingyue centre", "region": "990102",
        "address_zh": "明月区彩云路 18 号", "address_en": "18 Caiyun Road",
        "opening": [["09:00", "12:00"], ["13:30", "17:00"]], "slot_minutes": 30,
        "windows": [{"number": "1", "services": ["TSMZ0001"]}, {"number": "2", "services": ["TSMZ0001", "TSWJ0001"]}]
    }))
    .unwrap();
    s.appointments().publish_hall(&console.grant::<kernel::authz::ServiceManage>(), hall_spec, now).await.unwrap();
    assert_eq!(s.appointments().halls_for("TSWJ0001", None).await.unwrap().len(), 1);

    let tuesday = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
    let slots = s.appointments().slots("HALL-T", "TSWJ0001", tuesday, now).await.unwrap();
    assert_eq!(slots.len(), 13);
    assert!(slots.iter().all(|x| x.capacity == 1 && x.remaining == 1));
    let saturday = chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
    assert!(
        s.appointments().slots("HALL-T", "TSWJ0001", saturday, now).await.unwrap().is_empty(),
        "closed on days off"
    );

    let a = h.principal("citizen.a").await;
    let b = h.principal("citizen.b").await;
    let nine = at("2026-11-24T01:00:00Z");
    let mine = s.appointments().book(&a, "HALL-T", "TSWJ0001", nine, now).await.unwrap();
    assert_eq!(conflict(s.appointments().book(&b, "HALL-T", "TSWJ0001", nine, now).await), "slot_full");
    assert_eq!(
        conflict(s.appointments().book(&a, "HALL-T", "TSWJ0001", at("2026-11-24T02:00:00Z"), now).await),
        "already_booked"
    );
    assert!(matches!(
        s.appointments().book(&b, "HALL-T", "TSWJ0001", at("2026-11-24T01:10:00Z"), now).await,
        Err(Error::Invalid { field: "start", .. })
    ));
    assert_eq!(
        conflict(s.appointments().book(&b, "HALL-T", "TSWJ0001", at("2026-11-28T01:00:00Z"), now).await),
        "slot_unavailable"
    );
    assert_eq!(
        conflict(s.appointments().book(&b, "HALL-T", "TSWJ0001", at("2026-12-15T01:00:00Z"), now).await),
        "slot_unavailable"
    );
    assert_eq!(s.appointments().slots("HALL-T", "TSWJ0001", tuesday, now).await.unwrap()[0].remaining, 0);

    // Rescheduling frees the old place; the calendar file follows the booking.
    let moved = s.appointments().reschedule(&a, &mine.id, at("2026-11-24T01:30:00Z"), now).await.unwrap();
    assert_eq!(moved.start, at("2026-11-24T01:30:00Z"));
    let theirs = s.appointments().book(&b, "HALL-T", "TSWJ0001", nine, now).await.unwrap();
    let ics = s.appointments().appointment_ics(&a, &mine.id, now).await.unwrap();
    assert!(ics.contains("BEGIN:VEVENT") && ics.contains("DTSTART:20261124T013000Z"), "{ics}");
    assert!(ics.contains("LOCATION:明月区彩云路 18 号"), "{ics}");
    assert!(
        matches!(s.appointments().my_appointment(&b, &mine.id, now).await, Err(Error::NotFound(_))),
        "not someone else's"
    );
    let cancelled = s.appointments().cancel_appointment(&a, &mine.id, now).await.unwrap();
    assert_eq!(cancelled.status, services::AppointmentStatus::Cancelled);
    assert_eq!(
        conflict(s.appointments().reschedule(&a, &mine.id, at("2026-11-24T02:00:00Z"), now).await),
        "appointment_closed"
    );

    // The window sees its day and checks people in; another district cannot.
    let clerk = handle(&h.principal("clerk.mingyue").await);
    let day = s.appointments().hall_day(&clerk, "HALL-T", Some(tuesday), now).await.unwrap();
    assert_eq!(day.len(), 1, "cancelled bookings are not listed");
    assert_eq!(day[0].person.as_deref(), Some("王芳"));
    assert_eq!(
        conflict(s.appointments().check_in(&clerk, &theirs.id, now).await),
        "appointment_closed",
        "only on the day"
    );
    let other = handle(&h.principal("clerk.qinghu").await);
    assert!(matches!(s.appointments().hall_day(&other, "HALL-T", Some(tuesday), now).await, Err(Error::Denied(_))));
    let came = s.appointments().check_in(&clerk, &theirs.id, at("2026-11-24T01:05:00Z")).await.unwrap();
    assert_eq!(came.status, services::AppointmentStatus::Attended);

    // Bookings nobody came to become no-shows; three suspend online booking.
    for (i, d) in ["24", "25", "26"].iter().enumerate() {
        let when = at(&format!("2026-11-{d}T06:00:00Z"));
        let booked_at = when - Duration::hours(2);
        s.appointments().book(&b, "HALL-T", "TSMZ0001", when, booked_at).await.unwrap();
        let report = s.appointments().record_no_shows(when + Duration::hours(1)).await.unwrap();
        assert_eq!(report.recorded, 1, "round {i}");
    }
    let r =
        s.appointments().book(&b, "HALL-T", "TSMZ0001", at("2026-11-30T02:00:00Z"), at("2026-11-27T02:00:00Z")).await;
    assert_eq!(conflict(r), "booking_suspended");
    assert_eq!(
        s.appointments().record_no_shows(at("2026-11-30T00:00:00Z")).await.unwrap().recorded,
        0,
        "recorded once"
    );

    // The hall's tallies: what was booked and not cancelled, who came, who did not; and a
    // recount from the bookings says the same.
    let mut c = h.t.db.pool.acquire().await.unwrap();
    let stored = kernel::tally::stored(&mut c, kernel::tally::Module::Services).await.unwrap();
    drop(c);
    let sum = |m: kernel::tally::Measure| stored.iter().filter(|n| n.measure == m).map(|n| n.value).sum::<i64>();
    use kernel::tally::Measure as M;
    assert_eq!((sum(M::HallAttended), sum(M::HallNoShow)), (1, 3));
    assert!(sum(M::HallBooked) >= 4, "{}", sum(M::HallBooked));
    assert_eq!(stored, s.recount().await.unwrap());
}
