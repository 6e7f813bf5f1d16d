//! NATS core delivers at most once. With both nodes dropping a tenth of what they send for
//! a carried connection, a conversation whose person is carried from one node to the other
//! still delivers every message exactly once and in order, both ways: the nodes number,
//! acknowledge and resend what they carry (`bus::carrier`).

use approdo_core::client::Event;
use approdo_tests::nodes::{carried_conversation, two_nodes};
use approdo_tests::*;

const BINARY: &str = env!("CARGO_BIN_EXE_relay-under-test");
const EACH_WAY: usize = 40;

fn texts(actor: &Actor) -> Vec<String> {
    actor
        .history
        .iter()
        .filter_map(|e| match e {
            Event::Message { body, .. } => Some(body.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn with_a_tenth_of_bus_messages_dropped_every_message_arrives_once_in_order() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_nats, mut rome, milan) = two_nodes(BINARY, &org, dir.path(), 0.1).await;
    let (mut operator, mut person, session) = carried_conversation(&org, &mut rome, &milan).await;

    let from_person: Vec<String> = (0..EACH_WAY).map(|i| format!("person {i}")).collect();
    let from_operator: Vec<String> = (0..EACH_WAY).map(|i| format!("operator {i}")).collect();
    for (p, o) in from_person.iter().zip(&from_operator) {
        say(&person, session, p);
        say(&operator, session, o);
    }
    for _ in 0..EACH_WAY {
        message(&mut operator).await;
        message(&mut person).await;
    }
    // Whatever is still being resent has time to arrive; a last message each way then
    // brings everything before it into view (a duplicate would be there).
    tokio::time::sleep(approdo_relay::bus::carrier::RESEND_AFTER * 4).await;
    say(&person, session, "last");
    say(&operator, session, "last");
    operator
        .wait_for(
            "the last",
            |e| matches!(e, Event::Message { body, .. } if body.as_str() == "last"),
        )
        .await;
    person
        .wait_for(
            "the last",
            |e| matches!(e, Event::Message { body, .. } if body.as_str() == "last"),
        )
        .await;
    let with_last = |v: &[String]| [v, &["last".to_owned()]].concat();
    assert_eq!(texts(&operator), with_last(&from_person));
    assert_eq!(texts(&person), with_last(&from_operator));
}
