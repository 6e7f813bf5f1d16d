//! The waiting time a person is shown comes only from waits the relay observed: before any
//! session was accepted at a desk it says nothing (`wait_secs = 0`), never a built-in guess;
//! after an accept, an estimate.

use approdo_core::client::Event;
use approdo_core::identity::Role;
use approdo_tests::*;

async fn next_wait(a: &mut Actor) -> u32 {
    let Event::QueueStatus { wait_secs, .. } = a
        .wait_for("queue status", |e| matches!(e, Event::QueueStatus { .. }))
        .await
    else {
        unreachable!()
    };
    wait_secs
}

#[tokio::test]
async fn no_estimate_until_an_accept_was_observed() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut operator = staff(
        &relay,
        &org,
        org.credential(Role::Operator, &["national"], &["en"]),
    )
    .await;
    let (mut first, session) = person(&relay, &org, "en").await;
    assert_eq!(
        next_wait(&mut first).await,
        0,
        "an operator is online but nothing was observed: no estimate"
    );
    let (mut second, _) = person(&relay, &org, "en").await;
    assert_eq!(next_wait(&mut second).await, 0);

    accept(&mut operator, session).await;
    // The second person moves up and now gets an estimate from the observed wait.
    loop {
        if next_wait(&mut second).await > 0 {
            break;
        }
    }
    relay.stop().await;
}
