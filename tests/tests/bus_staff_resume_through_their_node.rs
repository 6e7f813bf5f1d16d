//! A staff member on another node comes back after a drop: the operator, logged in on
//! milan-1, holds a session living on rome-1, loses the connection, and logs in again on
//! milan-1. Their `Resume` names a seat milan-1 does not hold; milan-1 asks the bus which
//! node holds it and carries it there. What the person wrote meanwhile arrives once and in
//! order, and the conversation goes on both ways. With a tenth of bus messages dropped.

use approdo_core::client::Event;
use approdo_tests::nodes::two_nodes;
use approdo_tests::*;

const BINARY: &str = env!("CARGO_BIN_EXE_relay-under-test");

#[tokio::test]
async fn an_operator_on_another_node_resumes_a_session_after_a_drop() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_nats, mut rome, milan) = two_nodes(BINARY, &org, dir.path(), 0.1).await;
    let (mut operator, mut person, session) =
        accepted_pair(&org, &milan.url, &rome.url, "en").await;
    say(&person, session, "before");
    assert_eq!(message(&mut operator).await.1, "before");

    operator.drop_connection();
    rome.until("approdo_participants_away", 1).await;
    for text in ["while away 1", "while away 2", "while away 3"] {
        say(&person, session, text);
    }
    operator.reconnect();
    for text in ["while away 1", "while away 2", "while away 3"] {
        assert_eq!(message(&mut operator).await.1, text);
    }
    rome.until("approdo_participants_away", 0).await;
    say(&operator, session, "back");
    assert_eq!(message(&mut person).await.1, "back");
    say(&person, session, "good");
    assert_eq!(message(&mut operator).await.1, "good");
    let texts: Vec<String> = operator
        .history
        .iter()
        .filter_map(|e| match e {
            Event::Message { body, .. } => Some(body.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        [
            "before",
            "while away 1",
            "while away 2",
            "while away 3",
            "good"
        ]
    );
}
