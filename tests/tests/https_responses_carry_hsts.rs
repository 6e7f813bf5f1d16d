//! The relay serves its routes over HTTPS itself, and every HTTPS response carries
//! `Strict-Transport-Security` (pages, health check, and a request head refused before
//! hyper) beside the usual security headers; plain HTTP responses carry none (browsers
//! ignore it there, and the demo's loopback pages stay plain HTTP).

use approdo_tests::tls::{http_get, https_get, https_raw};
use approdo_tests::*;

const HSTS: &str = "max-age=63072000; includeSubDomains";

#[tokio::test]
async fn https_answers_carry_hsts_and_plain_http_does_not() {
    let org = TestOrg::default();
    let relay = TestRelay::start_https(&org, |_| {}).await;
    let https = relay.https.expect("https listener");

    for path in ["/", "/healthz", "/config.json", "/no-such-file"] {
        let answer = https_get(https, path).await;
        assert!(answer.status.starts_with("HTTP/1.1 "), "{path}: {answer:?}");
        assert_eq!(
            answer.header("strict-transport-security"),
            Some(HSTS),
            "{path}"
        );
        assert!(
            answer
                .header("content-security-policy")
                .is_some_and(|v| v.starts_with("default-src 'none'")),
            "{path} keeps its CSP over HTTPS"
        );
    }
    let healthz = https_get(https, "/healthz").await;
    assert!(healthz.status.starts_with("HTTP/1.1 200"), "{healthz:?}");

    // A head the relay refuses itself, before hyper, over HTTPS.
    let refused = https_raw(https, "GARBAGE\r\n\r\n").await;
    assert!(refused.status.starts_with("HTTP/1.1 400"), "{refused:?}");
    assert_eq!(refused.header("strict-transport-security"), Some(HSTS));

    for path in ["/", "/healthz", "/config.json"] {
        let plain = http_get(relay.addr, path).await;
        assert!(plain.status.starts_with("HTTP/1.1 "), "{path}: {plain:?}");
        assert_eq!(
            plain.header("strict-transport-security"),
            None,
            "{path} over HTTP"
        );
        assert!(plain.header("content-security-policy").is_some());
    }
    relay.stop().await;
}
