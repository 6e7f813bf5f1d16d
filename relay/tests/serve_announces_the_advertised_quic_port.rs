//! A relay started from its configuration file with `quic_advertised_port` tells browsers
//! that port for WebTransport, not the one it binds: a container that publishes UDP 443 to
//! the relay's unprivileged 8443 must not send every page to a closed 8443 (they would fall
//! back to the WebSocket after the race, on every visit).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{Running, free_port, org_files};

fn config_json(port: u16) -> Option<serde_json::Value> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /config.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).ok()?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    serde_json::from_str(body).ok()
}

fn start(dir: &std::path::Path, port: u16, advertised: Option<u16>) -> Running {
    let (org, revocations) = org_files(dir);
    let advertised = advertised.map_or(String::new(), |p| format!("quic_advertised_port = {p}\n"));
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\n\
         tls_self_signed = true\n\
         quic_listen = \"127.0.0.1:0\"\n\
         {advertised}\
         org_public_key = \"{}\"\n\
         revocations = \"{}\"\n\
         store_dir = \"{}\"\n\
         observatory_dir = \"{}\"\n\
         [[desks]]\n\
         id = \"national\"\n\
         name = \"National\"\n\
         fallback_numbers = []\n",
        org,
        revocations.display(),
        dir.join("store").display(),
        dir.join("observatory").display(),
    );
    let path = dir.join("relay.toml");
    std::fs::write(&path, config).expect("write the configuration");
    let mut child = Command::new(env!("CARGO_BIN_EXE_approdo-relay"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("APPRODO_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start approdo-relay serve");
    // Keep its error output readable if it stops early.
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("relay: {line}");
        }
    });
    Running(child)
}

fn announced_port(advertised: Option<u16>) -> Option<u64> {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut relay = start(dir.path(), port, advertised);
    let deadline = Instant::now() + Duration::from_secs(20);
    let config = loop {
        if let Some(c) = config_json(port) {
            break c;
        }
        assert!(
            relay.0.try_wait().expect("status").is_none(),
            "the relay stopped"
        );
        assert!(Instant::now() < deadline, "the relay answers in time");
        std::thread::sleep(Duration::from_millis(50));
    };
    config["webtransport"]["port"].as_u64()
}

#[test]
fn serve_announces_the_advertised_quic_port() {
    assert_eq!(
        announced_port(Some(443)),
        Some(443),
        "the configured port is announced, not the bound one"
    );
    let bound = announced_port(None).expect("a port is announced without the setting");
    assert_ne!(
        bound, 443,
        "without the setting the bound (ephemeral) port is announced"
    );
    assert_ne!(bound, 0);
}
