//! Closing a case files the observatory record, apart from session data: the record's
//! indicators and the month, and nothing else (no session id, no words of the
//! conversation). The session's own data is gone. (That it survives a crash and restart
//! is shown in `crash_leaves_no_session_data.rs`.)

use approdo_core::client::Event;
use approdo_core::identity::Role;
use approdo_core::observatory::{
    Activator, AgeBand, Cell, Exploitation, Gender, ObservatoryRecord, Outcome, Seeker,
};
use approdo_tests::*;

const CANARY: &str = "CANARY-observatory-77d2";

#[tokio::test]
async fn closing_a_case_files_only_the_record() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut operator = staff(
        &relay,
        &org,
        org.credential(Role::Operator, &["national"], &["en"]),
    )
    .await;

    let mut client = approdo_core::client::Client::person(org.key.public());
    client
        .set_intake(Seeker::Worker(Activator::StreetUnit))
        .expect("intake");
    client.open_session(tag("en"), None).expect("open");
    let mut person = Actor::spawn(
        approdo_client::Driver::connect(&relay.url(), client)
            .await
            .expect("connect"),
    );
    let Event::SessionOpened { session } = person
        .wait_for("opened", |e| matches!(e, Event::SessionOpened { .. }))
        .await
    else {
        unreachable!()
    };
    accept(&mut operator, session).await;
    let Event::Intake { seeker, .. } = operator
        .wait_for("intake", |e| matches!(e, Event::Intake { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(seeker, Seeker::Worker(Activator::StreetUnit));
    say(&person, session, CANARY);
    assert_eq!(message(&mut operator).await.1, CANARY);

    let record = ObservatoryRecord {
        gender: Gender::Female,
        age: AgeBand::From18To25,
        territory_emerged: Some(tag("veneto")),
        territory_exploitation: Some(tag("veneto")),
        exploitation: vec![Exploitation::SexualStreet],
        activator: Activator::StreetUnit,
        outcome: Outcome::ReferralRegionalProject,
    };
    let filed = record.clone();
    operator.act(move |c| c.close_case(session, filed).expect("close"));
    person
        .wait_for("ended", |e| matches!(e, Event::SessionEnded { .. }))
        .await;
    until_census(&relay, "session gone", |c| c.sessions == 0).await;
    assert_eq!(relay.inspector.census().stored_records, 0);
    assert_eq!(relay.inspector.observatory_len(), 1);

    // A coordinator reads counts, never the record: one case, so every count is below 5
    // and suppressed; only the month is named.
    let mut coordinator = staff(
        &relay,
        &org,
        org.credential(Role::Coordinator, &["national"], &[]),
    )
    .await;
    coordinator.act(|c| c.query_observatory().expect("query"));
    let Event::ObservatoryTables { tables } = coordinator
        .wait_for("tables", |e| matches!(e, Event::ObservatoryTables { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(
        tables.months,
        vec![approdo_relay::observatory::month_of(
            approdo_client::unix_now()
        )]
    );
    assert_eq!(tables.cases, Cell::Suppressed);
    assert!(
        tables
            .tables
            .iter()
            .flat_map(|t| t.total.iter().chain(t.by_month.iter().flatten()))
            .chain(&tables.cases_by_month)
            .all(|c| *c == Cell::Suppressed),
        "a single case shows in no count"
    );
    // Operators may not read it.
    operator.act(|c| assert!(c.query_observatory().is_err()));

    // On disk: no session id, no conversation.
    let dir = relay.inspector.observatory_dir();
    let _kept = relay.stop().await;
    // Exactly the record and its month were filed.
    let stored = approdo_relay::observatory::records_offline(&dir).expect("read");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].record, record);
    assert_eq!(
        stored[0].month,
        approdo_relay::observatory::month_of(approdo_client::unix_now())
    );
    let files = read_tree(&dir);
    assert!(!files.is_empty());
    assert!(
        !contains(&files, &session.0),
        "no session id in the observatory"
    );
    assert!(
        !contains(&files, CANARY.as_bytes()),
        "no conversation in the observatory"
    );
}
