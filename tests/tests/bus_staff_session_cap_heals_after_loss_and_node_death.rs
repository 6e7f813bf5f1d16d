//! The cross-node session count heals: with a tenth of bus messages dropped, an operator
//! on milan-1 holding 16 sessions (8 on rome-1, 8 on naples-1) is refused a 17th; when
//! naples-1 dies, its sessions stop counting (the operator is told they ended) and the
//! operator can take sessions again, up to 16 in all, and no more.

use approdo_core::client::Event;
use approdo_core::identity::Role;
use approdo_core::wire::ErrorCode;
use approdo_tests::nodes::three_nodes;
use approdo_tests::*;

const BINARY: &str = env!("CARGO_BIN_EXE_relay-under-test");

fn not_allowed(e: &Event) -> bool {
    matches!(e, Event::RelayError { code } if *code == ErrorCode::NotAllowed)
}

#[tokio::test]
async fn sessions_of_a_dead_node_stop_counting_against_the_cap() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_nats, rome, mut milan, naples) = three_nodes(BINARY, &org, dir.path(), 0.1).await;
    let cred = org.credential(Role::Operator, &["national"], &["en"]);
    let mut operator = staff_at(&milan.url, &org, cred).await;

    let mut people = Vec::new();
    let mut on_naples = Vec::new();
    for i in 0..16 {
        let url = if i % 2 == 0 { &rome.url } else { &naples.url };
        let (person, session) = person_at(url, &org, "en").await;
        accept(&mut operator, session).await;
        if i % 2 == 1 {
            on_naples.push(session);
        }
        people.push(person);
    }

    // A 17th, on rome-1, is refused.
    let (_waiting, extra) = person_at(&rome.url, &org, "en").await;
    operator
        .seen_or_wait_for("the 17th in the queue", |e| {
            matches!(e, Event::Queue { entries, .. } if entries.iter().any(|q| q.session == extra))
        })
        .await;
    operator.act(move |c| c.accept(extra).expect("accept"));
    operator.wait_for("the 17th refused", not_allowed).await;

    // naples-1 dies: its eight sessions end for the operator and stop counting.
    naples.kill();
    milan.until("approdo_bus_nodes_alive", 1).await;
    for session in on_naples {
        operator
            .seen_or_wait_for(
                "a session on the dead node ended",
                |e| matches!(e, Event::SessionEnded { session: s } if *s == session),
            )
            .await;
    }
    accept(&mut operator, extra).await;

    // Seven more fit (9 on rome-1, 7 new), and the cap holds again after them.
    for _ in 0..7 {
        let (person, session) = person_at(&rome.url, &org, "en").await;
        accept(&mut operator, session).await;
        people.push(person);
    }
    let (_last, last) = person_at(&rome.url, &org, "en").await;
    operator
        .seen_or_wait_for("one more in the queue", |e| {
            matches!(e, Event::Queue { entries, .. } if entries.iter().any(|q| q.session == last))
        })
        .await;
    let refused_before = operator.history.iter().filter(|e| not_allowed(e)).count();
    operator.act(move |c| c.accept(last).expect("accept"));
    operator.wait_for("one more refused", not_allowed).await;
    assert_eq!(
        operator.history.iter().filter(|e| not_allowed(e)).count(),
        refused_before + 1
    );
    assert!(!operator.saw(|e| matches!(e, Event::Joined { session } if *session == last)));
}
