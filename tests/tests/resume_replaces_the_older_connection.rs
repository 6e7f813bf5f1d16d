//! When a second connection resumes a seat whose first connection is still open, the first
//! gets `Error{Replaced}` and is closed (it used to stay open and silently stop receiving),
//! and the second receives what follows.

use approdo_core::PROTOCOL_VERSION;
use approdo_core::wire::{ClientFrame, ErrorCode, RelayFrame};
use approdo_tests::*;

#[tokio::test]
async fn the_replaced_connection_is_told_and_closed() {
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
    let (session, token) = loop {
        match first.recv().await {
            Some(RelayFrame::SessionOpened { session, token, .. }) => break (session, token),
            Some(_) => {}
            None => panic!("closed before the session opened"),
        }
    };

    let mut second = RawConn::open(&relay).await;
    second
        .send(&ClientFrame::Resume {
            version: PROTOCOL_VERSION,
            token,
            received_up_to: 0,
        })
        .await;
    assert!(matches!(
        second.recv().await,
        Some(RelayFrame::Resumed { session: s, .. }) if s == session
    ));

    let rest = first.until_closed().await;
    assert_eq!(
        rest.last(),
        Some(&RelayFrame::Error {
            code: ErrorCode::Replaced
        }),
        "the first connection is told why, then closed: {rest:?}"
    );

    // The seat now lives on the second connection.
    second.send(&ClientFrame::End { session }).await;
    let mut ended = false;
    while let Some(f) = second.recv().await {
        if matches!(f, RelayFrame::Event { session: s, event: approdo_core::wire::SessionEvent::Ended, .. } if s == session)
        {
            ended = true;
            break;
        }
    }
    assert!(ended, "the second connection holds the seat");
}
