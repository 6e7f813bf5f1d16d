//! A participant whose connection drops resumes with its token and gets every message
//! exactly once, in order; what it wrote while offline is delivered once too.

use approdo_core::client::Event;
use approdo_tests::*;

#[tokio::test]
async fn dropped_person_and_operator_resume_without_loss_or_duplicates() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let Conversation {
        mut person,
        mut operator,
        session,
    } = Conversation::open(&relay, &org, "en").await;

    for i in 1..=3 {
        say(&operator, session, &format!("before drop {i}"));
    }
    for i in 1..=3 {
        assert_eq!(message(&mut person).await.1, format!("before drop {i}"));
    }

    drop_until_away(&relay, &person, 1).await;
    for i in 1..=5 {
        say(&operator, session, &format!("while away {i}"));
    }
    // Written offline: held by the client until the relay confirms it.
    say(&person, session, "I lost the network");
    person.reconnect();
    person
        .wait_for("resumed", |e| matches!(e, Event::Resumed { .. }))
        .await;
    for i in 1..=5 {
        assert_eq!(message(&mut person).await.1, format!("while away {i}"));
    }
    assert_eq!(message(&mut operator).await.1, "I lost the network");

    // Now the operator drops and comes back (log in again, then resume).
    operator.drop_connection();
    until_census(&relay, "operator away", |c| c.away_participants == 1).await;
    say(&person, session, "are you still there?");
    operator.reconnect();
    operator
        .wait_for("resumed", |e| matches!(e, Event::Resumed { .. }))
        .await;
    assert_eq!(message(&mut operator).await.1, "are you still there?");
    say(&operator, session, "yes");
    assert_eq!(message(&mut person).await.1, "yes");

    let count = |a: &Actor, text: &str| {
        a.history
            .iter()
            .filter(|e| matches!(e, Event::Message { body, .. } if body.as_str() == text))
            .count()
    };
    for i in 1..=5 {
        assert_eq!(
            count(&person, &format!("while away {i}")),
            1,
            "exactly once"
        );
    }
    assert_eq!(count(&operator, "I lost the network"), 1);
    assert_eq!(count(&operator, "are you still there?"), 1);
    relay.stop().await;
}
