//! A call across nodes goes straight to the SFU of the node holding the session: the
//! person is on rome-1, the operator on milan-1; both join the call, the operator's
//! `CallJoin` is carried to rome-1, whose SFU answers (with its own candidate), and media
//! flows between them through rome-1 only. milan-1 runs no call.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use approdo_core::identity::Role;
use approdo_tests::media::join_call;
use approdo_tests::nodes::two_nodes;
use approdo_tests::*;

const BINARY: &str = env!("CARGO_BIN_EXE_relay-under-test");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_an_operator_on_another_node_runs_on_the_session_node_sfu() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_nats, rome, milan) = two_nodes(BINARY, &org, dir.path(), 0.1).await;
    let cred = org.credential(Role::Operator, &["national"], &["en"]);
    let mut operator = staff_at(&milan.url, &org, cred).await;
    let (mut person, session) = person_at(&rome.url, &org, "en").await;
    accept(&mut operator, session).await;
    verified(&mut person, Some(Role::Operator)).await;
    verified(&mut operator, None).await;

    let mut person_call = join_call(&mut person, session).await;
    let operator_call = join_call(&mut operator, session).await;
    let sdp = operator_call.remote_sdp().await.expect("answer applied");
    assert!(
        sdp.lines().any(|l| l.starts_with("a=candidate:")),
        "the answer carries the SFU's candidate"
    );

    let deadline = Instant::now() + WAIT;
    while operator_call.received.video.load(Ordering::Relaxed) < 20
        || operator_call.received.audio.load(Ordering::Relaxed) < 20
    {
        assert!(Instant::now() < deadline, "media did not arrive");
        person_call.send(true, 600).await.expect("send video");
        person_call.send(false, 120).await.expect("send audio");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(rome.gauge("approdo_calls"), Some(1));
    assert_eq!(rome.gauge("approdo_call_participants"), Some(2));
    assert_eq!(milan.gauge("approdo_calls"), Some(0));
    say(&person, session, "during the call");
    assert_eq!(message(&mut operator).await.1, "during the call");
    person_call.close().await;
    operator_call.close().await;
}
