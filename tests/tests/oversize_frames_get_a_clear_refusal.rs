//! A frame over the size limit, at any size, gets `Error{FrameTooLarge}` and a close with
//! code 1009 ("message too big"), not an abrupt reset that loses the reason.

use approdo_core::wire::{ErrorCode, RelayFrame};
use approdo_tests::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// What the client saw before the connection ended: relay frames, and the close code.
async fn send_oversize(relay: &TestRelay, len: usize) -> (Vec<RelayFrame>, Option<CloseCode>) {
    let (mut ws, _) = tokio_tungstenite::connect_async(relay.ws_url())
        .await
        .expect("connect");
    // The relay refuses as soon as it reads the frame's header, possibly while this send
    // is still writing: its error is ignored, what matters is what comes back.
    let _ = ws.send(Message::Binary(vec![7u8; len].into())).await;
    let mut frames = Vec::new();
    let mut code = None;
    let read = tokio::time::timeout(WAIT, async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Binary(b)) => {
                    frames.push(approdo_core::wire::decode(&b).expect("relay frames decode"))
                }
                Ok(Message::Close(frame)) => {
                    code = frame.map(|f| f.code);
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the relay closes in time");
    (frames, code)
}

#[tokio::test]
async fn oversize_frames_are_refused_with_their_reason() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut others = Conversation::open(&relay, &org, "en").await;
    for len in [70 * 1024, 1024 * 1024] {
        let (frames, code) = send_oversize(&relay, len).await;
        assert_eq!(
            frames,
            vec![RelayFrame::Error {
                code: ErrorCode::FrameTooLarge
            }],
            "{len} bytes: the reason arrives"
        );
        assert_eq!(code, Some(CloseCode::Size), "{len} bytes: closed with 1009");
    }
    others.still_talking("after the oversize frames").await;
    relay.stop().await;
}
