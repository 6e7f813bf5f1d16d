//! The metrics endpoint counts what happens: a person waiting shows as one session waiting
//! at the national desk in English, an operator logging in as one operator online, and
//! once the operator accepts and they chat, nobody is waiting and one session runs; the
//! open connections are counted on the transport the clients used.

use approdo_core::identity::Role;
use approdo_tests::metrics::{sample, scrape, total, until_sample};
use approdo_tests::*;

const WAITING: &str = "approdo_sessions_waiting";
const NATIONAL_EN: [(&str, &str); 2] = [("desk", "national"), ("language", "en")];

/// The `transport` label of the clients' connections in this run.
fn transport_label() -> &'static str {
    match transport_under_test() {
        "quic" => "quic",
        _ => "websocket",
    }
}

/// Open connections: `n` on the transport under test, none on the others.
fn assert_open(text: &str, n: u64) {
    for transport in ["websocket", "quic", "webtransport"] {
        let expected = if transport == transport_label() { n } else { 0 };
        assert_eq!(
            sample(
                text,
                "approdo_connections_open",
                &[("transport", transport)]
            ),
            Some(expected),
            "open {transport} connections:\n{text}"
        );
    }
}

fn staff_online(text: &str, role: &str) -> Option<u64> {
    sample(text, "approdo_staff_online", &[("role", role)])
}

#[tokio::test]
async fn metrics_follow_a_conversation() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;

    let idle = scrape(&relay).await;
    assert_eq!(sample(&idle, WAITING, &NATIONAL_EN), Some(0), "{idle}");
    assert_eq!(total(&idle, WAITING), 0);
    assert_eq!(staff_online(&idle, "operator"), Some(0));
    assert_open(&idle, 0);

    // A person waits.
    let (mut person, session) = person(&relay, &org, "en").await;
    let waiting = scrape(&relay).await;
    assert_eq!(
        sample(&waiting, WAITING, &NATIONAL_EN),
        Some(1),
        "{waiting}"
    );
    assert_eq!(total(&waiting, WAITING), 1, "no other desk or language");
    assert_eq!(
        sample(
            &waiting,
            WAITING,
            &[("desk", "toscana"), ("language", "en")]
        ),
        Some(0),
        "another desk's series is there, at zero"
    );
    assert_eq!(sample(&waiting, "approdo_sessions_running", &[]), Some(0));
    assert_open(&waiting, 1);

    // An operator logs in.
    let mut operator = staff(
        &relay,
        &org,
        org.credential(Role::Operator, &["national"], &["en"]),
    )
    .await;
    let online = scrape(&relay).await;
    assert_eq!(staff_online(&online, "operator"), Some(1), "{online}");
    assert_eq!(staff_online(&online, "interpreter"), Some(0));
    assert_eq!(staff_online(&online, "coordinator"), Some(0));
    assert_eq!(sample(&online, WAITING, &NATIONAL_EN), Some(1));
    assert_open(&online, 2);

    // The operator accepts and they chat.
    accept(&mut operator, session).await;
    say(&person, session, "hello");
    assert_eq!(message(&mut operator).await.1, "hello");
    say(&operator, session, "I am here");
    assert_eq!(message(&mut person).await.1, "I am here");
    let talking = scrape(&relay).await;
    assert_eq!(
        sample(&talking, WAITING, &NATIONAL_EN),
        Some(0),
        "{talking}"
    );
    assert_eq!(total(&talking, WAITING), 0);
    assert_eq!(sample(&talking, "approdo_sessions_running", &[]), Some(1));
    assert_eq!(staff_online(&talking, "operator"), Some(1));
    assert_open(&talking, 2);
    assert_eq!(
        sample(
            &talking,
            "approdo_connections_opened_total",
            &[("transport", transport_label())]
        ),
        Some(2),
        "{talking}"
    );

    // The operator's connection ends: nobody online, one connection left.
    drop(operator);
    let after = until_sample(&relay, "approdo_staff_online", &[("role", "operator")], 0).await;
    assert_open(&after, 1);
    relay.stop().await;
}
