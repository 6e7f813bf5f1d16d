//! Three-party chat: the operator invites an interpreter, everyone reads everyone, the
//! interpreter can write privately to the operator, and all three safety codes match.

use approdo_core::identity::Role;
use approdo_tests::*;

#[tokio::test]
async fn person_operator_and_interpreter_read_each_other() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut operator = staff(
        &relay,
        &org,
        org.credential(Role::Operator, &["national"], &["it", "en"]),
    )
    .await;
    let mut interpreter = staff(
        &relay,
        &org,
        org.credential(Role::Interpreter, &["national"], &["ro"]),
    )
    .await;
    let (mut person, session) = person(&relay, &org, "ro").await;

    accept(&mut operator, session).await;
    verified(&mut operator, None).await;
    invite_and_join(&operator, &mut interpreter, session, "ro").await;
    verified(&mut interpreter, None).await;
    let op_id = verified(&mut interpreter, Some(Role::Operator)).await;
    let int_id = verified(&mut person, Some(Role::Interpreter)).await;
    verified(&mut operator, Some(Role::Interpreter)).await;

    say(&person, session, "Bună ziua, am nevoie de ajutor");
    assert_eq!(
        message(&mut operator).await.1,
        "Bună ziua, am nevoie de ajutor"
    );
    assert_eq!(
        message(&mut interpreter).await.1,
        "Bună ziua, am nevoie de ajutor"
    );

    say(&interpreter, session, "She says: good morning, I need help");
    let (from, text, _) = message(&mut operator).await;
    assert_eq!(
        (from, text.as_str()),
        (int_id, "She says: good morning, I need help")
    );
    assert_eq!(
        message(&mut person).await.1,
        "She says: good morning, I need help"
    );

    say(&operator, session, "Tell her we can help right now");
    assert_eq!(
        message(&mut person).await.1,
        "Tell her we can help right now"
    );
    assert_eq!(
        message(&mut interpreter).await.1,
        "Tell her we can help right now"
    );

    // A private note from the interpreter reaches the operator only.
    interpreter.act(move |c| {
        c.send_private(session, op_id, "she seems frightened")
            .expect("private")
    });
    let (from, text, private) = message(&mut operator).await;
    assert_eq!(
        (from, text.as_str(), private),
        (int_id, "she seems frightened", true)
    );
    say(&operator, session, "checkpoint");
    assert_eq!(
        message(&mut person).await.1,
        "checkpoint",
        "the private note never reached the person"
    );

    let p = safety_code(&person, session).await;
    let o = safety_code(&operator, session).await;
    let i = safety_code(&interpreter, session).await;
    assert_eq!(p, o);
    assert_eq!(o, i);
    relay.stop().await;
}
