//! One queue for the whole hotline: a person waiting on one node appears in the queue view
//! of an operator logged in on another, and goes from it when accepted or gone; the
//! person's "who can answer" counts the operators online on every node. Each node
//! publishes snapshots of its queue and staff (`bus::lobby`); with a tenth of bus messages
//! dropped the views still converge, as every snapshot is whole and a newer one replaces
//! a lost one.

use approdo_core::client::Event;
use approdo_core::identity::Role;
use approdo_core::ids::SessionId;
use approdo_core::wire::Outlook;
use approdo_tests::nodes::two_nodes;
use approdo_tests::*;

const BINARY: &str = env!("CARGO_BIN_EXE_relay-under-test");

fn lists(e: &Event, session: SessionId) -> Option<bool> {
    match e {
        Event::Queue { entries, .. } => Some(entries.iter().any(|q| q.session == session)),
        _ => None,
    }
}

#[tokio::test]
async fn a_person_waiting_on_one_node_is_in_the_queue_of_an_operator_on_another() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_nats, rome, milan) = two_nodes(BINARY, &org, dir.path(), 0.1).await;

    // The only operator is on milan-1; the people reach rome-1.
    let cred = org.credential(Role::Operator, &["national"], &["en"]);
    let mut remote_operator = staff_at(&milan.url, &org, cred).await;
    let (mut first, first_session) = person_at(&rome.url, &org, "en").await;
    let (second, second_session) = person_at(&rome.url, &org, "en").await;

    // rome-1 counts milan-1's operator: someone who speaks English can answer.
    first
        .seen_or_wait_for("an operator counted on another node", |e| {
            matches!(
                e,
                Event::QueueStatus {
                    outlook: Outlook::Speaker,
                    ..
                }
            )
        })
        .await;
    // Both show in milan-1's queue, oldest first.
    let view = remote_operator
        .wait_for("both people from rome-1", |e| {
            lists(e, first_session) == Some(true) && lists(e, second_session) == Some(true)
        })
        .await;
    let Event::Queue { entries, total } = view else {
        unreachable!()
    };
    assert_eq!(total, 2);
    assert_eq!(entries[0].session, first_session, "oldest first");
    assert!(
        entries
            .iter()
            .all(|e| e.language.as_str() == "en" && !e.away)
    );

    // The second person gives up: gone from milan-1's view.
    second.act(move |c| c.end(second_session).expect("end"));
    remote_operator
        .wait_for("the second person gone", |e| {
            lists(e, second_session) == Some(false) && lists(e, first_session) == Some(true)
        })
        .await;

    // An operator on rome-1 takes the first: gone from milan-1's view too.
    let local = org.credential(Role::Operator, &["national"], &["en"]);
    let mut local_operator = staff_at(&rome.url, &org, local).await;
    accept(&mut local_operator, first_session).await;
    remote_operator
        .wait_for(
            "the first person taken",
            |e| matches!(e, Event::Queue { entries, total: 0 } if entries.is_empty()),
        )
        .await;
}
