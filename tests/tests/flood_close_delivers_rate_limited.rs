//! A connection closed for sending too many frames learns why: `Error{RateLimited}` arrives
//! before the close, even when the client stops sending (half-closes its TCP connection)
//! right after its flood: the relay's reader then ends at once, and the writer must still
//! write what was queued before closing.

use approdo_core::wire::{ClientFrame, ErrorCode, RelayFrame};
use approdo_tests::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// Frames sent without reading: far past the burst allowance below.
const FLOOD: usize = 500;

/// Flood, optionally stop sending at once, then collect what the relay sent.
async fn flood(relay: &TestRelay, then_stop: bool) -> Vec<RelayFrame> {
    let (mut ws, _) = tokio_tungstenite::connect_async(relay.ws_url())
        .await
        .expect("connect");
    let ping = approdo_core::wire::encode(&ClientFrame::Ping).expect("encode");
    for _ in 0..FLOOD {
        let _ = ws.feed(Message::Binary(ping.clone().into())).await;
    }
    let _ = ws.flush().await;
    if then_stop {
        use tokio::io::AsyncWriteExt;
        if let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = ws.get_mut() {
            let _ = tcp.shutdown().await;
        }
    }
    let mut frames = Vec::new();
    let read = tokio::time::timeout(WAIT, async {
        while let Some(Ok(msg)) = ws.next().await {
            match msg {
                Message::Binary(b) => {
                    frames.push(approdo_core::wire::decode(&b).expect("relay frames decode"))
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the relay closes in time");
    frames
}

#[tokio::test]
async fn a_flooder_gets_rate_limited_before_the_close() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |c| {
        // The flood is of pings, which have their own budget apart from other frames.
        c.limits.frames_per_sec = 1.0;
        c.limits.frame_burst = 20.0;
        c.limits.acks_per_sec = 1.0;
        c.limits.ack_burst = 20.0;
    })
    .await;
    let mut others = Conversation::open(&relay, &org, "en").await;
    for then_stop in [false, true, false, true] {
        let frames = flood(&relay, then_stop).await;
        assert!(
            frames.contains(&RelayFrame::Error {
                code: ErrorCode::RateLimited
            }),
            "stopping at once: {then_stop}; the reason arrives among {} frames",
            frames.len()
        );
    }
    others.still_talking("after the floods").await;
    relay.stop().await;
}
