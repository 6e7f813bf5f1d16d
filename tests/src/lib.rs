//! Shared harness for the end-to-end tests: a test organisation, a real relay on port 0
//! and real WebSocket clients.

use std::net::SocketAddr;
use std::time::Duration;

use approdo_client::Driver;
use approdo_core::client::{Client, Event};
use approdo_core::credential::StaffCredential;
use approdo_core::identity::{Certificate, OrgSigningKey, RevocationList, Role, StaffSigningKey};
use approdo_core::ids::{ParticipantId, SessionId, Tag};
use approdo_core::noise::NoiseStaticKey;
use approdo_relay::{Config, Inspector, Listeners, admin};

pub mod light_member;
pub mod media;
pub mod metrics;
pub mod moving_hop;
pub mod nodes;
mod process;
mod raw;
pub mod tls;
pub use process::RelayProcess;
pub use raw::{RawConn, RawQuic, http_head};
use tokio::sync::{mpsc, oneshot};

/// Generous bound for anything a test waits for; a healthy run takes milliseconds.
pub const WAIT: Duration = Duration::from_secs(20);

/// A tag from a literal.
pub fn tag(s: &str) -> Tag {
    Tag::new(s).expect("test tags are valid")
}

/// A test organisation that mints credentials in memory (no passphrase files, no Argon2).
pub struct TestOrg {
    /// The organisation key.
    pub key: OrgSigningKey,
    next_serial: std::sync::atomic::AtomicU64,
}

impl Default for TestOrg {
    fn default() -> Self {
        TestOrg {
            key: OrgSigningKey::generate(),
            next_serial: 1.into(),
        }
    }
}

impl TestOrg {
    /// A credential valid for a day.
    pub fn credential(&self, role: Role, desks: &[&str], languages: &[&str]) -> StaffCredential {
        self.credential_until(role, desks, languages, approdo_client::unix_now() + 86_400)
    }

    /// A credential valid until `not_after`.
    pub fn credential_until(
        &self,
        role: Role,
        desks: &[&str],
        languages: &[&str],
        not_after: u64,
    ) -> StaffCredential {
        let noise = NoiseStaticKey::generate();
        let signing = StaffSigningKey::generate();
        let serial = self
            .next_serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let info = Certificate {
            serial,
            role,
            label: format!("{}-{serial}", role.as_str()),
            desks: desks.iter().map(|d| tag(d)).collect(),
            languages: languages.iter().map(|l| tag(l)).collect(),
            noise_key: noise.public(),
            signing_key: signing.public(),
            not_after,
        };
        let certificate = self.key.certify(&info);
        StaffCredential {
            noise,
            signing,
            certificate,
            info,
        }
    }

    /// A relay configuration for this organisation, with `revoked` serials.
    pub fn config(&self, store_dir: std::path::PathBuf, revoked: &[u64]) -> Config {
        let mut c = admin::demo_config(&self.key, store_dir);
        // Free ports for the SFU's shards: tests run side by side.
        c.sfu.udp_port = 0;
        c.revocations = self.key.sign_revocations(&RevocationList {
            issued_at: approdo_client::unix_now(),
            serials: revoked.to_vec(),
        });
        c
    }
}

/// The transport [`TestRelay::url`] gives clients: `APPRODO_TEST_TRANSPORT=quic` runs every
/// test that connects through it over QUIC; unset or `ws`, over WebSocket.
pub fn transport_under_test() -> &'static str {
    match std::env::var("APPRODO_TEST_TRANSPORT").as_deref() {
        Ok("quic") => "quic",
        _ => "ws",
    }
}

