//! Over QUIC, a client that completes the handshake and then says nothing (opens no stream,
//! or opens one and sends no frame) is closed after the first-frame timeout with
//! application code 3 (`IDLE`), as a silent WebSocket is; other sessions carry on.

use approdo_tests::*;

#[tokio::test]
async fn a_silent_quic_peer_is_closed() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |c| c.limits.first_frame_timeout_secs = 1).await;
    let mut others = Conversation::open(&relay, &org, "en").await;

    // Opened but never written: the relay never sees the stream.
    let silent = RawQuic::open(&relay).await;
    // The stream is written with half a prefix, never a whole frame.
    let mut half = RawQuic::open(&relay).await;
    half.link.write_raw(&[0, 0]).await.expect("write");

    let idle = Some(approdo_relay::quic::CLOSE_IDLE.into());
    assert_eq!(silent.close_code().await, idle);
    assert_eq!(half.close_code().await, idle);
    others.still_talking("after silent peers").await;
    relay.stop().await;
}
