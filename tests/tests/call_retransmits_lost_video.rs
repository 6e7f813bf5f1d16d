//! Video the relay sent a member and the member's network lost is sent again from the
//! relay's retransmission buffer when the member's receiver asks (RTCP NACK): the
//! relay's own NACK responder, whose rings exist only for the streams that carry video.

use std::time::{Duration, Instant};

use approdo_core::identity::Role;
use approdo_tests::media::{
    NativeCaller, call_through_hop, join_call, join_call_through_hop, talk, video_received as video,
};
use approdo_tests::{Conversation, TestOrg, TestRelay, WAIT, invite_and_join, staff, verified};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_retransmits_lost_video() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let (_conv, mut person, hop, mut operator) = call_through_hop(&relay, &org, 50).await;

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

/// Every member sends a video and an audio packet every 5 ms for `for_ms`.
async fn all_talk(members: &mut [&mut NativeCaller], for_ms: u64) {
    let end = Instant::now() + Duration::from_millis(for_ms);
    while Instant::now() < end {
        for c in members.iter_mut() {
            c.send(true, 600).await.expect("send video");
            c.send(false, 120).await.expect("send audio");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The same with a third member (an interpreter, in the next receive slot): the person now
/// receives two video streams, each with a retransmission ring of its own that exists only
/// since that stream's first packet, and gets back what it lost of both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_of_three_retransmits_lost_video_of_both_others() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut conv = Conversation::open(&relay, &org, "en").await;
    let session = conv.session;
    let mut interpreter = staff(
        &relay,
        &org,
        org.credential(Role::Interpreter, &["national"], &["en"]),
    )
    .await;
    invite_and_join(&conv.operator, &mut interpreter, session, "en").await;
    verified(&mut interpreter, Some(Role::Operator)).await;

    let (mut person, hop) = join_call_through_hop(&mut conv.person, session).await;
    let mut operator = join_call(&mut conv.operator, session).await;
    let mut third = join_call(&mut interpreter, session).await;

    let deadline = Instant::now() + WAIT;
    while [&person, &operator, &third].iter().any(|c| video(c) < 100) {
        assert!(Instant::now() < deadline, "media did not reach all three");
        all_talk(&mut [&mut person, &mut operator, &mut third], 100).await;
    }

    hop.lose_towards_member(60);
    all_talk(&mut [&mut person, &mut operator, &mut third], 3000).await;
    assert_eq!(hop.lost_media(), 60, "the burst was lost");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (p, o, t) = (video(&person), video(&operator), video(&third));
    eprintln!("video received: person {p}, operator {o}, interpreter {t}");
    assert!(
        p + 5 >= o.min(t),
        "the person received {p} video packets, the others {o} and {t}: lost ones were not sent again"
    );

    for c in [&person, &operator, &third] {
        c.close().await;
    }
    relay.stop().await;
}
