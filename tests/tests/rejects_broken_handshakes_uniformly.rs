//! A broken handshake (garbage, or a valid Noise message for another session) is refused
//! by the staff client with one and the same answer, whatever was wrong, and the session
//! of everybody else carries on.

use approdo_core::PROTOCOL_VERSION;
use approdo_core::identity::Role;
use approdo_core::ids::{ParticipantId, SessionId, Tag};
use approdo_core::noise::{Handshake, HandshakeKind, prologue};
use approdo_core::wire::{ClientFrame, Envelope, Payload, RelayFrame, SessionEvent};
use approdo_tests::*;

/// Open a session on a raw connection, have `operator` accept it, then send `msg` as the
/// first handshake message; return what the operator's client answered.
async fn answer_to(relay: &TestRelay, operator: &mut Actor, msg: Vec<u8>) -> Payload {
    let mut raw = RawConn::open(relay).await;
    raw.send(&ClientFrame::OpenSession {
        version: PROTOCOL_VERSION,
        language: Tag::new("en").expect("tag"),
        region: None,
    })
    .await;
    let session = loop {
        if let Some(RelayFrame::SessionOpened { session, .. }) = raw.recv().await {
            break session;
        }
    };
    accept(operator, session).await;
    let op_id = loop {
        if let Some(RelayFrame::Event {
            event: SessionEvent::Arrived { id, .. },
            ..
        }) = raw.recv().await
        {
            break id;
        }
    };
    raw.send(&ClientFrame::Send {
        session,
        seq: 1,
        envelopes: vec![Envelope {
            to: op_id,
            payload: Payload::Handshake(msg),
        }],
    })
    .await;
    loop {
        match raw.recv().await {
            Some(RelayFrame::Event {
                event: SessionEvent::Message { payload, .. },
                ..
            }) => return payload,
            Some(_) => continue,
            None => panic!("relay closed the connection"),
        }
    }
}

#[tokio::test]
async fn every_invalid_handshake_gets_the_same_answer() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut others = Conversation::open(&relay, &org, "en").await;
    let mut operator = staff(
        &relay,
        &org,
        org.credential(Role::Operator, &["national"], &["en"]),
    )
    .await;

    let garbage = answer_to(&relay, &mut operator, b"definitely not noise".to_vec()).await;

    // A well-formed first message, but bound to another session's prologue.
    let mut hs = Handshake::new(
        HandshakeKind::PersonInitiator,
        &prologue(&SessionId([9; 16]), ParticipantId(1), ParticipantId(2)),
        None,
    )
    .expect("handshake");
    let wrong_session = answer_to(&relay, &mut operator, hs.write().expect("msg1")).await;
    // NX's first message is not authenticated, so the mismatch shows when the person reads
    // message 2; an unrelated message of the wrong length is refused at once.
    let truncated = answer_to(&relay, &mut operator, vec![0u8; 31]).await;

    assert_eq!(garbage, Payload::HandshakeRefused);
    assert_eq!(truncated, Payload::HandshakeRefused);
    assert!(
        matches!(wrong_session, Payload::Handshake(_)),
        "a valid-looking message 1 gets message 2, which the sender cannot read"
    );

    others.still_talking("after broken handshakes").await;
    relay.stop().await;
}
