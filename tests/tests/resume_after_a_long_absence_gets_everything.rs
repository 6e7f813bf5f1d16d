//! A person who comes back after a long absence gets everything written meanwhile, once and
//! in order, even when that is more than the relay's outbox for one connection holds: the
//! relay hands the replay out as acknowledgements come back, instead of cutting off the
//! connection it is resuming (which then resumed again and was cut again, for ever).

use approdo_core::client::Event;
use approdo_tests::*;

/// More than one connection's outbox of frames (1024) at once.
const WRITTEN_WHILE_AWAY: usize = 1200;
/// Written in bursts this large, a second apart: within the operator's byte budget.
const BURST: usize = 100;

#[tokio::test]
async fn a_long_replay_arrives_whole() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let Conversation {
        mut person,
        operator,
        session,
    } = Conversation::open(&relay, &org, "en").await;

    drop_until_away(&relay, &person, 1).await;
    for i in 1..=WRITTEN_WHILE_AWAY {
        say(&operator, session, &format!("line {i}"));
        if i % BURST == 0 {
            until_census(&relay, "a burst kept", |c| c.stored_records >= i).await;
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
    until_census(&relay, "everything kept for the person", |c| {
        c.stored_records >= WRITTEN_WHILE_AWAY
    })
    .await;
    person.reconnect();
    person
        .wait_for("resumed", |e| matches!(e, Event::Resumed { .. }))
        .await;
    for i in 1..=WRITTEN_WHILE_AWAY {
        assert_eq!(message(&mut person).await.1, format!("line {i}"));
    }
    let resumes = person
        .history
        .iter()
        .filter(|e| matches!(e, Event::Resumed { .. }))
        .count();
    assert_eq!(resumes, 1, "one resume, not a cycle of cut and resume");
    relay.stop().await;
}
