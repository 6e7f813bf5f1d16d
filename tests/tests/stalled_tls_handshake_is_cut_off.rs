//! A client that opens a connection to the HTTPS port and never finishes its TLS handshake
//! is closed after `tls_handshake_timeout_secs` (so it gives its place in its address's
//! share back), and others complete handshakes meanwhile.

use approdo_tests::tls::https_get;
use approdo_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_stalled_handshake_is_closed() {
    let org = TestOrg::default();
    // The header timeout stays far above the test's bound: only the handshake timeout can
    // close the stalled connection in time.
    let relay = TestRelay::start_https(&org, |c| {
        c.limits.tls_handshake_timeout_secs = 1;
        c.limits.header_timeout_secs = 3600;
    })
    .await;
    let https = relay.https.expect("https");
    let mut stalled = tokio::net::TcpStream::connect(https)
        .await
        .expect("connect");
    // The first bytes of a ClientHello record, then nothing.
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .await
        .expect("write");

    let answer = https_get(https, "/healthz").await;
    assert!(answer.status.starts_with("HTTP/1.1 200"), "{answer:?}");

    let mut buf = [0u8; 512];
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match stalled.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the stalled handshake was never closed");
    relay.stop().await;
}
