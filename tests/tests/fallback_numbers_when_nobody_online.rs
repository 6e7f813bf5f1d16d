//! A person who arrives when nobody is online gets the configured phone numbers with their
//! queue position; once an operator is online the fallback disappears, and the position
//! counts the people ahead.

use approdo_core::client::Event;
use approdo_core::identity::Role;
use approdo_tests::*;

async fn next_status(a: &mut Actor) -> (u32, u32, Vec<String>) {
    let Event::QueueStatus {
        position,
        wait_secs,
        fallback,
        ..
    } = a
        .wait_for("queue status", |e| matches!(e, Event::QueueStatus { .. }))
        .await
    else {
        unreachable!()
    };
    (position, wait_secs, fallback)
}

#[tokio::test]
async fn fallback_numbers_then_queue_position() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let (mut first, _) = person(&relay, &org, "en").await;
    let (position, _, fallback) = next_status(&mut first).await;
    assert_eq!(position, 1);
    assert_eq!(
        fallback,
        vec!["800 290 290".to_owned()],
        "nobody online: call the free number"
    );

    // A Tuscan region adds the regional number to the national one.
    let mut client = approdo_core::client::Client::person(org.key.public());
    client
        .open_session(tag("it"), Some(tag("toscana")))
        .expect("open");
    let mut tuscan = Actor::spawn(
        approdo_client::Driver::connect(&relay.url(), client)
            .await
            .expect("connect"),
    );
    let (_, _, fallback) = next_status(&mut tuscan).await;
    assert_eq!(
        fallback,
        vec!["800 186 086".to_owned(), "800 290 290".to_owned()]
    );

    // An operator who speaks English comes online: the English queue needs no fallback,
    // and a second English speaker is number 2.
    let _operator = staff(
        &relay,
        &org,
        org.credential(Role::Operator, &["national"], &["en"]),
    )
    .await;
    let (mut second, _) = person(&relay, &org, "en").await;
    let (position, wait, fallback) = next_status(&mut second).await;
    assert_eq!((position, fallback.is_empty()), (2, true));
    assert_eq!(
        wait, 0,
        "no accept observed yet: no estimate, never a guess"
    );
    loop {
        let (position, _, fallback) = next_status(&mut first).await;
        if fallback.is_empty() {
            assert_eq!(position, 1);
            break;
        }
    }
    relay.stop().await;
}
