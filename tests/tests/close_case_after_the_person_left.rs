//! The person often leaves first (a quick exit ends the session at once). The operator can
//! still file the observatory record for that session afterwards; nobody else can, and it
//! can be filed only once.

use approdo_core::client::Event;
use approdo_core::identity::Role;
use approdo_core::observatory::{
    Activator, AgeBand, Exploitation, Gender, ObservatoryRecord, Outcome,
};
use approdo_tests::*;

#[tokio::test]
async fn the_operator_files_the_record_after_a_quick_exit() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let Conversation {
        person,
        mut operator,
        session,
    } = Conversation::open(&relay, &org, "en").await;
    let mut other = staff(
        &relay,
        &org,
        org.credential(Role::Operator, &["national"], &["en"]),
    )
    .await;

    person.act(move |c| c.end(session).expect("quick exit"));
    operator
        .wait_for("ended", |e| matches!(e, Event::SessionEnded { .. }))
        .await;
    until_census(&relay, "session gone", |c| c.sessions == 0).await;

    let record = ObservatoryRecord {
        gender: Gender::NotKnown,
        age: AgeBand::NotKnown,
        territory_emerged: None,
        territory_exploitation: None,
        exploitation: vec![Exploitation::NotIdentified],
        activator: Activator::Person,
        outcome: Outcome::Counselling,
    };
    // Another operator, who was not in the session, may not file it (the relay refuses).
    let r = record.clone();
    // (sent raw: the client itself would refuse, and we want the relay's answer)
    let raw = approdo_core::wire::encode(&approdo_core::wire::ClientFrame::CloseCase {
        session,
        record: r,
    })
    .expect("encode");
    other.send_raw(raw);
    other
        .wait_for("refusal", |e| {
            matches!(
                e,
                Event::RelayError {
                    code: approdo_core::wire::ErrorCode::NotAllowed
                }
            )
        })
        .await;
    assert_eq!(relay.inspector.observatory_len(), 0);

    let r = record.clone();
    operator.act(move |c| c.close_case(session, r).expect("close after the end"));
    until_census(&relay, "record filed", |_| {
        relay.inspector.observatory_len() == 1
    })
    .await;
    // Only once.
    assert!(
        operator
            .query(move |c| c.close_case(session, record).is_err())
            .await
    );
    relay.stop().await;
}
