//! A call member whose address changes mid-call (a NAT rebinding, a phone moving from Wi-Fi
//! to mobile data) stays in the call: the relay follows it to its new address, with no new
//! offer and no new connection, and both directions keep flowing.

use std::time::{Duration, Instant};

use approdo_tests::media::{call_through_hop, talk, video_received as video};
use approdo_tests::{TestOrg, TestRelay, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_follows_a_member_whose_address_changes() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let (mut conv, mut person, hop, mut operator) = call_through_hop(&relay, &org, 50).await;

    // The person's address changes; neither side is told.
    hop.move_member();
    let moved_at = Instant::now();
    let (person_before, operator_before) = (video(&person), video(&operator));
    let mut first_after = None;
    let resumed = talk(&mut person, &mut operator, moved_at + WAIT, |p, o| {
        if first_after.is_none() && video(p) > person_before {
            first_after = Some(moved_at.elapsed());
        }
        video(p) >= person_before + 100 && video(o) >= operator_before + 100
    })
    .await;
    assert!(
        resumed,
        "after the move the person received {} and the operator {} more video packets",
        video(&person) - person_before,
        video(&operator) - operator_before
    );
    eprintln!("first packet to the moved person after {first_after:?}");

    // Past the ICE agent's 5 s "disconnected" mark the call still flows to the new
    // address: the relay follows the member, not only a burst that was in flight.
    let settle = Instant::now() + Duration::from_secs(6);
    talk(&mut person, &mut operator, settle, |_, _| false).await;
    let late = video(&person);
    let still = talk(
        &mut person,
        &mut operator,
        Instant::now() + Duration::from_secs(5),
        |p, _| video(p) >= late + 50,
    )
    .await;
    assert!(still, "media still reaches the person 6 s after the move");

    // One connection per member the whole time, and the move counted.
    let text = approdo_tests::metrics::scrape(&relay).await;
    let figure = |name: &str| approdo_tests::metrics::sample(&text, name, &[]);
    assert_eq!(figure("approdo_call_participants"), Some(2), "{text}");
    assert_eq!(figure("approdo_sfu_path_moves_total"), Some(1), "{text}");
    conv.still_talking("after the move").await;
    person.close().await;
    operator.close().await;
    relay.stop().await;
}
