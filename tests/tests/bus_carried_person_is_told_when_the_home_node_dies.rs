//! When the node holding a session dies, a person whose connection another node carried
//! there is not left hanging: the carrying node closes the connection once it notices the
//! loss, and the person's resume then fails as for any ended session (the page says the
//! conversation has ended and nothing is kept). Conversations living on the node that
//! carried it go on untouched.

use approdo_core::client::Event;
use approdo_core::identity::Role;
use approdo_core::wire::ErrorCode;
use approdo_tests::nodes::{Node, carried_conversation, two_nodes};
use approdo_tests::*;

const BINARY: &str = env!("CARGO_BIN_EXE_relay-under-test");

#[tokio::test]
async fn the_home_node_dies_and_the_carried_person_is_told_while_others_go_on() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_nats, mut rome, mut milan) = two_nodes(BINARY, &org, dir.path(), 0.0).await;

    // A conversation on rome-1, whose person comes back through milan-1.
    let (operator, mut person, session) = carried_conversation(&org, &mut rome, &milan).await;
    say(&operator, session, "through milan");
    assert_eq!(message(&mut person).await.1, "through milan");

    // And one living on milan-1.
    let cred = org.credential(Role::Operator, &["national"], &["en"]);
    let mut local_operator = staff_at(&milan.url, &org, cred).await;
    let (mut local_person, local_session) = person_at(&milan.url, &org, "en").await;
    accept(&mut local_operator, local_session).await;
    verified(&mut local_person, Some(Role::Operator)).await;
    let websockets = |n: &Node| n.sample("approdo_connections_open", &[("transport", "websocket")]);
    assert_eq!(websockets(&milan), Some(3));

    rome.kill();
    milan.until("approdo_bus_nodes_alive", 0).await;
    // milan-1 closed the carried connection, and only that one.
    let deadline = std::time::Instant::now() + approdo_tests::nodes::NODE_WAIT;
    while websockets(&milan) != Some(2) {
        assert!(
            std::time::Instant::now() < deadline,
            "the carried connection stays open"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    person.reconnect_to(&milan.url);
    person
        .wait_for(
            "resume failed",
            |e| matches!(e, Event::RelayError { code } if *code == ErrorCode::ResumeFailed),
        )
        .await;

    say(&local_person, local_session, "still talking on milan");
    assert_eq!(
        message(&mut local_operator).await.1,
        "still talking on milan"
    );
    say(&local_operator, local_session, "yes");
    assert_eq!(message(&mut local_person).await.1, "yes");
}
