//! An operator busy with a conversation on their own node keeps a quiet one on another
//! node: the session on rome-1 says nothing for longer than the relay's idle timeout (75 s)
//! while the operator, logged in on milan-1, talks with a person on milan-1 (so their
//! client never needs to ping). milan-1 keeps its connection to rome-1 alive itself; rome-1
//! never takes the operator for gone, and the quiet conversation goes on afterwards.

use std::time::{Duration, Instant};

use approdo_core::identity::Role;
use approdo_tests::nodes::two_nodes;
use approdo_tests::*;

const BINARY: &str = env!("CARGO_BIN_EXE_relay-under-test");

#[tokio::test]
async fn a_quiet_session_on_another_node_is_not_dropped_while_the_operator_talks_here() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_nats, rome, milan) = two_nodes(BINARY, &org, dir.path(), 0.0).await;
    let cred = org.credential(Role::Operator, &["national"], &["en"]);
    let mut operator = staff_at(&milan.url, &org, cred).await;
    let (mut quiet, quiet_session) = person_at(&rome.url, &org, "en").await;
    accept(&mut operator, quiet_session).await;
    verified(&mut quiet, Some(Role::Operator)).await;
    let (mut busy, busy_session) = person_at(&milan.url, &org, "en").await;
    accept(&mut operator, busy_session).await;
    verified(&mut busy, Some(Role::Operator)).await;

    // Past the idle timeout, the operator reads something every 4 s, all from milan-1.
    // The quiet person's page only pings rome-1 (as it does while nobody writes; these
    // test clients do not on their own), which the operator never sees.
    let until = Instant::now() + Duration::from_secs(85);
    let mut i = 0;
    while Instant::now() < until {
        quiet.act(|c| c.ping());
        say(&busy, busy_session, &format!("busy {i}"));
        assert_eq!(message(&mut operator).await.1, format!("busy {i}"));
        i += 1;
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    assert_eq!(rome.gauge("approdo_participants_away"), Some(0));
    say(&quiet, quiet_session, "still there?");
    assert_eq!(message(&mut operator).await.1, "still there?");
    say(&operator, quiet_session, "yes");
    assert_eq!(message(&mut quiet).await.1, "yes");
}
