//! The cap of sessions per staff connection (16) counts every node: an operator logged in
//! on milan-1 takes sessions living on rome-1 and naples-1 and stops at 16 in all, even
//! when the last two accepts race towards two nodes at once, and a session on their own
//! node is refused too. The member's own node counts (`switchboard::abroad`); counted per
//! node, they could have taken 16 on each.

use approdo_core::client::Event;
use approdo_core::identity::Role;
use approdo_core::wire::ErrorCode;
use approdo_tests::nodes::three_nodes;
use approdo_tests::*;

const BINARY: &str = env!("CARGO_BIN_EXE_relay-under-test");
const CAP: usize = 16;

#[tokio::test]
async fn an_operator_holds_sixteen_sessions_in_all_across_nodes() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_nats, rome, milan, naples) = three_nodes(BINARY, &org, dir.path(), 0.0).await;
    let cred = org.credential(Role::Operator, &["national"], &["en"]);
    let mut operator = staff_at(&milan.url, &org, cred).await;

    // 14 sessions, alternately on rome-1 and naples-1.
    let mut people = Vec::new();
    for i in 0..CAP - 2 {
        let url = if i % 2 == 0 { &rome.url } else { &naples.url };
        let (person, session) = person_at(url, &org, "en").await;
        accept(&mut operator, session).await;
        people.push(person);
    }

    // Three more, one on each other node and one more on rome-1, all in the queue; the
    // operator sends the three accepts at once: two fit, the third is refused.
    let mut racing = Vec::new();
    for url in [&rome.url, &naples.url, &rome.url] {
        let (person, session) = person_at(url, &org, "en").await;
        people.push(person);
        racing.push(session);
    }
    for session in &racing {
        let session = *session;
        operator
            .seen_or_wait_for("the session in the queue", |e| {
                matches!(e, Event::Queue { entries, .. } if entries.iter().any(|q| q.session == session))
            })
            .await;
    }
    let all = racing.clone();
    operator.act(move |c| {
        for session in all {
            c.accept(session).expect("accept");
        }
    });
    // Two joined and one refused, in whatever order they come.
    let (mut joined, mut refused) = (0, 0);
    let watched = racing.clone();
    operator
        .wait_for("two joined, one refused", |e| {
            match e {
                Event::Joined { session } if watched.contains(session) => joined += 1,
                Event::RelayError { code } if *code == ErrorCode::NotAllowed => refused += 1,
                _ => {}
            }
            joined == 2 && refused == 1
        })
        .await;
    // Time for a wrongly admitted third to show (checked below, once more events are
    // read).
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;

    // At 16, a session on the operator's own node is refused as well.
    let (_local, local) = person_at(&milan.url, &org, "en").await;
    operator
        .seen_or_wait_for("the local session in the queue", |e| {
            matches!(e, Event::Queue { entries, .. } if entries.iter().any(|q| q.session == local))
        })
        .await;
    let errors = |op: &Actor| {
        op.history
            .iter()
            .filter(|e| matches!(e, Event::RelayError { code } if *code == ErrorCode::NotAllowed))
            .count()
    };
    let before = errors(&operator);
    operator.act(move |c| c.accept(local).expect("accept"));
    operator
        .wait_for(
            "the local accept refused",
            |e| matches!(e, Event::RelayError { code } if *code == ErrorCode::NotAllowed),
        )
        .await;
    assert_eq!(errors(&operator), before + 1);
    assert!(!operator.saw(|e| matches!(e, Event::Joined { session } if *session == local)));
    let joined = racing
        .iter()
        .filter(|s| operator.saw(|e| matches!(e, Event::Joined { session } if session == *s)))
        .count();
    assert_eq!(joined, 2, "16 in all: two of the three racing accepts");
    assert_eq!(before, 1, "one racing accept refused");
}
