//! Every resume rotates the token: right after `Resumed` the relay sends `NewToken`, and
//! the token just used no longer resumes anything. A client that drops twice resumes twice
//! (its core keeps the new token).

use approdo_core::PROTOCOL_VERSION;
use approdo_core::client::Event;
use approdo_core::wire::{ClientFrame, ErrorCode, RelayFrame};
use approdo_tests::*;

#[tokio::test]
async fn a_used_token_fails_and_the_new_one_works() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut first = RawConn::open(&relay).await;
    first
        .send(&ClientFrame::OpenSession {
            version: PROTOCOL_VERSION,
            language: tag("en"),
            region: None,
        })
        .await;
    let (session, old) = loop {
        match first.recv().await {
            Some(RelayFrame::SessionOpened { session, token, .. }) => break (session, token),
            Some(_) => {}
            None => panic!("closed before the session opened"),
        }
    };
    drop(first);
    until_census(&relay, "person away", |c| c.away_participants == 1).await;

    let mut second = RawConn::open(&relay).await;
    second
        .send(&ClientFrame::Resume {
            version: PROTOCOL_VERSION,
            token: old.clone(),
            received_up_to: 0,
        })
        .await;
    assert!(matches!(
        second.recv().await,
        Some(RelayFrame::Resumed { session: s, .. }) if s == session
    ));
    let new = match second.recv().await {
        Some(RelayFrame::NewToken { session: s, token }) if s == session => token,
        other => panic!("expected NewToken right after Resumed, got {other:?}"),
    };
    assert_ne!(new.0, old.0);
    drop(second);
    until_census(&relay, "person away again", |c| c.away_participants == 1).await;

    let mut third = RawConn::open(&relay).await;
    third
        .send(&ClientFrame::Resume {
            version: PROTOCOL_VERSION,
            token: old,
            received_up_to: 0,
        })
        .await;
    assert_eq!(
        third.recv().await,
        Some(RelayFrame::Error {
            code: ErrorCode::ResumeFailed
        }),
        "the token used once is dead"
    );
    third
        .send(&ClientFrame::Resume {
            version: PROTOCOL_VERSION,
            token: new,
            received_up_to: 0,
        })
        .await;
    assert!(matches!(
        third.recv().await,
        Some(RelayFrame::Resumed { session: s, .. }) if s == session
    ));
}

#[tokio::test]
async fn a_client_resumes_twice_with_the_rotated_token() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let Conversation {
        mut person,
        mut operator,
        session,
    } = Conversation::open(&relay, &org, "en").await;
    for round in 1..=2 {
        drop_until_away(&relay, &person, 1).await;
        person.reconnect();
        person
            .wait_for("resumed", |e| matches!(e, Event::Resumed { .. }))
            .await;
        say(&person, session, &format!("back {round}"));
        assert_eq!(message(&mut operator).await.1, format!("back {round}"));
    }
}
