//! Requests hyper would refuse by itself (a malformed request line, a URI or a header block
//! too long, too many headers) are answered with the same security headers as every other
//! response.

use approdo_tests::*;

const REQUIRED: &[(&str, &str)] = &[
    ("content-security-policy", "default-src 'none'"),
    ("content-security-policy", "frame-ancestors 'none'"),
    ("cache-control", "no-store"),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(self), microphone=(self)"),
];

#[tokio::test]
async fn refusals_of_bad_request_heads_carry_the_security_headers() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let long_uri = format!(
        "GET /{} HTTP/1.1\r\nHost: relay.test\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let many_headers = format!(
        "GET / HTTP/1.1\r\nHost: relay.test\r\n{}\r\n",
        (0..150)
            .map(|i| format!("X-Filler-{i}: y\r\n"))
            .collect::<String>()
    );
    let huge_header = format!(
        "GET / HTTP/1.1\r\nHost: relay.test\r\nX-Big: {}\r\n\r\n",
        "b".repeat(512 * 1024)
    );
    let cases = [
        ("garbage", "GARBAGE\r\n\r\n".to_owned(), "400"),
        ("bad version", "GET / HTTP/9.9\r\n\r\n".to_owned(), "400"),
        ("long URI", long_uri, "414"),
        ("many headers", many_headers, "431"),
        ("huge header", huge_header, "431"),
    ];
    for (what, request, code) in cases {
        let (status, headers) = http_head(relay.addr, &request).await;
        assert!(
            status.starts_with(&format!("HTTP/1.1 {code}")),
            "{what}: {status:?}"
        );
        for (name, needle) in REQUIRED {
            let value = headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_default();
            assert!(value.contains(needle), "{what}: {name} lacks {needle:?}");
        }
    }
    // The relay serves on.
    let (status, _) = http_head(
        relay.addr,
        "GET /healthz HTTP/1.1\r\nHost: relay.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    relay.stop().await;
}
