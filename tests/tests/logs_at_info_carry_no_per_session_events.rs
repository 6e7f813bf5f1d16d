//! At INFO the relay logs counts and aggregates only: a whole session (login, open,
//! accept, messages, a drop and resume, the end) leaves no line naming a session event, a
//! connection number or a staff certificate serial, so nothing in the log can place an
//! observatory record at a time and an operator. (Before, each of these had an INFO line.)

use std::io::Write;
use std::sync::{Arc, Mutex};

use approdo_core::identity::Role;
use approdo_tests::*;

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

#[tokio::test]
async fn a_whole_session_leaves_no_per_session_line_at_info() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
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
    let (mut person, session) = person(&relay, &org, "en").await;
    accept(&mut operator, session).await;
    verified(&mut person, Some(Role::Operator)).await;
    say(&person, session, "hello");
    message(&mut operator).await;
    drop_until_away(&relay, &person, 1).await;
    person.reconnect();
    say(&person, session, "back");
    message(&mut operator).await;
    person.act(move |c| {
        let _ = c.end(session);
    });
    until_census(&relay, "session ended", |c| c.sessions == 0).await;

    let text = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf-8");
    for line in text.lines() {
        for needle in [
            "serial",
            "conn=",
            "session opened",
            "session ended",
            "logged in",
            "joined",
            "resumed",
        ] {
            assert!(
                !line.contains(needle),
                "a per-session detail at INFO ({needle}): {line}"
            );
        }
    }
}
