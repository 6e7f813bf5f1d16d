//! One address holding many silent TCP connections gets only its share of the relay's
//! connections, counted at accept before any HTTP is read: meanwhile a page load and a
//! WebSocket chat from another address get in.

use approdo_tests::*;

/// The relay's whole capacity in this test (lowered so the flood is quick).
const MAX_CONNECTIONS: usize = 24;
/// One address's share.
const PER_ADDR: u32 = 6;
/// Connections the flooding address opens: beyond its share and beyond the capacity.
const FLOOD: usize = 3 * MAX_CONNECTIONS;

#[tokio::test]
async fn a_flood_from_one_address_leaves_room_for_others() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |c| {
        c.limits.max_connections = MAX_CONNECTIONS;
        c.limits.connections_per_addr = PER_ADDR;
    })
    .await;

    // The flood: from 127.0.0.2, connections that never send a byte.
    let mut held = Vec::new();
    for _ in 0..FLOOD {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.2:0".parse().expect("addr"))
            .expect("bind 127.0.0.2");
        if let Ok(Ok(s)) = tokio::time::timeout(WAIT, socket.connect(relay.addr)).await {
            held.push(s);
        }
    }
    assert_eq!(held.len(), FLOOD, "the kernel completed every handshake");

    // Another address (127.0.0.1): a page load and a full conversation get in.
    let (status, _) = http_head(
        relay.addr,
        "GET /healthz HTTP/1.1\r\nHost: relay.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 200"), "page load: {status:?}");
    let mut conversation = Conversation::open(&relay, &org, "en").await;
    conversation.still_talking("beside the flood").await;

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
        "{open} flood connections still open, share {PER_ADDR}"
    );
    drop(held);
    relay.stop().await;
}
