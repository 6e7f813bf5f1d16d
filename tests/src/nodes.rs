//! Several relay nodes on one machine, joined by a real `nats-server` (Debian's package,
//! installed by `scripts/test`): the server with TLS from a throwaway CA and one NKey user
//! per node, made as `approdo-relay admin bus-node` makes them
//! (`approdo_relay::bus::create_node_key`); each node a `relay-under-test` process of the
//! same organisation with its `[bus]` and a metrics listener the tests scrape.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TestOrg;
use rustls::pki_types::pem::PemObject;

/// How long a node or the server has to come up, and a figure to settle.
pub const NODE_WAIT: Duration = Duration::from_secs(20);

/// A child process killed when dropped, however the test ends.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One node's NKey: the seed's file, and the seed for a test's own client.
pub struct NodeKey {
    /// The node's name.
    pub node: String,
    /// The seed's file (`[bus] nkey_seed_file`).
    pub seed_file: PathBuf,
    /// The seed itself.
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
    /// The server's monitoring listener (loopback), for [`Nats::messages_in`].
    monitor: u16,
}

impl Nats {
    /// Start `nats-server` in `dir` for the nodes `nodes` (each gets an NKey user with its
    /// permissions; JetStream stays off); returns once it accepts TCP.
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
        let monitor = free_port();
        let conf = format!(
            "listen: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor}\n\
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
        let deadline = Instant::now() + NODE_WAIT;
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
            monitor,
        }
    }

    /// TLS for a NATS client that trusts only the test CA.
    pub fn client_tls(&self) -> rustls::ClientConfig {
        let ca = std::fs::read(&self.ca_file).expect("CA");
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&ca) {
            roots.add(cert.expect("PEM")).expect("root");
        }
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
    }

    /// A NATS client holding `node`'s key: what that node may do on the bus, for a
    /// benchmark that listens in.
    pub async fn client_as(&self, node: &str) -> async_nats::Client {
        async_nats::ConnectOptions::with_nkey(self.key(node).seed.clone())
            .tls_client_config(self.client_tls())
            .require_tls(true)
            .connect(self.url.as_str())
            .await
            .expect("the node's key is admitted")
    }

    /// How many messages the server has received from its clients so far (its `/varz`
    /// `in_msgs`): the benchmark's count of bus messages.
    pub fn messages_in(&self) -> std::io::Result<u64> {
        use std::io::{Read, Write};
        let mut http = TcpStream::connect(("127.0.0.1", self.monitor))?;
        http.write_all(b"GET /varz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut answer = String::new();
        http.read_to_string(&mut answer)?;
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let varz: serde_json::Value = serde_json::from_str(body)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        varz["in_msgs"].as_u64().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "no in_msgs in /varz")
        })
    }

    /// The server's process id (the benchmark counts its CPU time as the bus's).
    pub fn pid(&self) -> u32 {
        self._process.0.id()
    }

    /// The key of `node`.
    pub fn key(&self, node: &str) -> &NodeKey {
        self.keys
            .iter()
            .find(|k| k.node == node)
            .expect("a node the server knows")
    }
}

/// One relay node as a process.
pub struct Node {
    /// The process (killed when dropped).
    pub process: Running,
    /// Its WebSocket URL.
    pub url: String,
    /// Its metrics listener.
    pub metrics: std::net::SocketAddr,
}

