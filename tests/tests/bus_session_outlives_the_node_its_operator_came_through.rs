//! The other way round from a lost session node: the node an operator was connected
//! through dies, not the session's. The session lives on rome-1; its operator was logged
//! in on milan-1, which is killed. rome-1 drops the connection milan-1 carried (the
//! operator is away, as after any drop); the person is not told anything ended, and the
//! operator, logging in again on rome-1, resumes and the conversation goes on.

use approdo_core::client::Event;
use approdo_tests::nodes::two_nodes;
use approdo_tests::*;

const BINARY: &str = env!("CARGO_BIN_EXE_relay-under-test");

#[tokio::test]
async fn the_operator_s_node_dies_and_the_session_waits_for_them_on_its_own_node() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_nats, mut rome, milan) = two_nodes(BINARY, &org, dir.path(), 0.0).await;
    let (mut operator, mut person, session) =
        accepted_pair(&org, &milan.url, &rome.url, "en").await;
    say(&person, session, "before");
    assert_eq!(message(&mut operator).await.1, "before");

    milan.kill();
    rome.until("approdo_bus_nodes_alive", 0).await;
    rome.until("approdo_participants_away", 1).await;
    say(&person, session, "are you there?");
    operator.reconnect_to(&rome.url);
    assert_eq!(message(&mut operator).await.1, "are you there?");
    say(&operator, session, "yes, back");
    assert_eq!(message(&mut person).await.1, "yes, back");
    assert!(
        !person.saw(|e| matches!(e, Event::SessionEnded { .. } | Event::PeerLeft { .. })),
        "nothing ended for the person"
    );
}
