//! QUIC connections take places in the same per-address count as TCP ones: with
//! `connections_per_addr = 3`, one WebSocket and two QUIC connections fill the address's
//! share, and a third QUIC connection is refused before any session state exists (after a
//! Retry proves the address, so a forged one could not get someone else refused). Closing
//! one gives its place back.

use approdo_core::wire::{ClientFrame, RelayFrame};
use approdo_tests::*;

async fn try_quic(relay: &TestRelay) -> Result<approdo_client::QuicLink, String> {
    let target = approdo_client::QuicTarget::parse(&relay.quic_url())
        .await
        .expect("quic url");
    let mut link = tokio::time::timeout(WAIT, approdo_client::QuicLink::open(&target))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    // Refused connections fail the handshake; an accepted one answers a ping.
    let ping = approdo_core::wire::encode(&ClientFrame::Ping).expect("encode");
    link.write_frames(&[ping])
        .await
        .map_err(|e| e.to_string())?;
    let pong = link.read_frame().await.map_err(|e| e.to_string())?;
    match approdo_core::wire::decode(&pong) {
        Ok(RelayFrame::Pong) => Ok(link),
        other => Err(format!("{other:?}")),
    }
}

#[tokio::test]
async fn quic_and_tcp_share_one_address_limit() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |c| c.limits.connections_per_addr = 3).await;
    let mut ws = RawConn::open(&relay).await;
    ws.send(&ClientFrame::Ping).await;
    assert_eq!(ws.recv().await, Some(RelayFrame::Pong));

    let first = try_quic(&relay).await.expect("second place");
    let _second = try_quic(&relay).await.expect("third place");
    let refused = try_quic(&relay).await;
    assert!(refused.is_err(), "a fourth connection is refused");
    assert_eq!(relay.inspector.transport_counts().quic, 2);

    drop(first);
    // The place comes back once the relay has seen the close.
    let mut again = None;
    for _ in 0..50 {
        if let Ok(link) = try_quic(&relay).await {
            again = Some(link);
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(again.is_some(), "a closed connection gives its place back");
    relay.stop().await;
}
