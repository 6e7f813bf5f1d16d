//! The terminal client's driver reaches a relay over `wss://` (the relay's own HTTPS, its
//! self-signed certificate pinned by hash): the WebSocket a `wss://` relay falls back to
//! when QUIC is blocked.

use approdo_client::{Driver, Target, Trust};
use approdo_core::client::Client;
use approdo_core::identity::Role;
use approdo_tests::*;

#[tokio::test]
async fn a_person_reaches_the_operator_over_wss() {
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
    let target = Target::websocket(&wss, Some(Trust::Hashes(relay.cert_hashes.clone())));
    let driver = Driver::connect_to(target, client).await.expect("connect");
    assert_eq!(driver.transport(), "ws");
    let (person, session) = person_on(driver).await;
    say(&person, session, "hello over wss");
    accept(&mut operator, session).await;
    verified(&mut operator, None).await;
    assert_eq!(message(&mut operator).await.1, "hello over wss");
    assert_eq!(relay.inspector.transport_counts().websocket, 2);
    relay.stop().await;
}
