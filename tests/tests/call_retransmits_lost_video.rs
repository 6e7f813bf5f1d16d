//! Video the relay sent a member and the member's network lost is sent again from the
//! relay's retransmission buffer when the member's receiver asks (RTCP NACK): the
//! relay's own NACK responder, whose rings exist only for the streams that carry video.

use std::time::{Duration, Instant};

use approdo_tests::media::{join_call, join_call_through_hop, talk, video_received as video};
use approdo_tests::{Conversation, TestOrg, TestRelay, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_retransmits_lost_video() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut conv = Conversation::open(&relay, &org, "en").await;
    let (mut person, hop) = join_call_through_hop(&mut conv.person, conv.session).await;
    let mut operator = join_call(&mut conv.operator, conv.session).await;

    let flowing = talk(&mut person, &mut operator, Instant::now() + WAIT, |p, o| {
        video(p) >= 50 && video(o) >= 50
    })
    .await;
    assert!(flowing, "media flows both ways");

    // Both send the same packets at the same pace, so each receives as many as the other,
    // unless the person's losses stay lost: 40 datagrams towards the person (about half of
    // them video) are dropped on its last mile.
    hop.lose_towards_member(40);
    talk(
        &mut person,
        &mut operator,
        Instant::now() + Duration::from_secs(3),
        |_, _| false,
    )
    .await;
    assert_eq!(hop.lost_media(), 40, "the burst was lost");
    // Let the last packets and retransmissions arrive.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (p, o) = (video(&person), video(&operator));
    eprintln!("video received: person {p}, operator {o}");
    assert!(
        p + 3 >= o,
        "the person received {p} video packets, the operator {o}: the lost ones were not sent again"
    );

    person.close().await;
    operator.close().await;
    relay.stop().await;
}
