//! `/healthz` answers 503 when the switchboard's lock cannot be taken within its bound (a
//! wedged relay), and 200 again once it can.

use std::time::Duration;

use approdo_tests::*;

const HEALTHZ: &str = "GET /healthz HTTP/1.1\r\nHost: relay.test\r\nConnection: close\r\n\r\n";

// Several workers, as in production: the ticker blocks one of them on the held lock, and
// the health check must still answer from another.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn healthz_says_when_the_switchboard_is_stuck() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let (status, _) = http_head(relay.addr, HEALTHZ).await;
    assert!(status.starts_with("HTTP/1.1 200"), "healthy: {status}");

    // Something holds the hub's lock far longer than the health check waits.
    let inspector = relay.inspector.clone();
    tokio::task::spawn_blocking(move || inspector.test_hook_hold_the_lock(Duration::from_secs(4)))
        .await
        .expect("lock taken");
    let (status, headers) = http_head(relay.addr, HEALTHZ).await;
    assert!(status.starts_with("HTTP/1.1 503"), "wedged: {status}");
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "cache-control" && v == "no-store"),
        "the 503 carries the usual headers"
    );

    // Once the lock is free again, healthy again (bounded wait).
    let healthy = tokio::time::timeout(WAIT, async {
        loop {
            let (status, _) = http_head(relay.addr, HEALTHZ).await;
            if status.starts_with("HTTP/1.1 200") {
                return;
            }
        }
    })
    .await;
    assert!(healthy.is_ok(), "healthy again once the lock is free");
    relay.stop().await;
}
