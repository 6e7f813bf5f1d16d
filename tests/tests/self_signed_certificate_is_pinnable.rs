//! The self-signed certificate (the demo's, which QUIC and HTTPS share) is one a browser
//! accepts by hash in WebTransport's `serverCertificateHashes`: ECDSA P-256 with SHA-256,
//! valid now for at most 14 days, naming `localhost`, `127.0.0.1` and `::1`; its SHA-256 is
//! the first hash `/config.json` lists, followed by the next certificate's.

use approdo_tests::tls::{http_get, listed_hashes, served_certificate, sha256};
use approdo_tests::*;
use x509_parser::prelude::*;

#[tokio::test]
async fn the_served_certificate_is_pinnable_and_listed() {
    let org = TestOrg::default();
    let relay = TestRelay::start_https(&org, |_| {}).await;
    let der = served_certificate(relay.https.expect("https")).await;

    let (_, cert) = X509Certificate::from_der(&der).expect("a DER certificate");
    let spki = cert.public_key();
    assert_eq!(
        spki.algorithm.algorithm,
        x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY,
        "an EC key"
    );
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .expect("named curve");
    assert_eq!(curve, x509_parser::oid_registry::OID_EC_P256, "on P-256");
    assert_eq!(
        cert.signature_algorithm.algorithm,
        x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA256
    );

    let validity = cert.validity();
    let span = validity.not_after.timestamp() - validity.not_before.timestamp();
    assert!(
        span > 0 && span <= 14 * 24 * 3600,
        "valid {span} s, at most 14 days"
    );
    assert!(validity.is_valid(), "valid now");

    let san = cert
        .subject_alternative_name()
        .expect("parses")
        .expect("has SANs");
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for name in &san.value.general_names {
        match name {
            GeneralName::DNSName(n) => dns.push(n.to_string()),
            GeneralName::IPAddress(b) => ips.push(b.to_vec()),
            _ => {}
        }
    }
    assert!(dns.contains(&"localhost".to_owned()), "{dns:?}");
    assert!(ips.contains(&vec![127, 0, 0, 1]), "127.0.0.1 in {ips:?}");
    let mut v6_loopback = vec![0u8; 16];
    v6_loopback[15] = 1;
    assert!(ips.contains(&v6_loopback), "::1 in {ips:?}");

    let config = http_get(relay.addr, "/config.json").await;
    let listed = listed_hashes(&config.body);
    assert_eq!(listed.len(), 2, "the current certificate and the next one");
    assert_eq!(
        listed[0],
        sha256(&der),
        "the served certificate comes first"
    );
    assert_ne!(listed[1], listed[0]);
    relay.stop().await;
}
