//! A transfer across nodes: the person waits on rome-1, a national operator on milan-1
//! takes the case and transfers it to the Tuscan desk, whose operator is logged in on
//! naples-1. The session goes back to the queue on rome-1 (its home), shows in naples-1's
//! view, the Tuscan operator takes it, gets the handover note end to end, the first
//! operator leaves, and the person talks on with the new one. With a tenth of bus
//! messages dropped.

use approdo_core::client::Event;
use approdo_core::identity::Role;
use approdo_tests::nodes::three_nodes;
use approdo_tests::*;

const BINARY: &str = env!("CARGO_BIN_EXE_relay-under-test");

#[tokio::test]
async fn an_operator_on_one_node_transfers_to_a_desk_whose_operator_is_on_another() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_nats, rome, milan, naples) = three_nodes(BINARY, &org, dir.path(), 0.1).await;
    let national_cred = org.credential(Role::Operator, &["national"], &["en"]);
    let mut national = staff_at(&milan.url, &org, national_cred).await;
    let tuscan_cred = org.credential(Role::Operator, &["toscana"], &["en"]);
    let mut tuscan = staff_at(&naples.url, &org, tuscan_cred).await;
    let (mut person, session) = person_at(&rome.url, &org, "en").await;

    accept(&mut national, session).await;
    let national_id = verified(&mut person, Some(Role::Operator)).await;
    verified(&mut national, None).await;
    say(&person, session, "I work on a farm near Grosseto");
    assert_eq!(
        message(&mut national).await.1,
        "I work on a farm near Grosseto"
    );

    let note = "Agricultural exploitation, Grosseto area; safe to call after 18:00";
    national.act(move |c| c.transfer(session, tag("toscana"), note).expect("transfer"));
    accept(&mut tuscan, session).await;
    let Event::HandoverNote { from, body, .. } = tuscan
        .wait_for("handover note", |e| matches!(e, Event::HandoverNote { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!((from, body.as_str()), (national_id, note));
    person
        .wait_for(
            "first operator left",
            |e| matches!(e, Event::PeerLeft { peer, .. } if *peer == national_id),
        )
        .await;
    person
        .seen_or_wait_for("regional operator verified", |e| {
            matches!(e, Event::PeerVerified { peer, role: Some(Role::Operator), .. } if *peer != national_id)
        })
        .await;
    say(&tuscan, session, "Buonasera, sono della rete toscana");
    assert_eq!(
        message(&mut person).await.1,
        "Buonasera, sono della rete toscana"
    );
    say(&person, session, "grazie");
    assert_eq!(message(&mut tuscan).await.1, "grazie");
    assert_eq!(rome.gauge("approdo_sessions_running"), Some(1));
}
