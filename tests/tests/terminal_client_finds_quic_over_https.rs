//! A terminal client given a `wss://` relay reads `/config.json` over HTTPS (the relay's
//! self-signed certificate pinned by its hash), finds the QUIC endpoint there, and reaches
//! the operator over QUIC.

use approdo_client::{Driver, Trust};
use approdo_core::client::Client;
use approdo_core::identity::Role;
use approdo_tests::*;

#[tokio::test]
async fn a_wss_relay_is_reached_over_quic_found_via_https() {
    let org = TestOrg::default();
    let relay = TestRelay::start_https(&org, |_| {}).await;
    let https = relay.https.expect("an HTTPS listener");
    let mut operator = staff_at(
        &relay.ws_url(),
        &org,
        org.credential(Role::Operator, &["national"], &["en"]),
    )
    .await;

    let mut client = Client::person(org.key.public());
    client.open_session(tag("en"), None).expect("open");
    let wss = format!("wss://127.0.0.1:{}/ws", https.port());
    let pinned = Trust::Hashes(relay.cert_hashes.clone());
    let driver = Driver::connect_preferring_quic(&wss, Some(pinned), client)
        .await
        .expect("connect");
    assert_eq!(driver.transport(), "quic", "QUIC found through HTTPS");
    let (person, session) = person_on(driver).await;
    say(&person, session, "hello over quic, found over https");
    accept(&mut operator, session).await;
    verified(&mut operator, None).await;
    assert_eq!(
        message(&mut operator).await.1,
        "hello over quic, found over https"
    );
    let counts = relay.inspector.transport_counts();
    assert_eq!((counts.quic, counts.websocket), (1, 1));
    relay.stop().await;
}

#[tokio::test]
async fn a_wrong_pin_finds_no_quic_endpoint() {
    let org = TestOrg::default();
    let relay = TestRelay::start_https(&org, |_| {}).await;
    let https = relay.https.expect("an HTTPS listener");
    let wss = format!("wss://127.0.0.1:{}/ws", https.port());
    let wrong = Trust::Hashes(vec![[7u8; 32]]);
    let found = approdo_client::config::quic_target(&wss, Some(wrong)).await;
    assert!(found.is_err(), "an unpinned certificate is not trusted");
    relay.stop().await;
}
