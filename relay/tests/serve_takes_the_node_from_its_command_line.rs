//! Several relay nodes can share one configuration file (in Kubernetes, one ConfigMap for
//! every pod): `serve --bus-node NAME --bus-seed-file PATH --sfu-bind-ip IP` supplies what
//! differs from node to node. The shared file here leaves out the bus name and seed and
//! has a wildcard `[sfu] bind_ip`, so without the flags the relay refuses to start; with
//! them it serves and joins the bus under the name given; an invalid name is refused,
//! saying what a name may hold.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;
use common::{Running, free_port, org_files};

/// Whether `GET /config.json` answers 200 on the plain listener: the relay is serving.
fn serving(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /config.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    answer.starts_with(b"HTTP/1.1 200")
}

/// The configuration every node shares: a `[bus]` with the NATS URL and CA only (nothing
/// listens on that port: the relay keeps serving and retrying), and call media on a
/// wildcard address, which the SFU refuses to announce.
fn shared_config(dir: &Path, port: u16) -> std::path::PathBuf {
    let (org, revocations) = org_files(dir);
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let ca = rcgen::CertificateParams::new(vec!["nats.invalid".to_owned()])
        .expect("params")
        .self_signed(&ca_key)
        .expect("CA certificate");
    std::fs::write(dir.join("ca.crt"), ca.pem()).expect("write the CA");
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\n\
         org_public_key = \"{}\"\n\
         revocations = \"{}\"\n\
         store_dir = \"{}\"\n\
         observatory_dir = \"{}\"\n\
         [[desks]]\n\
         id = \"national\"\n\
         name = \"National\"\n\
         fallback_numbers = []\n\
         [sfu]\n\
         bind_ip = \"0.0.0.0\"\n\
         udp_port = 0\n\
         shards = 1\n\
         [bus]\n\
         url = \"tls://127.0.0.1:{}\"\n\
         ca_file = \"{}\"\n",
        org,
        revocations.display(),
        dir.join("store").display(),
        dir.join("observatory").display(),
        free_port(),
        dir.join("ca.crt").display(),
    );
    let path = dir.join("relay.toml");
    std::fs::write(&path, config).expect("write the configuration");
    path
}

/// Start `serve` with the shared file and `flags`; its log lines (stdout and stderr) come
/// out of the channel.
fn start(config: &Path, flags: &[&str]) -> (Running, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_approdo-relay"))
        .args(["serve", "--config"])
        .arg(config)
        .args(flags)
        .env("APPRODO_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start approdo-relay serve");
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    for reader in [
        Box::new(out) as Box<dyn Read + Send>,
        Box::new(err) as Box<dyn Read + Send>,
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines().map_while(Result::ok) {
                eprintln!("relay: {line}");
                let _ = tx.send(line);
            }
        });
    }
    (Running(child), rx)
}

/// Everything the relay printed until it exited; panics if it keeps running.
fn refusal(config: &Path, flags: &[&str]) -> String {
    let (mut relay, lines) = start(config, flags);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = relay.0.try_wait().expect("status") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the relay refuses to start with {flags:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "{flags:?}: a refusal is a failure");
    // The reader threads end with the process's pipes.
    let mut text = String::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
        text.push_str(&line);
        text.push('\n');
    }
    text
}

#[test]
fn serve_takes_the_node_from_its_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = shared_config(dir.path(), port);
    let seed = dir.path().join("approdo-relay-7.nk");
    approdo_relay::bus::create_node_key("approdo-relay-7", &seed).expect("a node key");
    let seed = seed.to_str().expect("utf-8");

    // The shared file alone names no node: no pod can start under another's name.
    let alone = refusal(&config, &[]);
    assert!(
        alone.contains("--bus-node"),
        "without the flags the relay asks for --bus-node:\n{alone}"
    );

    // An invalid name is refused, saying what a name may hold.
    let invalid = refusal(
        &config,
        &[
            "--bus-node",
            "Approdo.Relay",
            "--bus-seed-file",
            seed,
            "--sfu-bind-ip",
            "127.0.0.1",
        ],
    );
    assert!(
        invalid.contains("a node name is 1 to 32 of a-z, 0-9 and -"),
        "an invalid --bus-node is refused with the rule:\n{invalid}"
    );

    // The bus name and seed, but the file's wildcard media address: refused by the SFU.
    let wildcard = refusal(
        &config,
        &["--bus-node", "approdo-relay-7", "--bus-seed-file", seed],
    );
    assert!(
        wildcard.contains("bind_ip is a wildcard"),
        "without --sfu-bind-ip the file's wildcard stands:\n{wildcard}"
    );

    // With all three the node serves, and joins the bus under the name it was given.
    let (mut relay, lines) = start(
        &config,
        &[
            "--bus-node",
            "approdo-relay-7",
            "--bus-seed-file",
            seed,
            "--sfu-bind-ip",
            "127.0.0.1",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !serving(port) {
        assert!(
            relay.0.try_wait().expect("status").is_none(),
            "the relay stopped"
        );
        assert!(Instant::now() < deadline, "the relay answers in time");
        std::thread::sleep(Duration::from_millis(50));
    }
    let joined = std::iter::from_fn(|| lines.recv_timeout(Duration::from_secs(5)).ok())
        .find(|l| l.contains("joining the bus"))
        .expect("the relay joins the bus");
    assert!(
        joined.contains("node=\"approdo-relay-7\""),
        "under the command line's name: {joined}"
    );
}
