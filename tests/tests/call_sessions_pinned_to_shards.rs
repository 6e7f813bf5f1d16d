//! Every member of a call is on the same SFU shard (one socket: its packets never cross
//! threads), and a new call goes to the least-loaded shard: with two shards, two calls use
//! both.

use approdo_tests::media::{NativeCaller, join_call};
use approdo_tests::{Conversation, TestOrg, TestRelay};

/// The port of the relay's candidate in its answer (repeated per media section).
async fn shard_port(caller: &NativeCaller) -> u16 {
    let sdp = caller.remote_sdp().await.expect("answer applied");
    let ports: std::collections::BTreeSet<u16> = sdp
        .lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .filter_map(|l| l.split_whitespace().nth(5)?.parse().ok())
        .collect();
    assert_eq!(ports.len(), 1, "one candidate port: {ports:?}");
    ports.into_iter().next().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_sessions_pinned_to_shards() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |c| c.sfu.shards = 2).await;
    let mut a = Conversation::open(&relay, &org, "en").await;
    let shards: Vec<u16> = relay
        .inspector
        .sfu_candidates()
        .iter()
        .map(|a| a.port())
        .collect();
    assert_eq!(shards.len(), 2);
    let a_person = join_call(&mut a.person, a.session).await;
    let a_operator = join_call(&mut a.operator, a.session).await;
    let a_port = shard_port(&a_person).await;
    assert_eq!(shard_port(&a_operator).await, a_port, "one call, one shard");

    let mut b = Conversation::open(&relay, &org, "en").await;
    let b_person = join_call(&mut b.person, b.session).await;
    let b_operator = join_call(&mut b.operator, b.session).await;
    let b_port = shard_port(&b_person).await;
    assert_eq!(shard_port(&b_operator).await, b_port, "one call, one shard");
    assert_ne!(a_port, b_port, "the second call went to the idle shard");
    assert!(shards.contains(&a_port) && shards.contains(&b_port));

    for c in [a_person, a_operator, b_person, b_operator] {
        c.close().await;
    }
    relay.stop().await;
}
