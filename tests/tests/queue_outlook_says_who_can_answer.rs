//! A waiting person is told who can answer right now, in four cases: nobody online (the
//! phone numbers, no estimate); operators online but nobody speaking the language (an
//! operator can take the case and look for an interpreter: the numbers stay as an
//! alternative); an interpreter for the language online (an operator will answer with an
//! interpreter); an operator who speaks the language online.

use approdo_core::client::Event;
use approdo_core::identity::Role;
use approdo_core::wire::Outlook;
use approdo_tests::*;

/// The next queue status whose outlook is `want`, as (wait_secs, fallback numbers).
async fn until_outlook(a: &mut Actor, want: Outlook) -> (u32, Vec<String>) {
    let Event::QueueStatus {
        wait_secs,
        fallback,
        ..
    } = a
        .wait_for(
            "queue status with the expected outlook",
            |e| matches!(e, Event::QueueStatus { outlook, .. } if *outlook == want),
        )
        .await
    else {
        unreachable!()
    };
    (wait_secs, fallback)
}

#[tokio::test]
async fn the_outlook_follows_who_is_online() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let (mut arabic, _) = person(&relay, &org, "ar").await;

    let (wait, fallback) = until_outlook(&mut arabic, Outlook::NobodyOnline).await;
    assert!(!fallback.is_empty(), "nobody online: the phone numbers");
    assert_eq!(wait, 0, "nobody online: no estimate");

    // An operator who speaks Italian and English only: someone can still take the case.
    let _italian = staff(
        &relay,
        &org,
        org.credential(Role::Operator, &["national"], &["it", "en"]),
    )
    .await;
    let (_, fallback) = until_outlook(&mut arabic, Outlook::SeekingInterpreter).await;
    assert!(
        !fallback.is_empty(),
        "nobody speaks Arabic yet: the numbers stay as an alternative"
    );

    // An Arabic interpreter comes online: an operator will answer with an interpreter.
    let _interpreter = staff(
        &relay,
        &org,
        org.credential(Role::Interpreter, &["national"], &["ar"]),
    )
    .await;
    let (_, fallback) = until_outlook(&mut arabic, Outlook::WithInterpreter).await;
    assert!(fallback.is_empty(), "someone can answer in Arabic");

    // An operator who speaks Arabic comes online.
    let _arabic_operator = staff(
        &relay,
        &org,
        org.credential(Role::Operator, &["national"], &["ar"]),
    )
    .await;
    let (_, fallback) = until_outlook(&mut arabic, Outlook::Speaker).await;
    assert!(fallback.is_empty());
    relay.stop().await;
}

#[tokio::test]
async fn an_interpreter_alone_is_nobody_online() {
    // An interpreter cannot accept: without an operator the person still gets the numbers.
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let _interpreter = staff(
        &relay,
        &org,
        org.credential(Role::Interpreter, &["national"], &["ar"]),
    )
    .await;
    let (mut arabic, _) = person(&relay, &org, "ar").await;
    let (_, fallback) = until_outlook(&mut arabic, Outlook::NobodyOnline).await;
    assert!(!fallback.is_empty());
    relay.stop().await;
}