/// A relay running in this process on a loopback port.
pub struct TestRelay {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where it serves HTTPS, when started with [`TestRelay::start_https`].
    pub https: Option<SocketAddr>,
    /// Its QUIC endpoint (UDP, loopback, ephemeral port).
    pub quic_addr: SocketAddr,
    /// Its metrics listener (loopback, ephemeral port; [`metrics::scrape`]).
    pub metrics: SocketAddr,
    /// SHA-256 of its QUIC certificate.
    pub cert_hashes: Vec<[u8; 32]>,
    /// Counts and raw store bytes.
    pub inspector: Inspector,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestRelay {
    /// Start a relay for `org`, after `tweak` adjusts its configuration.
    pub async fn start(org: &TestOrg, tweak: impl FnOnce(&mut Config)) -> TestRelay {
        Self::start_with(org, tweak, false, None).await
    }

    /// Start a relay that also serves HTTPS (on its own port 0). `tweak` may set
    /// `config.tls`; without it, a self-signed certificate is used.
    pub async fn start_https(org: &TestOrg, tweak: impl FnOnce(&mut Config)) -> TestRelay {
        Self::start_with(org, tweak, true, None).await
    }

    /// [`TestRelay::start`], telling clients (in `/config.json`) that its QUIC endpoint is
    /// on `quic_port` instead of the one it serves (a port where nothing answers stands for
    /// blocked UDP).
    pub async fn start_announcing(
        org: &TestOrg,
        tweak: impl FnOnce(&mut Config),
        quic_port: Option<u16>,
    ) -> TestRelay {
        Self::start_with(org, tweak, false, quic_port).await
    }

    async fn start_with(
        org: &TestOrg,
        tweak: impl FnOnce(&mut Config),
        https: bool,
        quic_port: Option<u16>,
    ) -> TestRelay {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = org.config(dir.path().join("sessions"), &[]);
        // Every test relay serves QUIC, which needs a certificate: the self-signed one
        // unless `tweak` chooses files.
        config.tls = Some(approdo_relay::tls::TlsSource::SelfSigned { hosts: vec![] });
        tweak(&mut config);
        let http = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let addr = http.local_addr().expect("local addr");
        let mut relay = approdo_relay::Relay::new(config).expect("relay starts");
        let https = if https {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind port 0");
            let addr = listener.local_addr().expect("local addr");
            relay.serve_https(listener).expect("https configured");
            Some(addr)
        } else {
            None
        };
        let mut quic =
            approdo_relay::quic::QuicListener::bind("127.0.0.1:0".parse().expect("addr"))
                .expect("bind udp port 0");
        quic.advertised_port = quic_port;
        let quic_addr = quic.socket.local_addr().expect("local addr");
        relay.serve_quic(quic).expect("quic configured");
        let metrics = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let metrics_addr = metrics.local_addr().expect("local addr");
        relay.serve_metrics(metrics);
        let cert_hashes = relay
            .certificates()
            .map(|c| c.web_transport_hashes())
            .unwrap_or_default();
        let inspector = relay.inspector();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            relay
                .run(Listeners::http(http), async {
                    let _ = rx.await;
                })
                .await
                .expect("relay runs");
        });
        TestRelay {
            addr,
            https,
            quic_addr,
            metrics: metrics_addr,
            cert_hashes,
            inspector,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    /// The URL clients connect to, over the transport under test
    /// ([`transport_under_test`]).
    pub fn url(&self) -> String {
        match transport_under_test() {
            "quic" => self.quic_url(),
            _ => self.ws_url(),
        }
    }

    /// The WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// The QUIC URL, with the certificate's hash pinned.
    pub fn quic_url(&self) -> String {
        let hashes: Vec<String> = self.cert_hashes.iter().map(hex::encode).collect();
        format!("quic://{}/?sha256={}", self.quic_addr, hashes.join(","))
    }

    /// Stop serving. Returns the relay's directory (store and observatory), which is
    /// deleted when the returned value is dropped.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self._dir
    }
}

/// What a test asks a participant's task to do.
enum Command {
    Act(Box<dyn FnOnce(&mut Driver) + Send>),
    Raw(Vec<u8>),
    Drop,
    Reconnect,
    ReconnectTo(String),
}

/// A participant running in its own task, as a real client does: it keeps reading from
/// the relay and answering handshakes while the test waits on someone else.
pub struct Actor {
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<Event>,
    /// Every event seen so far, in order (including those `wait_for` skipped).
    pub history: Vec<Event>,
}

