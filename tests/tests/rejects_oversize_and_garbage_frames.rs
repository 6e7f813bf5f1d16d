//! Oversize frames and garbage bytes get a clear error code and a closed connection, and
//! a conversation running beside them carries on.

use approdo_core::limits::MAX_FRAME_LEN;
use approdo_core::wire::{ErrorCode, RelayFrame};
use approdo_tests::*;

#[tokio::test]
async fn oversize_and_garbage_are_refused_and_others_carry_on() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut others = Conversation::open(&relay, &org, "en").await;

    // Just over the protocol limit: refused by length, before any decoding.
    let mut c = RawConn::open(&relay).await;
    c.send_bytes(vec![0u8; MAX_FRAME_LEN + 1]).await;
    assert_eq!(
        c.until_closed().await,
        vec![RelayFrame::Error {
            code: ErrorCode::FrameTooLarge
        }]
    );

    // Far over: the WebSocket layer refuses it without buffering it whole.
    let mut c = RawConn::open(&relay).await;
    c.send_bytes(vec![7u8; 4 * 1024 * 1024]).await;
    let frames = c.until_closed().await;
    assert!(
        frames.is_empty()
            || frames
                == vec![RelayFrame::Error {
                    code: ErrorCode::FrameTooLarge
                }],
        "only a clear error, then the close: {frames:?}"
    );

    // Garbage.
    let mut c = RawConn::open(&relay).await;
    c.send_bytes(b"\xff\xfe not a frame at all".to_vec()).await;
    assert_eq!(
        c.until_closed().await,
        vec![RelayFrame::Error {
            code: ErrorCode::Malformed
        }]
    );

    // A valid frame with trailing bytes is garbage too: one byte string, one meaning.
    let mut bytes =
        approdo_core::wire::encode(&approdo_core::wire::ClientFrame::Ping).expect("encode");
    bytes.push(0);
    let mut c = RawConn::open(&relay).await;
    c.send_bytes(bytes).await;
    assert_eq!(
        c.until_closed().await,
        vec![RelayFrame::Error {
            code: ErrorCode::Malformed
        }]
    );

    // An empty message.
    let mut c = RawConn::open(&relay).await;
    c.send_bytes(Vec::new()).await;
    assert_eq!(
        c.until_closed().await,
        vec![RelayFrame::Error {
            code: ErrorCode::Malformed
        }]
    );

    others.still_talking("after the garbage").await;
    relay.stop().await;
}
