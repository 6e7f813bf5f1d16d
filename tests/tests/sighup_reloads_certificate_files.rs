//! SIGHUP re-reads the certificate files (as after an ACME renewal) without dropping
//! anyone: a conversation carried over TLS (wss to the relay's HTTPS port) goes on, on the
//! same TLS connections, while a new TLS connection is shown the new certificate.

use approdo_core::identity::Role;
use approdo_tests::tls::{TlsProxy, served_certificate, sha256, write_certificate_files};
use approdo_tests::*;

/// Put the files of `name` in place of the live ones, each by an atomic rename (as ACME
/// clients do).
fn install(dir: &std::path::Path, name: &str) -> [u8; 32] {
    let (cert, key, hash) = write_certificate_files(dir, name);
    std::fs::rename(cert, dir.join("live.crt")).expect("rename");
    std::fs::rename(key, dir.join("live.key")).expect("rename");
    hash
}

#[tokio::test]
async fn sighup_swaps_the_certificate_and_keeps_the_conversation() {
    let tls_dir = tempfile::tempdir().expect("tempdir");
    let first = install(tls_dir.path(), "first");
    let org = TestOrg::default();
    let relay = TestRelay::start_https(&org, |c| {
        c.tls = Some(approdo_relay::tls::TlsSource::Files {
            cert: tls_dir.path().join("live.crt"),
            key: tls_dir.path().join("live.key"),
        });
    })
    .await;
    let https = relay.https.expect("https");
    let _reloader = approdo_relay::hangup::reload_on_hangup(relay.inspector.clone(), None)
        .expect("SIGHUP handler");

    // A conversation whose both sides reach the relay over TLS.
    let proxy = TlsProxy::start(https).await;
    let mut operator = staff_at(
        &proxy.url(),
        &org,
        org.credential(Role::Operator, &["national"], &["en"]),
    )
    .await;
    let (mut person, session) = person_at(&proxy.url(), &org, "en").await;
    accept(&mut operator, session).await;
    verified(&mut person, Some(Role::Operator)).await;
    verified(&mut operator, None).await;
    let mut conversation = Conversation {
        person,
        operator,
        session,
    };
    conversation.still_talking("before the reload").await;
    assert_eq!(sha256(&served_certificate(https).await), first);

    let second = install(tls_dir.path(), "second");
    nix::sys::signal::raise(nix::sys::signal::Signal::SIGHUP).expect("SIGHUP");

    // The reload runs on the signal task: wait until a new connection shows it.
    let shown = tokio::time::timeout(WAIT, async {
        loop {
            let hash = sha256(&served_certificate(https).await);
            if hash != first {
                return hash;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the new certificate is served");
    assert_eq!(shown, second, "new handshakes get the new certificate");

    conversation.still_talking("after the reload").await;
    let opened = proxy.opened();
    assert_eq!(
        opened,
        vec![first, first],
        "the conversation kept its two TLS connections (no reconnect)"
    );
    relay.stop().await;
}
