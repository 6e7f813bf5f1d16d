//! A call member on a weak connection can stop receiving video: the relay stops forwarding
//! video to it alone, its audio goes on, and video comes back when it asks again.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use approdo_tests::media::{NativeCaller, join_call};
use approdo_tests::{Conversation, TestOrg, TestRelay, WAIT};

/// Send audio and video for `ms`; returns what `to` received meanwhile (audio, video).
async fn exchange(from: &mut NativeCaller, to: &NativeCaller, ms: u64) -> (u64, u64) {
    let a0 = to.received.audio.load(Ordering::Relaxed);
    let v0 = to.received.video.load(Ordering::Relaxed);
    let end = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < end {
        from.send(true, 500).await.expect("video");
        from.send(false, 100).await.expect("audio");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let what is in flight arrive before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    (
        to.received.audio.load(Ordering::Relaxed) - a0,
        to.received.video.load(Ordering::Relaxed) - v0,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_weak_receiver_gets_audio_only() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut conv = Conversation::open(&relay, &org, "en").await;
    let session = conv.session;
    let mut person = join_call(&mut conv.person, session).await;
    let operator = join_call(&mut conv.operator, session).await;

    let deadline = Instant::now() + WAIT;
    loop {
        let (audio, video) = exchange(&mut person, &operator, 300).await;
        if audio > 0 && video > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "media did not start");
    }

    conv.operator
        .act(move |c| c.receive_video(session, false).expect("audio only"));
    // The relay applies it in order with what follows on the same connection.
    conv.still_talking("asked for audio only").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (audio, video) = exchange(&mut person, &operator, 1000).await;
    assert!(audio > 20, "audio goes on ({audio} packets)");
    assert_eq!(
        video, 0,
        "no video forwarded to a member who asked for audio only"
    );

    conv.operator
        .act(move |c| c.receive_video(session, true).expect("video again"));
    conv.still_talking("asked for video again").await;
    let (_, video) = exchange(&mut person, &operator, 1000).await;
    assert!(video > 20, "video forwarded again ({video} packets)");
    person.close().await;
    operator.close().await;
    relay.stop().await;
}
