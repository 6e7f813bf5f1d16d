//! A scrape never waits on a wedged switchboard: while something holds the hub's lock, the
//! metrics listener answers 503 within its bound (as `/healthz` does) instead of tying up
//! a worker, and serves the figures again once the lock is free.

use std::time::{Duration, Instant};

use approdo_relay::server::HEALTH_LOCK_BOUND;
use approdo_tests::*;

const SCRAPE: &str = "GET /metrics HTTP/1.1\r\nHost: metrics.test\r\nConnection: close\r\n\r\n";

// Several workers, as in production: the ticker blocks one of them on the held lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scrape_answers_503_while_the_switchboard_is_stuck() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let (status, _) = http_head(relay.metrics, SCRAPE).await;
    assert!(status.starts_with("HTTP/1.1 200"), "healthy: {status}");

    let inspector = relay.inspector.clone();
    tokio::task::spawn_blocking(move || inspector.test_hook_hold_the_lock(Duration::from_secs(4)))
        .await
        .expect("lock taken");
    let asked = Instant::now();
    let (status, _) = http_head(relay.metrics, SCRAPE).await;
    assert!(status.starts_with("HTTP/1.1 503"), "wedged: {status}");
    assert!(
        asked.elapsed() < HEALTH_LOCK_BOUND + Duration::from_secs(1),
        "gave up within the bound: {:?}",
        asked.elapsed()
    );

    let served = tokio::time::timeout(WAIT, async {
        loop {
            let (status, _) = http_head(relay.metrics, SCRAPE).await;
            if status.starts_with("HTTP/1.1 200") {
                return;
            }
        }
    })
    .await;
    assert!(served.is_ok(), "figures again once the lock is free");
    relay.stop().await;
}
