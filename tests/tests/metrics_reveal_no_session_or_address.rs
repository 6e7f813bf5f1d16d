//! The metrics endpoint shows counts only: with people waiting and chatting, staff logged
//! in and a client's TCP connection open, the scrape holds no session id (hex, upper-case
//! hex, the 8-digit prefix the logs use, base64 of either alphabet), no resume token, no
//! certificate serial (decimal or hex), no staff label, no IP address literal (v4 or v6)
//! and no client port.

use approdo_core::credential::StaffCredential;
use approdo_core::identity::{Certificate, Role, StaffSigningKey};
use approdo_core::noise::NoiseStaticKey;
use approdo_tests::metrics::{sample, scrape};
use approdo_tests::*;
use base64::Engine;

/// A serial and a label no count could be mistaken for.
const SERIAL: u64 = 7_319_004_211_586;
const LABEL: &str = "operator-Zephyrine";

/// An operator credential with [`SERIAL`] and [`LABEL`].
fn distinctive_operator(org: &TestOrg) -> StaffCredential {
    let noise = NoiseStaticKey::generate();
    let signing = StaffSigningKey::generate();
    let info = Certificate {
        serial: SERIAL,
        role: Role::Operator,
        label: LABEL.into(),
        desks: vec![tag("national")],
        languages: vec![tag("en"), tag("it")],
        noise_key: noise.public(),
        signing_key: signing.public(),
        not_after: approdo_client::unix_now() + 86_400,
    };
    StaffCredential {
        certificate: org.key.certify(&info),
        noise,
        signing,
        info,
    }
}

/// Every way the relay or its clients write these bytes.
fn encodings(bytes: &[u8]) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let hex = hex::encode(bytes);
    vec![
        hex.to_uppercase(),
        hex[..8].to_owned(),
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
        hex,
    ]
}

/// Whether `text` holds a dotted IPv4 literal (four numbers of 1 to 3 digits).
fn has_ipv4(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .any(|run| {
            run.split('.')
                .collect::<Vec<_>>()
                .windows(4)
                .any(|w| w.iter().all(|p| (1..=3).contains(&p.len())))
        })
}

/// Whether `text` holds an IPv6 literal: a run of hex digits and colons with two colons or
/// more (`::1`, `fe80::…`, full forms).
fn has_ipv6(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_hexdigit() || c == ':'))
        .any(|run| run.matches(':').count() >= 2)
}

#[test]
fn the_address_checks_find_addresses() {
    assert!(has_ipv4("a 127.0.0.1 b") && has_ipv4("x{y=\"10.1.2.3\"} 1"));
    assert!(
        has_ipv6("::1") && has_ipv6("fe80::1ff:fe23:4567:890a") && has_ipv6("[2001:db8::7]:443")
    );
    assert!(!has_ipv4("approdo_store_bytes_limit 268435456") && !has_ipv6("# HELP a b: c"));
}

#[tokio::test]
async fn metrics_name_no_session_staff_or_address() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut operator = staff(&relay, &org, distinctive_operator(&org)).await;
    let _interpreter = staff(
        &relay,
        &org,
        org.credential(Role::Interpreter, &["national"], &["en"]),
    )
    .await;
    let (_waiting, other_session) = person(&relay, &org, "it").await;
    let (mut person, session) = person(&relay, &org, "en").await;
    accept(&mut operator, session).await;
    say(&person, session, "hello");
    assert_eq!(message(&mut operator).await.1, "hello");
    say(&operator, session, "I am here");
    assert_eq!(message(&mut person).await.1, "I am here");
    let token = person
        .query(move |c| c.resume_token(&session))
        .await
        .expect("the person holds a resume token");
    // A client's own TCP connection, open while the relay is scraped.
    let client = tokio::net::TcpStream::connect(relay.addr)
        .await
        .expect("connect");
    let client_port = client.local_addr().expect("local addr").port().to_string();

    let text = scrape(&relay).await;
    // The scrape did see all this: it counts, and only counts.
    assert_eq!(
        sample(&text, "approdo_staff_online", &[("role", "operator")]),
        Some(1)
    );
    assert_eq!(sample(&text, "approdo_sessions_running", &[]), Some(1));

    let mut secrets = Vec::new();
    secrets.extend(encodings(&session.0));
    secrets.extend(encodings(&other_session.0));
    secrets.extend(encodings(&token.0));
    secrets.extend([
        SERIAL.to_string(),
        format!("{SERIAL:x}"),
        format!("{SERIAL:X}"),
    ]);
    secrets.extend([LABEL.to_owned(), "interpreter-".to_owned()]);
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "{secret:?} in:\n{text}");
    }
    assert!(!has_ipv4(&text), "an IPv4 literal in:\n{text}");
    assert!(!has_ipv6(&text), "an IPv6 literal in:\n{text}");
    let tokens: Vec<&str> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .collect();
    assert!(
        !tokens.contains(&client_port.as_str()),
        "the client's port {client_port} in:\n{text}"
    );
    for port in [
        relay.addr.port(),
        relay.quic_addr.port(),
        relay.metrics.port(),
    ] {
        assert!(!tokens.contains(&port.to_string().as_str()), "port {port}");
    }
    drop(client);
    relay.stop().await;
}
