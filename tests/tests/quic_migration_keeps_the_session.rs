//! A person on QUIC moves to a new local address (a phone leaving the shelter's Wi-Fi for
//! mobile data) while the operator keeps writing: the same connection carries on, every
//! message arrives once and in order, nothing was resumed, and the relay saw one QUIC
//! connection.

use approdo_client::Driver;
use approdo_core::client::{Client, Event};
use approdo_core::identity::Role;
use approdo_tests::*;

const BEFORE: usize = 20;
const AFTER: usize = 20;

#[tokio::test]
async fn rebinding_keeps_the_connection_and_the_order() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut operator = staff_at(
        &relay.ws_url(),
        &org,
        org.credential(Role::Operator, &["national"], &["en"]),
    )
    .await;

    // The person finds the QUIC endpoint the way the terminal client does: from
    // /config.json at the relay's HTTP address.
    let mut client = Client::person(org.key.public());
    client.open_session(tag("en"), None).expect("open");
    let driver = Driver::connect_preferring_quic(&relay.ws_url(), None, client)
        .await
        .expect("connect");
    assert_eq!(driver.transport(), "quic");
    let (mut person, session) = person_on(driver).await;
    accept(&mut operator, session).await;
    verified(&mut person, Some(Role::Operator)).await;
    verified(&mut operator, None).await;

    let before = person
        .with_driver(|d| {
            let q = d.quic().expect("on quic");
            (
                q.connection.stable_id(),
                q.endpoint.local_addr().expect("addr"),
            )
        })
        .await;

    for i in 0..BEFORE {
        say(&operator, session, &format!("message {i}"));
    }
    for i in 0..BEFORE {
        assert_eq!(message(&mut person).await.1, format!("message {i}"));
    }

    // The operator keeps writing while the person's socket changes.
    for i in BEFORE..BEFORE + AFTER / 2 {
        say(&operator, session, &format!("message {i}"));
    }
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("new socket");
    let moved = person
        .with_driver(move |d| {
            d.rebind(socket).expect("rebind");
            d.quic().map(|q| q.endpoint.local_addr().expect("addr"))
        })
        .await
        .expect("still on quic");
    assert_ne!(moved, before.1, "the person is on a new local address");
    for i in BEFORE + AFTER / 2..BEFORE + AFTER {
        say(&operator, session, &format!("message {i}"));
    }
    for i in BEFORE..BEFORE + AFTER {
        assert_eq!(message(&mut person).await.1, format!("message {i}"));
    }
    // And the person can still write back from the new address.
    say(&person, session, "still here");
    assert_eq!(message(&mut operator).await.1, "still here");

    let after = person
        .with_driver(|d| d.quic().map(|q| q.connection.stable_id()))
        .await;
    assert_eq!(after, Some(before.0), "the same QUIC connection");
    assert!(
        !person.saw(|e| matches!(e, Event::Resumed { .. })),
        "nothing was resumed"
    );
    let counts = relay.inspector.transport_counts();
    assert_eq!(
        counts.quic, 1,
        "the relay accepted exactly one QUIC connection"
    );
    assert_eq!(counts.websocket, 1, "and the operator's WebSocket");
    relay.stop().await;
}
