//! Ending a call releases what the relay held for it: the legs are freed (not merely
//! closed), their routes on the shard (ICE fragment, members' addresses) are forgotten, and
//! a relay that has carried many calls holds no more memory than after the first few.

use std::time::{Duration, Instant};

use approdo_core::client::Event;
use approdo_tests::media::join_call;
use approdo_tests::*;

async fn until<T: PartialEq + std::fmt::Debug>(what: &str, want: T, mut get: impl FnMut() -> T) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = get();
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_and_ending_free_legs_and_routes() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut conv = Conversation::open(&relay, &org, "en").await;
    let p = join_call(&mut conv.person, conv.session).await;
    let o = join_call(&mut conv.operator, conv.session).await;
    let census = relay.inspector.sfu_census();
    assert_eq!((census.members, census.live_peer_connections), (2, 2));
    // A fragment per leg, and at least one address each.
    assert!(census.routes >= 4, "{census:?}");

    // The operator hangs up the call; the conversation goes on.
    let session = conv.session;
    conv.operator
        .act(move |c| c.leave_call(session).expect("leave"));
    until("live peer connections after one left", 1, || {
        relay.inspector.sfu_census().live_peer_connections
    })
    .await;
    let routes = || relay.inspector.sfu_census().routes;
    let before = census.routes;
    until("the person's routes only, after one left", true, || {
        (2..before).contains(&routes())
    })
    .await;
    conv.still_talking("after the operator left the call").await;

    // The session ends: the person's connection goes too.
    conv.person.act(move |c| c.end(session).expect("end"));
    until("live peer connections after the end", 0, || {
        relay.inspector.sfu_census().live_peer_connections
    })
    .await;
    until("routes after the end", 0, routes).await;
    assert_eq!(relay.inspector.sfu_census().calls, 0);
    p.close().await;
    o.close().await;
    relay.stop().await;
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_returns_after_calls_end() {
    let org = TestOrg::default();
    let store = tempfile::tempdir().expect("tempdir");
    let relay = RelayProcess::start(
        env!("CARGO_BIN_EXE_relay-under-test"),
        &org,
        &store.path().join("s"),
    );
    let mut operator = staff_at(
        &relay.url,
        &org,
        org.credential(
            approdo_core::identity::Role::Operator,
            &["national"],
            &["en"],
        ),
    )
    .await;
    // One call of two members, set up and torn down `n` times.
    let cycle = async |operator: &mut Actor| {
        let (mut person, session) = person_at(&relay.url, &org, "en").await;
        accept(operator, session).await;
        verified(&mut person, Some(approdo_core::identity::Role::Operator)).await;
        let p = join_call(&mut person, session).await;
        let o = join_call(operator, session).await;
        person.act(move |c| c.end(session).expect("end"));
        operator
            .wait_for("ended", |e| matches!(e, Event::SessionEnded { .. }))
            .await;
        p.close().await;
        o.close().await;
    };
    for _ in 0..4 {
        cycle(&mut operator).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let warm = rss_kib(relay.pid());
    for _ in 0..16 {
        cycle(&mut operator).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(relay.pid());
    // 32 more peer connections: if each kept its ~300 KiB, RSS would grow by ~9 MiB.
    println!("relay RSS after 4 calls {warm} KiB, after 20 calls {after} KiB");
    assert!(
        after <= warm + 3 * 1024,
        "memory grew from {warm} KiB to {after} KiB over 16 calls"
    );
    relay.sigkill();
}
