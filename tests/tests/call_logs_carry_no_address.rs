//! The relay's logs, at their most verbose, over a whole call carry no address: webrtc-rs
//! logs ICE candidates (browsers' addresses) through the `log` crate, and the relay must
//! not pass those on.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use approdo_core::identity::Role;
use approdo_tests::media::join_call;
use approdo_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_logs_carry_no_address() {
    let org = TestOrg::default();
    let store = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_relay-under-test"))
        .env("APPRODO_TEST_ORG_SEED", hex::encode(*org.key.seed()))
        .env("APPRODO_TEST_STORE", store.path().join("s"))
        .env("APPRODO_LOG", "trace")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the relay process");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut url = String::new();
    let mut line = String::new();
    while url.is_empty() {
        line.clear();
        assert!(out.read_line(&mut line).expect("read") > 0, "relay exited");
        if let Some(addr) = line.trim().strip_prefix("listening ") {
            url = format!("ws://{addr}/ws");
        }
    }
    let logged = Arc::new(Mutex::new(String::new()));
    let sink = logged.clone();
    std::thread::spawn(move || {
        for l in out.lines().map_while(Result::ok) {
            sink.lock().expect("lock").push_str(&(l + "\n"));
        }
    });

    let mut operator = staff_at(
        &url,
        &org,
        org.credential(Role::Operator, &["national"], &["en"]),
    )
    .await;
    let (mut person, session) = person_at(&url, &org, "en").await;
    accept(&mut operator, session).await;
    verified(&mut person, Some(Role::Operator)).await;
    let p = join_call(&mut person, session).await;
    let o = join_call(&mut operator, session).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    person.act(move |c| c.end(session).expect("end"));
    operator
        .wait_for("ended", |e| {
            matches!(e, approdo_core::client::Event::SessionEnded { .. })
        })
        .await;
    p.close().await;
    o.close().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = child.kill();
    let _ = child.wait();

    let text = logged.lock().expect("lock").clone();
    assert!(
        text.contains("call member connected to the SFU"),
        "the relay's own trace logs were captured:\n{text}"
    );
    for needle in ["127.0.0.1", "candidate", "srflx", "prflx"] {
        assert!(
            !text.contains(needle),
            "the logs mention {needle:?}:\n{}",
            text.lines()
                .filter(|l| l.contains(needle))
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
