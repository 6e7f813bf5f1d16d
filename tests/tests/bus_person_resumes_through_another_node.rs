//! A person whose phone comes back through another node (DNS or a load balancer after a
//! network change) finds the conversation where it was. The session stays on the node it
//! opened on; the second node carries the connection there over the bus. What the operator
//! wrote meanwhile arrives once and in order, and the conversation goes on both ways.

use approdo_tests::nodes::{Node, two_nodes};
use approdo_tests::*;

const BINARY: &str = env!("CARGO_BIN_EXE_relay-under-test");

#[tokio::test]
async fn a_person_resumes_through_another_node_and_nothing_is_lost_or_repeated() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_nats, mut rome, milan) = two_nodes(BINARY, &org, dir.path(), 0.0).await;

    let (mut operator, mut person, session) = accepted_pair(&org, &rome.url, &rome.url, "en").await;
    say(&person, session, "before");
    assert_eq!(message(&mut operator).await.1, "before");

    // The person's network goes; the operator keeps writing.
    person.drop_connection();
    rome.until("approdo_participants_away", 1).await;
    for text in ["while away 1", "while away 2", "while away 3"] {
        say(&operator, session, text);
    }

    // The phone comes back through milan-1.
    person.reconnect_to(&milan.url);
    for text in ["while away 1", "while away 2", "while away 3"] {
        assert_eq!(message(&mut person).await.1, text);
    }
    rome.until("approdo_participants_away", 0).await;
    say(&person, session, "after, through milan");
    assert_eq!(message(&mut operator).await.1, "after, through milan");
    say(&operator, session, "still here");
    assert_eq!(message(&mut person).await.1, "still here");

    // The session stayed on rome-1; milan-1 only carries the person's connection.
    let open = |node: &Node, transport: &str| {
        node.sample("approdo_connections_open", &[("transport", transport)])
    };
    assert_eq!(open(&milan, "websocket"), Some(1), "the person's phone");
    assert_eq!(open(&rome, "forwarded"), Some(1), "carried from milan-1");
    assert_eq!(milan.gauge("approdo_sessions_running"), Some(0));
    assert_eq!(rome.gauge("approdo_sessions_running"), Some(1));

    // Nothing arrived twice.
    let texts: Vec<String> = person
        .history
        .iter()
        .filter_map(|e| match e {
            approdo_core::client::Event::Message { body, .. } => Some(body.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        ["while away 1", "while away 2", "while away 3", "still here"]
    );
}
