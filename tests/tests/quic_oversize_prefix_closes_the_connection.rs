//! Over QUIC, a frame whose length prefix exceeds the frame limit gets
//! `Error{FrameTooLarge}` and the connection closes with application code 1
//! (`FRAME_TOO_LARGE`), before the relay reads (or buffers) the frame; other sessions
//! carry on.

use approdo_core::wire::{ErrorCode, RelayFrame};
use approdo_tests::*;

#[tokio::test]
async fn an_oversize_prefix_is_refused_with_its_reason() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut others = Conversation::open(&relay, &org, "en").await;
    for len in [65_536u32, u32::MAX] {
        let mut raw = RawQuic::open(&relay).await;
        raw.link
            .write_raw(&len.to_be_bytes())
            .await
            .expect("write the prefix");
        assert_eq!(
            raw.until_closed().await,
            vec![RelayFrame::Error {
                code: ErrorCode::FrameTooLarge
            }],
            "prefix {len}"
        );
        assert_eq!(
            raw.close_code().await,
            Some(approdo_relay::quic::CLOSE_FRAME_TOO_LARGE.into())
        );
        others.still_talking(&format!("after {len}")).await;
    }
    relay.stop().await;
}
