//! On the HTTPS port, one address opening many connections that never finish a TLS
//! handshake keeps only its share of places (counted at accept, before the handshake), so
//! another address still completes a handshake and loads a page meanwhile.

use approdo_tests::tls::https_get;
use approdo_tests::*;
use tokio::io::AsyncWriteExt;

/// The relay's whole capacity in this test (lowered so the flood is quick).
const MAX_CONNECTIONS: usize = 24;
/// One address's share.
const PER_ADDR: u32 = 6;
/// Connections the flooding address opens: beyond its share and beyond the capacity.
const FLOOD: usize = 3 * MAX_CONNECTIONS;

#[tokio::test]
async fn a_handshake_flood_from_one_address_leaves_room_for_others() {
    let org = TestOrg::default();
    let relay = TestRelay::start_https(&org, |c| {
        c.limits.max_connections = MAX_CONNECTIONS;
        c.limits.connections_per_addr = PER_ADDR;
    })
    .await;
    let https = relay.https.expect("https");

    // The flood: from 127.0.0.2, connections that start a handshake and stall (the first
    // bytes of a ClientHello record, then nothing).
    let mut held = Vec::new();
    for _ in 0..FLOOD {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.2:0".parse().expect("addr"))
            .expect("bind 127.0.0.2");
        if let Ok(Ok(mut s)) = tokio::time::timeout(WAIT, socket.connect(https)).await {
            let _ = s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).await;
            held.push(s);
        }
    }
    assert_eq!(
        held.len(),
        FLOOD,
        "the kernel completed every TCP handshake"
    );

    // Another address (127.0.0.1) completes a TLS handshake and gets an answer.
    let answer = https_get(https, "/healthz").await;
    assert!(answer.status.starts_with("HTTP/1.1 200"), "{answer:?}");

    // The flooding address keeps at most its share: every connection past it was closed.
    let mut open = 0;
    for s in &held {
        let mut byte = [0u8; 1];
        match s.try_read(&mut byte) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => open += 1,
            _ => {}
        }
    }
    assert!(
        open <= PER_ADDR as usize,
        "{open} stalled handshakes still open, share {PER_ADDR}"
    );
    drop(held);
    relay.stop().await;
}
