//! A call's media goes from one member to the other through the relay's SFU, unchanged;
//! the only address either side is given is the relay's, and the relay needs none from
//! the members' offers.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use approdo_tests::media::join_call;
use approdo_tests::{Conversation, TestOrg, TestRelay, WAIT};

/// Join the call with a native peer connection; returns once media can flow.
fn candidates(sdp: &str) -> Vec<String> {
    sdp.lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_forwards_media_through_relay() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut conv = Conversation::open(&relay, &org, "en").await;
    let mut person = join_call(&mut conv.person, conv.session).await;
    let operator = join_call(&mut conv.operator, conv.session).await;

    // Only the relay's own host candidates, on its address and its shards' ports.
    let shard_ports: Vec<u16> = relay
        .inspector
        .sfu_candidates()
        .iter()
        .map(|a| a.port())
        .collect();
    for caller in [&person, &operator] {
        let sdp = caller.remote_sdp().await.expect("answer applied");
        let cands = candidates(&sdp);
        assert!(!cands.is_empty(), "the answer carries a candidate");
        for c in cands {
            let fields: Vec<&str> = c.split_whitespace().collect();
            assert_eq!(fields[4], "127.0.0.1", "{c}");
            let port: u16 = fields[5].parse().expect("port");
            assert!(shard_ports.contains(&port), "{c}");
            assert_eq!(fields[7], "host", "{c}");
        }
    }

    // The person sends; the operator receives, through the relay, byte for byte.
    let deadline = Instant::now() + WAIT;
    while operator.received.video.load(Ordering::Relaxed) < 50
        || operator.received.audio.load(Ordering::Relaxed) < 50
    {
        assert!(Instant::now() < deadline, "media did not arrive");
        person.send(true, 600).await.expect("send video");
        person.send(false, 120).await.expect("send audio");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seen = operator.received.payloads.lock().expect("lock").clone();
    assert!(
        seen.iter().any(|p| p.len() == 600),
        "video payload size kept"
    );
    assert!(
        seen.iter().any(|p| p.len() == 120),
        "audio payload size kept"
    );
    // The metrics count the call and every packet the operator received (at least).
    let text = approdo_tests::metrics::scrape(&relay).await;
    let figure = |name: &str| approdo_tests::metrics::sample(&text, name, &[]);
    assert_eq!(figure("approdo_calls"), Some(1), "{text}");
    assert_eq!(figure("approdo_call_participants"), Some(2), "{text}");
    let received = operator.received.video.load(Ordering::Relaxed)
        + operator.received.audio.load(Ordering::Relaxed);
    let forwarded = figure("approdo_sfu_forwarded_packets_total").unwrap_or(0);
    assert!(forwarded >= received, "{forwarded} < {received}");
    // The chat goes on during the call.
    conv.still_talking("during the call").await;
    person.close().await;
    operator.close().await;
    relay.stop().await;
}
