//! A person's wait estimate uses the waits observed on every node: an operator logged in
//! on milan-1 takes a person waiting there (milan-1 observes the wait); a person who then
//! waits on rome-1, where nobody was ever accepted, is given an estimate from milan-1's
//! observation (carried in milan-1's queue snapshots), not "no estimate".

use approdo_core::client::Event;
use approdo_tests::nodes::two_nodes;
use approdo_tests::*;

const BINARY: &str = env!("CARGO_BIN_EXE_relay-under-test");

#[tokio::test]
async fn a_person_on_one_node_is_told_the_wait_observed_on_another() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_nats, rome, milan) = two_nodes(BINARY, &org, dir.path(), 0.1).await;

    // milan-1 observes one wait at the national desk (counted as at least 30 s).
    let (operator, _first, _) = accepted_pair(&org, &milan.url, &milan.url, "en").await;

    // A person waiting on rome-1: one operator online (on milan-1), first in the queue,
    // so the estimate is the hotline's average wait, 30 s.
    let (mut person, session) = person_at(&rome.url, &org, "en").await;
    let status = person
        .seen_or_wait_for("an estimate from milan-1's waits", |e| {
            matches!(e, Event::QueueStatus { session: s, wait_secs, .. } if *s == session && *wait_secs > 0)
        })
        .await;
    let Event::QueueStatus {
        position,
        wait_secs,
        ..
    } = status
    else {
        unreachable!()
    };
    assert_eq!((position, wait_secs), (1, 30));
    drop(operator);
}
