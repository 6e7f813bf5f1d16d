//! A call member who gets the relay's answer but never connects (its DTLS never comes up:
//! a forged fingerprint, a browser gone before ICE) does not hold a leg for ever: the shard
//! closes it after its setup time, forgets its routes, and takes the member out of the call.

use std::time::{Duration, Instant};

use approdo_core::client::Event;
use approdo_relay::sfu::shard::SETUP_TIMEOUT;
use approdo_tests::media::NativeCaller;
use approdo_tests::{Conversation, TestOrg, TestRelay};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_leg_that_never_connects_is_closed() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut conv = Conversation::open(&relay, &org, "en").await;
    let session = conv.session;
    let (caller, offer) = NativeCaller::offer(Instant::now(), false)
        .await
        .expect("offer");
    conv.person
        .act(move |c| c.join_call(session, &offer).expect("join call"));
    conv.person
        .wait_for("call answer", |e| matches!(e, Event::CallAnswer { .. }))
        .await;
    let opened = Instant::now();
    let census = relay.inspector.sfu_census();
    assert_eq!((census.members, census.live_peer_connections), (1, 1));
    assert_eq!(census.routes, 1, "its ICE fragment, and no address yet");

    // The answer is never applied: nothing reaches the relay from this member.
    let deadline = opened + SETUP_TIMEOUT + Duration::from_secs(5);
    loop {
        let c = relay.inspector.sfu_census();
        if (c.members, c.live_peer_connections, c.routes, c.calls) == (0, 0, 0, 0) {
            break;
        }
        assert!(Instant::now() < deadline, "still held: {c:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        opened.elapsed() >= SETUP_TIMEOUT - Duration::from_secs(1),
        "closed only once its setup time was up"
    );
    conv.still_talking("after the leg was closed").await;
    caller.close().await;
    relay.stop().await;
}
