//! Logs captured at debug level over a whole session (every crate, the relay's and its
//! dependencies') contain no IP address, no message content and no resume token.

use std::io::Write;
use std::sync::{Arc, Mutex};

use approdo_core::identity::Role;
use approdo_tests::*;

const CANARY: &str = "CANARY-logs-5a1c9e";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn looks_like_ipv4(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 4
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 3 && p.parse::<u8>().is_ok())
        })
        .map(str::to_owned)
}

#[tokio::test]
async fn a_full_session_logs_no_address_and_no_content() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut operator = staff(
        &relay,
        &org,
        org.credential(Role::Operator, &["national"], &["en"]),
    )
    .await;
    let mut interpreter = staff(
        &relay,
        &org,
        org.credential(Role::Interpreter, &["national"], &["en"]),
    )
    .await;
    let (mut person, session) = person(&relay, &org, "en").await;
    accept(&mut operator, session).await;
    verified(&mut person, Some(Role::Operator)).await;
    operator.act(move |c| c.invite(session, tag("en")).expect("invite"));
    interpreter
        .wait_for("invitation", |e| matches!(e, approdo_core::client::Event::Invitations { entries, .. } if !entries.is_empty()))
        .await;
    interpreter.act(move |c| c.join(session).expect("join"));
    verified(&mut interpreter, None).await;
    say(&person, session, CANARY);
    assert_eq!(message(&mut operator).await.1, CANARY);
    assert_eq!(message(&mut interpreter).await.1, CANARY);
    person.drop_connection();
    until_census(&relay, "away", |c| c.away_participants == 1).await;
    person.reconnect();
    person
        .wait_for("resumed", |e| {
            matches!(e, approdo_core::client::Event::Resumed { .. })
        })
        .await;
    operator.act(move |c| c.end(session).expect("end"));
    until_census(&relay, "ended", |c| c.sessions == 0).await;
    relay.stop().await;

    let logs = String::from_utf8_lossy(&capture.0.lock().expect("capture lock")).into_owned();
    assert!(
        logs.contains("session opened") && logs.contains("session ended"),
        "the capture worked:\n{logs}"
    );
    assert!(!logs.contains(CANARY), "message content in the logs");
    assert_eq!(looks_like_ipv4(&logs), None, "an IPv4 address in the logs");
    assert!(!logs.contains("::1"), "an IPv6 address in the logs");
}
