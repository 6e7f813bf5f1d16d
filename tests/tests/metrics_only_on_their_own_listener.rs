//! Metrics are served on their own listener only: the public HTTP and HTTPS listeners
//! answer `/metrics` with a 404 and no figure, and the metrics listener serves `GET
//! /metrics` and nothing else.

use approdo_tests::metrics::scrape;
use approdo_tests::tls::{http_get, https_get, https_raw};
use approdo_tests::*;

fn assert_not_found(answer: &approdo_tests::tls::Answer, what: &str) {
    assert!(
        answer.status.starts_with("HTTP/1.1 404"),
        "{what}: {}",
        answer.status
    );
    assert!(
        !String::from_utf8_lossy(&answer.body).contains("approdo_"),
        "{what}: no figure in the body"
    );
}

#[tokio::test]
async fn public_listeners_do_not_serve_metrics() {
    let org = TestOrg::default();
    let relay = TestRelay::start_https(&org, |_| {}).await;
    let https = relay.https.expect("an HTTPS listener");

    assert_not_found(&http_get(relay.addr, "/metrics").await, "HTTP /metrics");
    assert_not_found(&https_get(https, "/metrics").await, "HTTPS /metrics");
    assert_not_found(
        &https_raw(
            https,
            "GET /metrics/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .await,
        "HTTPS /metrics/",
    );

    // The metrics listener serves them, and only them.
    assert!(
        scrape(&relay)
            .await
            .contains("# TYPE approdo_connections_open gauge")
    );
    assert_not_found(&http_get(relay.metrics, "/").await, "metrics listener /");
    assert_not_found(
        &http_get(relay.metrics, "/healthz").await,
        "metrics listener /healthz",
    );
    let (post, _) = http_head(
        relay.metrics,
        "POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(post.starts_with("HTTP/1.1 404"), "POST /metrics: {post}");
    relay.stop().await;
}
