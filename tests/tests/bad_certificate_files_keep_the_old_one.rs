//! A reload (what SIGHUP does) with a damaged certificate file, or a key that does not
//! belong to the certificate, fails with an error that quotes no file content, and the
//! certificate in use stays: new handshakes still get it.

use approdo_tests::tls::{served_certificate, sha256, write_certificate_files};
use approdo_tests::*;

#[tokio::test]
async fn a_bad_reload_keeps_the_certificate_in_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key, first) = write_certificate_files(dir.path(), "first");
    let org = TestOrg::default();
    let relay = TestRelay::start_https(&org, |c| {
        c.tls = Some(approdo_relay::tls::TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        });
    })
    .await;
    let https = relay.https.expect("https");
    assert_eq!(sha256(&served_certificate(https).await), first);
    let key_pem = std::fs::read_to_string(&key).expect("key");

    // A truncated certificate file.
    let cert_pem = std::fs::read_to_string(&cert).expect("certificate");
    std::fs::write(&cert, &cert_pem[..cert_pem.len() / 2]).expect("write");
    let error = relay.inspector.reload_certificates().expect_err("refused");
    assert_eq!(sha256(&served_certificate(https).await), first);

    // A valid certificate with the wrong key.
    let (other_cert, _, _) = write_certificate_files(dir.path(), "other");
    std::fs::copy(&other_cert, &cert).expect("copy");
    let mismatch = relay.inspector.reload_certificates().expect_err("refused");
    assert_eq!(sha256(&served_certificate(https).await), first);

    // A missing key file.
    std::fs::remove_file(&key).expect("remove");
    let missing = relay.inspector.reload_certificates().expect_err("refused");
    assert_eq!(sha256(&served_certificate(https).await), first);

    let key_body: String = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for e in [error, mismatch, missing] {
        let text = e.to_string();
        assert!(!text.contains("BEGIN"), "{text}");
        assert!(!text.contains(&key_body[..16]), "{text}");
    }
    relay.stop().await;
}
