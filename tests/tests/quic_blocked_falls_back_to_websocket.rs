//! When the QUIC endpoint the relay announces does not answer (UDP blocked or dropped on
//! the way), the terminal client's connect falls back to WebSocket after
//! `QUIC_FALLBACK_AFTER` and the person reaches the operator.

use std::time::Instant;

use approdo_client::Driver;
use approdo_core::client::Client;
use approdo_core::identity::Role;
use approdo_tests::*;

#[tokio::test]
async fn a_silent_quic_port_falls_back_to_websocket() {
    let org = TestOrg::default();
    // A bound socket nobody reads: datagrams to it vanish, as behind a firewall that drops
    // UDP (no ICMP error that could make the failure quick).
    let black_hole = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = black_hole.local_addr().expect("addr").port();
    let relay = TestRelay::start_announcing(&org, |_| {}, Some(port)).await;
    let mut operator = staff_at(
        &relay.ws_url(),
        &org,
        org.credential(Role::Operator, &["national"], &["en"]),
    )
    .await;

    let started = Instant::now();
    let mut client = Client::person(org.key.public());
    client.open_session(tag("en"), None).expect("open");
    let driver = Driver::connect_preferring_quic(&relay.ws_url(), None, client)
        .await
        .expect("connect");
    println!(
        "fallback to WebSocket connected after {} ms (QUIC_FALLBACK_AFTER = {} ms)",
        started.elapsed().as_millis(),
        approdo_client::QUIC_FALLBACK_AFTER.as_millis()
    );
    assert_eq!(driver.transport(), "ws");
    let (person, session) = person_on(driver).await;
    say(&person, session, "hello over the fallback");
    accept(&mut operator, session).await;
    verified(&mut operator, None).await;
    assert_eq!(message(&mut operator).await.1, "hello over the fallback");
    println!(
        "first message reached the operator {} ms after the person started connecting",
        started.elapsed().as_millis()
    );
    let counts = relay.inspector.transport_counts();
    assert_eq!((counts.quic, counts.websocket), (0, 2));
    drop(black_hole);
    relay.stop().await;
}