impl Node {
    /// Start `binary` (pass `env!("CARGO_BIN_EXE_relay-under-test")`) for `org` as node
    /// `name` on `nats`, authenticating with the seed in `seed_file` (its own, or another
    /// to test refusals), its store under `dir`, dropping `share` (0.0–1.0) of what it
    /// sends for carried connections, as an overloaded bus may. Returns once it listens.
    pub fn start(
        binary: &str,
        org: &TestOrg,
        dir: &Path,
        nats: &Nats,
        name: &str,
        seed_file: &Path,
        share: f64,
    ) -> Node {
        let mut child = Command::new(binary)
            .env("APPRODO_TEST_BUS_DROP", share.to_string())
            .env("APPRODO_TEST_ORG_SEED", hex::encode(*org.key.seed()))
            .env("APPRODO_TEST_STORE", dir.join(format!("{name}-store")))
            .env("APPRODO_TEST_BUS_NODE", name)
            .env("APPRODO_TEST_BUS_URL", &nats.url)
            .env("APPRODO_TEST_BUS_CA", &nats.ca_file)
            .env("APPRODO_TEST_BUS_SEED", seed_file)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the relay process");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut next = |prefix: &str| {
            let line = lines.next().expect("a line").expect("read");
            line.strip_prefix(prefix)
                .unwrap_or_else(|| panic!("{prefix}: {line}"))
                .to_owned()
        };
        let listening = next("listening ");
        let metrics = next("metrics ").parse().expect("an address");
        Node {
            process: Running(child),
            url: format!("ws://{listening}/ws"),
            metrics,
        }
    }

    /// Kill it with SIGKILL, as a crash or a lost machine would, and reap it.
    pub fn kill(self) {
        drop(self.process);
    }

    /// The metrics text, or `None` while the node is not answering.
    pub fn scrape(&self) -> Option<String> {
        let mut s = TcpStream::connect(self.metrics).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).ok()?;
        let text = String::from_utf8(answer).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
    }

    /// The sample `name{labels}` in a scrape now.
    pub fn sample(&self, name: &str, labels: &[(&str, &str)]) -> Option<u64> {
        crate::metrics::sample(&self.scrape()?, name, labels)
    }

    /// The unlabelled sample `name` in a scrape now.
    pub fn gauge(&self, name: &str) -> Option<u64> {
        self.sample(name, &[])
    }

    /// Wait until the unlabelled sample `name` reads `value`; panics with the last scrape
    /// after [`NODE_WAIT`].
    pub async fn until(&mut self, name: &str, value: u64) {
        let deadline = Instant::now() + NODE_WAIT;
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
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// NATS and one node per name, each dropping `share` of what it sends over the bus;
/// returns once each sees all the others.
pub async fn nodes(
    binary: &str,
    org: &TestOrg,
    dir: &Path,
    share: f64,
    names: &[&str],
) -> (Nats, Vec<Node>) {
    let nats = Nats::start(dir, names);
    let mut started: Vec<Node> = names
        .iter()
        .map(|name| {
            Node::start(
                binary,
                org,
                dir,
                &nats,
                name,
                &nats.key(name).seed_file,
                share,
            )
        })
        .collect();
    for node in &mut started {
        node.until("approdo_bus_nodes_alive", names.len() as u64 - 1)
            .await;
    }
    (nats, started)
}

/// NATS and two nodes, `rome-1` and `milan-1` (see [`nodes`]).
pub async fn two_nodes(binary: &str, org: &TestOrg, dir: &Path, share: f64) -> (Nats, Node, Node) {
    let (nats, mut started) = nodes(binary, org, dir, share, &["rome-1", "milan-1"]).await;
    let milan = started.pop().expect("milan-1");
    let rome = started.pop().expect("rome-1");
    (nats, rome, milan)
}

/// NATS and three nodes, `rome-1`, `milan-1` and `naples-1` (see [`nodes`]).
pub async fn three_nodes(
    binary: &str,
    org: &TestOrg,
    dir: &Path,
    share: f64,
) -> (Nats, Node, Node, Node) {
    let (nats, mut started) =
        nodes(binary, org, dir, share, &["rome-1", "milan-1", "naples-1"]).await;
    let naples = started.pop().expect("naples-1");
    let milan = started.pop().expect("milan-1");
    let rome = started.pop().expect("rome-1");
    (nats, rome, milan, naples)
}

/// A conversation living on `home`, its operator there, whose person dropped and came
/// back through `via`: the person's connection is carried from `via` to `home`. Returns
/// the operator, the person and the session once the person is back.
pub async fn carried_conversation(
    org: &TestOrg,
    home: &mut Node,
    via: &Node,
) -> (crate::Actor, crate::Actor, approdo_core::ids::SessionId) {
    let (operator, person, session) = crate::accepted_pair(org, &home.url, &home.url, "en").await;
    person.drop_connection();
    home.until("approdo_participants_away", 1).await;
    person.reconnect_to(&via.url);
    home.until("approdo_participants_away", 0).await;
    (operator, person, session)
}
