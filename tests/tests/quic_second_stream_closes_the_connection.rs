//! Over QUIC a connection carries one stream: a client that opens another (to multiply its
//! buffers or its budgets) is closed with application code 4 (`STREAM_LIMIT`); other
//! sessions carry on.

use approdo_core::wire::ClientFrame;
use approdo_tests::*;

#[tokio::test]
async fn a_second_stream_closes_the_connection() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut others = Conversation::open(&relay, &org, "en").await;

    let mut raw = RawQuic::open(&relay).await;
    raw.send(&ClientFrame::Ping).await;
    let (mut send, _recv) = raw.link.connection.open_bi().await.expect("second stream");
    // A stream exists for the relay once something is written on it.
    let _ = send.write_all(&[0, 0, 0, 1, 0]).await;
    assert_eq!(
        raw.close_code().await,
        Some(approdo_relay::quic::CLOSE_STREAM_LIMIT.into())
    );
    others.still_talking("after a second stream").await;
    relay.stop().await;
}
