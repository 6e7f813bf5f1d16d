//! A client that opens a connection and dribbles its request headers is cut off after the
//! header timeout (axum::serve installs none by itself), and others are served meanwhile.

use std::time::{Duration, Instant};

use approdo_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn slow_header_clients_are_disconnected() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |c| c.limits.header_timeout_secs = 1).await;
    let mut slow = tokio::net::TcpStream::connect(relay.addr)
        .await
        .expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: relay.test\r\n")
        .await
        .expect("write");
    let started = Instant::now();

    // Others are served while the slow client hangs.
    let (status, _) = http_head(
        relay.addr,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(status.contains("200"), "{status}");

    let mut buf = [0u8; 512];
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue, // a 408 may come first
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the slow client was never cut off");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "cut off at the header timeout"
    );
    relay.stop().await;
}
