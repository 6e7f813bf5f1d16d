//! An attacker on the path between a call member and the relay replays, from an address of
//! its own, a connectivity check the member really sent (it verifies: integrity does not
//! stop a replay) and then the member's latest media. The relay must not take that for the
//! member moving: the member's media keeps coming to the member, nothing goes to the
//! attacker, and no move is counted. (A real move, with fresh packets, is followed:
//! `call_follows_a_member_whose_address_changes`.)

use std::time::{Duration, Instant};

use approdo_tests::media::{call_through_hop, talk, video_received as video};
use approdo_tests::{TestOrg, TestRelay};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_replays_cannot_steal_a_members_media() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    // Long enough for the person's checks to be captured (webrtc-rs checks every 2 s).
    let (_conv, mut person, hop, mut operator) = call_through_hop(&relay, &org, 300).await;

    hop.replay_from_elsewhere();
    let before = video(&person);
    let still = talk(
        &mut person,
        &mut operator,
        Instant::now() + Duration::from_secs(3),
        |_, _| false,
    )
    .await;
    assert!(!still);
    assert!(
        video(&person) >= before + 100,
        "the person still receives after the replay ({} more)",
        video(&person) - before
    );
    assert_eq!(hop.attacker_media(), 0, "the attacker received media");
    let text = approdo_tests::metrics::scrape(&relay).await;
    let figure = |name: &str| approdo_tests::metrics::sample(&text, name, &[]);
    assert_eq!(figure("approdo_sfu_path_moves_total"), Some(0), "{text}");
    person.close().await;
    operator.close().await;
    relay.stop().await;
}
