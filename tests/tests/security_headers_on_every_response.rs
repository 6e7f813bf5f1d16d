//! Every response of the relay — pages, JSON, errors, the health check and the WebSocket
//! upgrade — carries the strict CSP and the privacy headers; `/exit` also clears the site.

use approdo_tests::*;

const REQUIRED: &[(&str, &str)] = &[
    ("content-security-policy", "default-src 'none'"),
    (
        "content-security-policy",
        "script-src 'self' 'wasm-unsafe-eval'",
    ),
    ("content-security-policy", "connect-src 'self'"),
    ("content-security-policy", "frame-ancestors 'none'"),
    ("cache-control", "no-store"),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(self), microphone=(self)"),
];

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: relay.test\r\nConnection: close\r\n\r\n")
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let upgrade =
        "GET /ws HTTP/1.1\r\nHost: relay.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                   Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            .to_owned();
    let requests = [
        ("/", get("/")),
        ("/desk", get("/desk")),
        ("/exit", get("/exit")),
        ("/config.json", get("/config.json")),
        ("/healthz", get("/healthz")),
        ("/no-such-thing", get("/no-such-thing")),
        ("/ws (upgrade)", upgrade),
        ("/ws (not an upgrade)", get("/ws")),
    ];
    for (what, request) in requests {
        let (status, headers) = http_head(relay.addr, &request).await;
        assert!(status.starts_with("HTTP/1.1"), "{what}: {status}");
        for (name, needle) in REQUIRED {
            let value = headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_default();
            assert!(
                value.contains(needle),
                "{what} ({status}): {name} lacks {needle:?}: {value:?}"
            );
        }
        let clears = headers
            .iter()
            .any(|(k, v)| k == "clear-site-data" && v.contains("\"storage\""));
        assert_eq!(
            clears,
            what == "/exit",
            "{what}: Clear-Site-Data only on /exit"
        );
    }
    relay.stop().await;
}
