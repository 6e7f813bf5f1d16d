//! An operator transfers a case to a regional desk with a handover note: the session goes
//! to that desk's queue, a regional operator accepts, receives the note end-to-end from
//! the first operator (who then leaves), and carries on the conversation with the person.

use approdo_core::client::Event;
use approdo_core::identity::Role;
use approdo_tests::*;

#[tokio::test]
async fn transfer_to_a_regional_desk_hands_over_the_note() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut national = staff(
        &relay,
        &org,
        org.credential(Role::Operator, &["national"], &["en"]),
    )
    .await;
    let mut tuscan = staff(
        &relay,
        &org,
        org.credential(Role::Operator, &["toscana"], &["en"]),
    )
    .await;
    let (mut person, session) = person(&relay, &org, "en").await;
    accept(&mut national, session).await;
    let national_id = verified(&mut person, Some(Role::Operator)).await;
    verified(&mut national, None).await;
    say(&person, session, "I work on a farm near Grosseto");
    assert_eq!(
        message(&mut national).await.1,
        "I work on a farm near Grosseto"
    );

    let note = "Agricultural exploitation, Grosseto area; speaks English; safe to call after 18:00";
    national.act(move |c| c.transfer(session, tag("toscana"), note).expect("transfer"));
    accept(&mut tuscan, session).await;
    let Event::HandoverNote {
        from, desk, body, ..
    } = tuscan
        .wait_for("handover note", |e| matches!(e, Event::HandoverNote { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(
        (from, desk.as_str(), body.as_str()),
        (national_id, "toscana", note)
    );

    // The first operator leaves; the person sees it and talks on with the regional one.
    let Event::PeerLeft { peer, .. } = person
        .wait_for("first operator left", |e| {
            matches!(e, Event::PeerLeft { .. })
        })
        .await
    else {
        unreachable!()
    };
    assert_eq!(peer, national_id);
    // The person verified the regional operator (possibly before the first one left).
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
    assert!(
        !person.saw(|e| matches!(e, Event::HandoverNote { .. })),
        "the note is for staff only"
    );
    relay.stop().await;
}
