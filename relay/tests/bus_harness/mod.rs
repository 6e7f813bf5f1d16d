//! Several relay nodes on one machine, joined by a real `nats-server` (Debian's package,
//! installed by `scripts/test`): the server with TLS from a throwaway CA and one NKey user
//! per node, made as `approdo-relay admin bus-node` makes them (`bus::create_node_key`),
//! and each node an `approdo-relay serve --config` process with a `[bus]` section and a
//! metrics listener the tests scrape.

#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a node or the server has to come up, and a figure to settle.
pub const WAIT: Duration = Duration::from_secs(20);

/// A child process killed when dropped, however the test ends.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free on loopback now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One node's NKey: the seed (its file) and the public key the server lists.
pub struct NodeKey {
    /// The node's name.
    pub node: String,
    /// The seed's file.
    pub seed_file: PathBuf,
    /// The seed itself, for a test's own client speaking as this node.
    pub seed: String,
}

/// The NATS server and what nodes need to reach it.
pub struct Nats {
    _process: Running,
    /// `tls://127.0.0.1:<port>`.
    pub url: String,
    /// The CA's PEM file: the only trust anchor nodes get.
    pub ca_file: PathBuf,
    /// Every node's key, in the order given.
    pub keys: Vec<NodeKey>,
}

impl Nats {
    /// Start `nats-server` in `dir` for the nodes `nodes` (each gets an NKey user with its
    /// permissions); returns once it accepts TCP.
    pub fn start(dir: &Path, nodes: &[&str]) -> Nats {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA");
        let server_key = rcgen::KeyPair::generate().expect("server key");
        let server_params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("params");
        let server_cert = server_params
            .signed_by(&server_key, &ca)
            .expect("server certificate");
        let ca_file = dir.join("nats-ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("write");
        std::fs::write(dir.join("nats-server.pem"), server_cert.pem()).expect("write");
        std::fs::write(dir.join("nats-server-key.pem"), server_key.serialize_pem()).expect("write");

        let mut keys = Vec::new();
        let mut users = String::new();
        for node in nodes {
            // What `approdo-relay admin bus-node` does: the seed file and the server's entry.
            let seed_file = dir.join(format!("{node}.nk"));
            let entry = approdo_relay::bus::create_node_key(node, &seed_file).expect("node key");
            users.push_str(&format!("    {entry}\n"));
            let seed = std::fs::read_to_string(&seed_file)
                .expect("seed")
                .trim()
                .to_owned();
            keys.push(NodeKey {
                node: (*node).to_owned(),
                seed_file,
                seed,
            });
        }
        let port = free_port();
        let conf = format!(
            "listen: 127.0.0.1:{port}\n\
             tls {{\n  cert_file: \"{cert}\"\n  key_file: \"{key}\"\n  timeout: 2\n}}\n\
             authorization {{\n  users: [\n{users}  ]\n}}\n",
            cert = dir.join("nats-server.pem").display(),
            key = dir.join("nats-server-key.pem").display(),
        );
        let conf_file = dir.join("nats.conf");
        std::fs::write(&conf_file, conf).expect("write");
        // Debian installs it in /usr/sbin, which a non-root PATH may lack.
        let bin = std::env::var("APPRODO_NATS_SERVER").unwrap_or_else(|_| {
            let debian = "/usr/sbin/nats-server";
            if Path::new(debian).exists() {
                debian
            } else {
                "nats-server"
            }
            .to_owned()
        });
        let mut child = Command::new(&bin)
            .arg("-c")
            .arg(&conf_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin} (scripts/test installs it): {e}"));
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                child.try_wait().expect("status").is_none(),
                "nats-server stopped"
            );
            assert!(Instant::now() < deadline, "nats-server listens in time");
            std::thread::sleep(Duration::from_millis(50));
        }
        Nats {
            _process: Running(child),
            url: format!("tls://127.0.0.1:{port}"),
            ca_file,
            keys,
        }
    }

    /// The key of `node`.
    pub fn key(&self, node: &str) -> &NodeKey {
        self.keys
            .iter()
            .find(|k| k.node == node)
            .expect("a node the server knows")
    }
}

/// One relay node as a process, with its metrics address.
pub struct Node {
    /// The process (killed when dropped).
    pub process: Running,
    /// Its metrics listener's port.
    pub metrics_port: u16,
}

impl Node {
    /// Start `approdo-relay serve` as node `name` on the bus `nats`, with the NKey seed in
    /// `seed_file` (a node's own, or another one to test refusals), in `dir`.
    pub fn start(dir: &Path, name: &str, nats: &Nats, seed_file: &Path) -> Node {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).expect("node dir");
        let org = approdo_relay::admin::create_org_key(&dir.join("org.key")).expect("org key");
        let key = approdo_relay::admin::load_org_key(&dir.join("org.key")).expect("read");
        let revocations = dir.join("revocations.json");
        approdo_relay::admin::revoke(&key, &revocations, &[0]).expect("a revocation list");
        let metrics_port = free_port();
        let config = format!(
            "listen = \"127.0.0.1:{listen}\"\n\
             metrics_listen = \"127.0.0.1:{metrics_port}\"\n\
             org_public_key = \"{org}\"\n\
             revocations = \"{revocations}\"\n\
             store_dir = \"{store}\"\n\
             observatory_dir = \"{observatory}\"\n\
             [[desks]]\n\
             id = \"national\"\n\
             name = \"National\"\n\
             fallback_numbers = []\n\
             [bus]\n\
             node = \"{name}\"\n\
             url = \"{url}\"\n\
             ca_file = \"{ca}\"\n\
             nkey_seed_file = \"{seed}\"\n",
            listen = free_port(),
            org = hex::encode(org.0),
            revocations = revocations.display(),
            store = dir.join("store").display(),
            observatory = dir.join("observatory").display(),
            url = nats.url,
            ca = nats.ca_file.display(),
            seed = seed_file.display(),
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
        let stderr = child.stderr.take().expect("stderr");
        let label = name.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{label}: {line}");
            }
        });
        Node {
            process: Running(child),
            metrics_port,
        }
    }

    /// The metrics text, or `None` while the node is not answering yet.
    pub fn scrape(&self) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.metrics_port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).ok()?;
        let text = String::from_utf8(answer).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
    }

    /// The value of the unlabelled sample `name` in a scrape now.
    pub fn gauge(&self, name: &str) -> Option<u64> {
        let text = self.scrape()?;
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    /// Wait until the sample `name` reads `value`; panics with the last scrape after
    /// [`WAIT`].
    pub fn until(&mut self, name: &str, value: u64) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.gauge(name) == Some(value) {
                return;
            }
            assert!(
                self.process.0.try_wait().expect("status").is_none(),
                "the node stopped"
            );
            assert!(
                Instant::now() < deadline,
                "{name} never read {value}:\n{}",
                self.scrape().unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
