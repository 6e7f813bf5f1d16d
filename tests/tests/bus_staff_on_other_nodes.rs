//! Staff across nodes: a person waiting on rome-1 is accepted by an operator logged in on
//! milan-1, who invites an interpreter logged in on naples-1; all three talk, every message
//! once and in order, with a tenth of bus messages dropped. The session stays on rome-1
//! (its home); milan-1 and naples-1 each carry their member's frames there over the bus
//! and merge what comes back into the member's one connection (`server::visiting`).

use approdo_core::client::Event;
use approdo_core::identity::Role;
use approdo_tests::nodes::{Node, three_nodes};
use approdo_tests::*;

const BINARY: &str = env!("CARGO_BIN_EXE_relay-under-test");
const EACH: usize = 12;

fn texts(actor: &Actor) -> Vec<String> {
    actor
        .history
        .iter()
        .filter_map(|e| match e {
            Event::Message { body, .. } => Some(body.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn person_on_one_node_operator_on_another_interpreter_on_a_third_all_talk() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_nats, rome, milan, naples) = three_nodes(BINARY, &org, dir.path(), 0.1).await;

    let op_cred = org.credential(Role::Operator, &["national"], &["it", "en"]);
    let mut operator = staff_at(&milan.url, &org, op_cred).await;
    let int_cred = org.credential(Role::Interpreter, &["national"], &["ro"]);
    let mut interpreter = staff_at(&naples.url, &org, int_cred).await;
    let (mut person, session) = person_at(&rome.url, &org, "ro").await;

    // milan-1's operator sees rome-1's person and takes the session.
    accept(&mut operator, session).await;
    verified(&mut operator, None).await;
    verified(&mut person, Some(Role::Operator)).await;

    // The invitation reaches naples-1's interpreter, who joins.
    invite_and_join(&operator, &mut interpreter, session, "ro").await;
    interpreter
        .wait_for(
            "joined",
            |e| matches!(e, Event::Joined { session: s } if *s == session),
        )
        .await;
    verified(&mut interpreter, None).await;
    verified(&mut interpreter, Some(Role::Operator)).await;
    verified(&mut person, Some(Role::Interpreter)).await;
    verified(&mut operator, Some(Role::Interpreter)).await;

    // Everyone writes, interleaved; everyone reads the other two.
    let mut sent: Vec<(usize, String)> = Vec::new();
    for i in 0..EACH {
        for (who, actor) in [&person, &operator, &interpreter].into_iter().enumerate() {
            let text = format!("{who}:{i}");
            say(actor, session, &text);
            sent.push((who, text));
        }
    }
    let mut everyone = [&mut person, &mut operator, &mut interpreter];
    for actor in everyone.iter_mut() {
        for _ in 0..2 * EACH {
            message(actor).await;
        }
    }
    // Whatever is still being resent has time to arrive; a last word from each then
    // brings everything before it into view (a duplicate would be there).
    tokio::time::sleep(approdo_relay::bus::carrier::RESEND_AFTER * 4).await;
    for (who, actor) in everyone.iter().enumerate() {
        say(actor, session, &format!("last {who}"));
    }
    for (who, actor) in everyone.iter_mut().enumerate() {
        for from in (0..3).filter(|f| *f != who) {
            let last = format!("last {from}");
            actor
                .seen_or_wait_for(
                    "the last word",
                    |e| matches!(e, Event::Message { body, .. } if body.as_str() == last),
                )
                .await;
        }
        let got = texts(actor);
        for from in (0..3).filter(|f| *f != who) {
            let expected: Vec<&String> = sent
                .iter()
                .filter(|(w, _)| *w == from)
                .map(|(_, t)| t)
                .collect();
            let prefix = format!("{from}:");
            let seen: Vec<&String> = got.iter().filter(|t| t.starts_with(&prefix)).collect();
            assert_eq!(seen, expected, "{who} reads {from} once, in order");
        }
    }

    // The session lives on rome-1 only; the two staff members are carried there.
    let running = |n: &Node| n.gauge("approdo_sessions_running");
    assert_eq!(running(&rome), Some(1));
    assert_eq!(running(&milan), Some(0));
    assert_eq!(running(&naples), Some(0));
    assert_eq!(
        rome.sample("approdo_connections_open", &[("transport", "forwarded")]),
        Some(2)
    );
}
