//! Node loss with staff across nodes: rome-1 holds a session whose operator is logged in
//! on milan-1, and dies. The operator is told the session ended (milan-1 writes the
//! session's `Ended` once it notices the loss), the person's resume elsewhere fails as for
//! any ended session (the page says nothing was kept), and every other conversation goes
//! on: one living on naples-1 with the same operator on milan-1, and one living on milan-1.

use approdo_core::client::Event;
use approdo_core::identity::Role;
use approdo_core::wire::ErrorCode;
use approdo_tests::nodes::three_nodes;
use approdo_tests::*;

const BINARY: &str = env!("CARGO_BIN_EXE_relay-under-test");

#[tokio::test]
async fn the_session_node_dies_its_remote_operator_is_told_and_the_rest_goes_on() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_nats, rome, mut milan, _naples_guard) = three_nodes(BINARY, &org, dir.path(), 0.0).await;
    let naples_url = _naples_guard.url.clone();

    // One operator on milan-1 with a session on each node.
    let cred = org.credential(Role::Operator, &["national"], &["en"]);
    let mut operator = staff_at(&milan.url, &org, cred).await;
    let mut conversations = Vec::new();
    for url in [&rome.url, &naples_url, &milan.url] {
        let (mut person, session) = person_at(url, &org, "en").await;
        accept(&mut operator, session).await;
        verified(&mut person, Some(Role::Operator)).await;
        conversations.push((person, session));
    }
    let (mut lost_person, lost) = conversations.remove(0);
    say(&operator, lost, "before");
    assert_eq!(message(&mut lost_person).await.1, "before");

    rome.kill();
    milan.until("approdo_bus_nodes_alive", 1).await;
    operator
        .seen_or_wait_for(
            "the session on the dead node ended",
            |e| matches!(e, Event::SessionEnded { session } if *session == lost),
        )
        .await;

    // The person's phone tries another node: nothing is left of the session anywhere.
    lost_person.reconnect_to(&milan.url);
    lost_person
        .wait_for(
            "resume failed",
            |e| matches!(e, Event::RelayError { code } if *code == ErrorCode::ResumeFailed),
        )
        .await;

    // The others carry on, both ways.
    for (person, session) in &mut conversations {
        let session = *session;
        say(person, session, "still here?");
        let (_, text, _) = message(&mut operator).await;
        assert_eq!(text, "still here?");
        say(&operator, session, "yes");
        assert_eq!(message(person).await.1, "yes");
    }
    assert!(
        !operator.saw(|e| matches!(e, Event::SessionEnded { session } if *session != lost)),
        "only the lost node's session ended"
    );
}
