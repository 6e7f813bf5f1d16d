//! A person and an operator chat both ways through the real relay, end-to-end encrypted,
//! and both see the same safety code.

use approdo_core::identity::Role;
use approdo_tests::*;

#[tokio::test]
async fn person_and_operator_chat_both_ways() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut operator = staff(
        &relay,
        &org,
        org.credential(Role::Operator, &["national"], &["en", "it"]),
    )
    .await;
    let (mut person, session) = person(&relay, &org, "en").await;

    // Written while waiting in the queue: delivered once a verified operator is there.
    say(&person, session, "hello, is anyone there?");

    accept(&mut operator, session).await;
    let op_id = verified(&mut person, Some(Role::Operator)).await;
    let person_id = verified(&mut operator, None).await;

    let (from, text, private) = message(&mut operator).await;
    assert_eq!(
        (from, text.as_str(), private),
        (person_id, "hello, is anyone there?", false)
    );

    say(&operator, session, "yes, I am here. You are safe to write.");
    let (from, text, _) = message(&mut person).await;
    assert_eq!(
        (from, text.as_str()),
        (op_id, "yes, I am here. You are safe to write.")
    );

    say(&person, session, "thank you");
    assert_eq!(message(&mut operator).await.1, "thank you");

    let a = safety_code(&person, session).await;
    let b = safety_code(&operator, session).await;
    assert_eq!(a, b, "both ends compute the same safety code");
    relay.stop().await;
}