impl Actor {
    /// Run `driver` in a task.
    pub fn spawn(mut driver: Driver) -> Actor {
        let (ctx, mut crx) = mpsc::unbounded_channel::<Command>();
        let (etx, erx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                while let Some(e) = driver.client.poll_event() {
                    if etx.send(e).is_err() {
                        return;
                    }
                }
                if driver.is_connected() && driver.flush().await.is_err() {
                    driver.drop_connection();
                }
                let connected = driver.is_connected();
                tokio::select! {
                    cmd = crx.recv() => match cmd {
                        None => return,
                        Some(Command::Act(f)) => f(&mut driver),
                        Some(Command::Raw(bytes)) => { let _ = driver.send_raw(bytes).await; }
                        Some(Command::Drop) => driver.drop_connection(),
                        Some(Command::Reconnect) => { let _ = driver.reconnect().await; }
                        Some(Command::ReconnectTo(url)) => { let _ = driver.reconnect_to(&url).await; }
                    },
                    r = driver.recv(), if connected => {
                        if r.is_err() {
                            driver.drop_connection();
                        }
                    }
                }
            }
        });
        Actor {
            commands: ctx,
            events: erx,
            history: Vec::new(),
        }
    }

    /// Do something with the client (an action); its frames are sent right after.
    pub fn act(&self, f: impl FnOnce(&mut Client) + Send + 'static) {
        let _ = self
            .commands
            .send(Command::Act(Box::new(move |d: &mut Driver| {
                f(&mut d.client)
            })));
    }

    /// Do something with the driver itself (its transport), and wait until it is done.
    pub async fn with_driver<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Driver) -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = oneshot::channel();
        let _ = self
            .commands
            .send(Command::Act(Box::new(move |d: &mut Driver| {
                let _ = tx.send(f(d));
            })));
        rx.await.expect("actor alive")
    }

    /// Ask the client something and wait for the answer.
    pub async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = oneshot::channel();
        let _ = self
            .commands
            .send(Command::Act(Box::new(move |d: &mut Driver| {
                let _ = tx.send(f(&mut d.client));
            })));
        rx.await.expect("actor alive")
    }

    /// Send raw bytes as one WebSocket message.
    pub fn send_raw(&self, bytes: Vec<u8>) {
        let _ = self.commands.send(Command::Raw(bytes));
    }

    /// Lose the connection abruptly.
    pub fn drop_connection(&self) {
        let _ = self.commands.send(Command::Drop);
    }

    /// Connect again and resume.
    pub fn reconnect(&self) {
        let _ = self.commands.send(Command::Reconnect);
    }

    /// Connect again at `url` (another node) and resume there.
    pub fn reconnect_to(&self, url: &str) {
        let _ = self.commands.send(Command::ReconnectTo(url.to_owned()));
    }

    /// Wait for the first event matching `pred`.
    pub async fn wait_for(
        &mut self,
        what: &'static str,
        mut pred: impl FnMut(&Event) -> bool,
    ) -> Event {
        let found = tokio::time::timeout(WAIT, async {
            loop {
                let e = self.events.recv().await.expect("actor alive");
                self.history.push(e.clone());
                if pred(&e) {
                    return e;
                }
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    /// The first event matching `pred`, from what was already seen or else waiting for it
    /// (for events whose order relative to others is not fixed).
    pub async fn seen_or_wait_for(
        &mut self,
        what: &'static str,
        pred: impl Fn(&Event) -> bool,
    ) -> Event {
        if let Some(e) = self.history.iter().find(|e| pred(e)) {
            return e.clone();
        }
        self.wait_for(what, pred).await
    }

    /// Whether some event matching `pred` has been seen.
    pub fn saw(&self, pred: impl Fn(&Event) -> bool) -> bool {
        self.history.iter().any(pred)
    }
}

/// A person who opened a session in `language`; returns once the relay confirmed it.
pub async fn person(relay: &TestRelay, org: &TestOrg, language: &str) -> (Actor, SessionId) {
    person_at(&relay.url(), org, language).await
}

/// [`person`] for a relay given by its WebSocket URL (a relay in another process).
pub async fn person_at(url: &str, org: &TestOrg, language: &str) -> (Actor, SessionId) {
    let mut client = Client::person(org.key.public());
    client.open_session(tag(language), None).expect("open");
    let d = Driver::connect(url, client).await.expect("connect");
    person_on(d).await
}

/// The person on `driver` (its client has asked to open a session), once the relay has
/// opened it: for tests that choose how the person connects.
pub async fn person_on(driver: Driver) -> (Actor, SessionId) {
    let mut a = Actor::spawn(driver);
    let Event::SessionOpened { session } = a
        .wait_for("session opened", |e| {
            matches!(e, Event::SessionOpened { .. })
        })
        .await
    else {
        unreachable!()
    };
    (a, session)
}

/// A logged-in staff member.
pub async fn staff(relay: &TestRelay, org: &TestOrg, cred: StaffCredential) -> Actor {
    staff_at(&relay.url(), org, cred).await
}

/// [`staff`] for a relay given by its WebSocket URL (a relay in another process).
pub async fn staff_at(url: &str, org: &TestOrg, cred: StaffCredential) -> Actor {
    let mut client = Client::staff(org.key.public(), cred);
    client.login().expect("login");
    let d = Driver::connect(url, client).await.expect("connect");
    let mut a = Actor::spawn(d);
    a.wait_for("login", |e| matches!(e, Event::LoggedIn)).await;
    a
}

/// Wait until the operator's queue shows `session`, then accept it.
pub async fn accept(op: &mut Actor, session: SessionId) {
    op.wait_for(
        "session in queue",
        |e| matches!(e, Event::Queue { entries, .. } if entries.iter().any(|q| q.session == session)),
    )
    .await;
    op.act(move |c| c.accept(session).expect("accept"));
    op.wait_for(
        "joined",
        |e| matches!(e, Event::Joined { session: s } if *s == session),
    )
    .await;
}

/// An operator logged in at `operator_url` accepts a person who opened a session in
/// `language` at `person_url` (the same relay, or two nodes of one hotline); returns once
/// each has verified the other: (operator, person, session).
pub async fn accepted_pair(
    org: &TestOrg,
    operator_url: &str,
    person_url: &str,
    language: &str,
) -> (Actor, Actor, SessionId) {
    let cred = org.credential(Role::Operator, &["national"], &[language]);
    let mut operator = staff_at(operator_url, org, cred).await;
    let (mut person, session) = person_at(person_url, org, language).await;
    accept(&mut operator, session).await;
    verified(&mut person, Some(Role::Operator)).await;
    verified(&mut operator, None).await;
    (operator, person, session)
}

/// `operator` invites an interpreter of `language` into `session`; `interpreter` waits
/// for the invitation and joins.
pub async fn invite_and_join(
    operator: &Actor,
    interpreter: &mut Actor,
    session: SessionId,
    language: &str,
) {
    let language = tag(language);
    operator.act(move |c| c.invite(session, language).expect("invite"));
    interpreter
        .wait_for("invitation", |e| {
            matches!(e, Event::Invitations { entries, .. } if entries.iter().any(|i| i.session == session))
        })
        .await;
    interpreter.act(move |c| c.join(session).expect("join"));
}

/// The peer with `role` (None: the person) whose channel is verified, whether that
/// happened already or is still to come (channels complete in no fixed order).
pub async fn verified(a: &mut Actor, role: Option<Role>) -> ParticipantId {
    let Event::PeerVerified { peer, .. } = a
        .seen_or_wait_for(
            "peer verified",
            |e| matches!(e, Event::PeerVerified { role: r, .. } if *r == role),
        )
        .await
    else {
        unreachable!()
    };
    peer
}

/// Wait for the next chat message; returns its sender, text and privacy flag.
pub async fn message(a: &mut Actor) -> (ParticipantId, String, bool) {
    let Event::Message {
        from,
        body,
        private,
        ..
    } = a
        .wait_for("message", |e| matches!(e, Event::Message { .. }))
        .await
    else {
        unreachable!()
    };
    (from, body.to_string(), private)
}

/// Send a chat message.
pub fn say(a: &Actor, session: SessionId, text: &str) {
    let text = text.to_owned();
    a.act(move |c| c.send_text(session, &text).expect("send"));
}

/// The session's safety code once it is ready.
pub async fn safety_code(a: &Actor, session: SessionId) -> String {
    use approdo_core::safety::SafetyCode;
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(SafetyCode::Ready(c)) = a.query(move |c| c.safety_code(&session)).await {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("safety code ready in time")
}

/// `a` loses its connection; returns once the relay counts `away` participants away.
pub async fn drop_until_away(relay: &TestRelay, a: &Actor, away: usize) {
    a.drop_connection();
    until_census(relay, "participant away", |c| c.away_participants == away).await;
}

/// Poll the relay until `pred` holds for its census (the relay's state changes as frames
/// arrive on other tasks; this waits for that, never for a fixed time).
pub async fn until_census(
    relay: &TestRelay,
    what: &'static str,
    pred: impl Fn(&approdo_relay::switchboard::Census) -> bool,
) {
    let ok = tokio::time::timeout(WAIT, async {
        loop {
            if pred(&relay.inspector.census()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        ok.is_ok(),
        "timed out waiting for {what}: {:?}",
        relay.inspector.census()
    );
}

/// Every byte of every file under `dir`.
pub fn read_tree(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                all.extend_from_slice(&bytes);
            }
        }
    }
    all
}

/// Whether `needle` occurs in `haystack` (fast enough for a whole core dump).
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && memchr::memmem::find(haystack, needle).is_some()
}

/// Have `a` send a text and return the ciphertexts it put on the wire (taken out of the
/// client before the actor's flush and sent as raw frames, byte for byte the same).
pub async fn say_and_capture(a: &Actor, session: SessionId, text: &str) -> Vec<Vec<u8>> {
    let text = text.to_owned();
    let frames = a
        .query(move |c| {
            c.send_text(session, &text).expect("send");
            let mut frames = Vec::new();
            while let Some(f) = c.poll_frame() {
                frames.push(f);
            }
            frames
        })
        .await;
    let mut ciphertexts = Vec::new();
    for f in frames {
        if let approdo_core::wire::ClientFrame::Send { envelopes, .. } = &f {
            for e in envelopes {
                if let approdo_core::wire::Payload::Cipher { data, .. } = &e.payload {
                    ciphertexts.push(data.clone());
                }
            }
        }
        a.send_raw(approdo_core::wire::encode(&f).expect("encode"));
    }
    ciphertexts
}

/// A person and a national operator in an accepted session, both channels verified: the
/// starting point of most tests, and the bystanders that show another session is unharmed.
pub struct Conversation {
    /// The person.
    pub person: Actor,
    /// The operator.
    pub operator: Actor,
    /// Their session.
    pub session: SessionId,
}

impl Conversation {
    /// Set up a running conversation in `language` (the operator speaks it).
    pub async fn open(relay: &TestRelay, org: &TestOrg, language: &str) -> Conversation {
        let mut operator = staff(
            relay,
            org,
            org.credential(Role::Operator, &["national"], &[language]),
        )
        .await;
        let (mut person, session) = person(relay, org, language).await;
        accept(&mut operator, session).await;
        verified(&mut person, Some(Role::Operator)).await;
        verified(&mut operator, None).await;
        Conversation {
            person,
            operator,
            session,
        }
    }

    /// Prove the conversation still works both ways.
    pub async fn still_talking(&mut self, tag: &str) {
        say(&self.person, self.session, &format!("person {tag}"));
        assert_eq!(message(&mut self.operator).await.1, format!("person {tag}"));
        say(&self.operator, self.session, &format!("operator {tag}"));
        assert_eq!(message(&mut self.person).await.1, format!("operator {tag}"));
    }
}
