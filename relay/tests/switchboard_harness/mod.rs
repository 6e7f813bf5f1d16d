//! Shared by the in-memory switchboard tests: a switchboard over a temporary store, staff
//! credentials, real clients wired to it by hand, and a simulated clock.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use approdo_core::client::{Client, Event};
use approdo_core::credential::StaffCredential;
use approdo_core::identity::{Certificate, OrgSigningKey, Role, StaffSigningKey};
use approdo_core::ids::Tag;
use approdo_core::limits::MAX_FRAME_LEN;
use approdo_core::noise::NoiseStaticKey;
use approdo_core::wire::{self, ClientFrame, RelayFrame};
use approdo_relay::config::Config;
use approdo_relay::store::EphemeralStore;
use approdo_relay::switchboard::{ConnId, Output, Switchboard};

/// xorshift64*: deterministic, so a failure reproduces.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

pub fn tag(s: &str) -> Tag {
    Tag::new(s).expect("tag")
}

/// A switchboard in memory, its organisation and the directory it lives in.
pub struct Bench {
    pub org: OrgSigningKey,
    pub sb: Switchboard,
    pub now: Instant,
    _dir: tempfile::TempDir,
}

impl Bench {
    /// A switchboard with the demo desks and the given configuration changes.
    pub fn new(tweak: impl FnOnce(&mut Config)) -> Bench {
        let org = OrgSigningKey::generate();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = approdo_relay::admin::demo_config(&org, dir.path().join("s"));
        tweak(&mut config);
        let config = Arc::new(config);
        let store = EphemeralStore::open_wiped(&config.store_dir).expect("store");
        let observatory = approdo_relay::observatory::Observatory::open(&config.observatory_dir)
            .expect("observatory");
        let now = Instant::now();
        let sb = Switchboard::new(config, store, observatory, now).expect("switchboard");
        Bench {
            org,
            sb,
            now,
            _dir: dir,
        }
    }

    /// Open connection `conn` from a distinct address derived from it.
    pub fn connect(&mut self, conn: ConnId) {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32.wrapping_add(conn as u32)));
        let tag = self.sb.admit(ip, self.now).expect("admit");
        self.sb.connected(conn, tag, self.now);
    }

    /// A staff credential of the organisation.
    pub fn credential(
        &self,
        serial: u64,
        role: Role,
        desks: &[&str],
        languages: &[&str],
    ) -> StaffCredential {
        let noise = NoiseStaticKey::generate();
        let signing = StaffSigningKey::generate();
        let info = Certificate {
            serial,
            role,
            label: "staff".into(),
            desks: desks.iter().map(|d| tag(d)).collect(),
            languages: languages.iter().map(|l| tag(l)).collect(),
            noise_key: noise.public(),
            signing_key: signing.public(),
            not_after: u64::MAX,
        };
        let certificate = self.org.certify(&info);
        StaffCredential {
            noise,
            signing,
            certificate,
            info,
        }
    }

    /// Send a raw frame on a connection.
    pub fn frame(&mut self, conn: ConnId, frame: &ClientFrame) {
        let bytes = wire::encode(frame).expect("encode");
        self.sb.handle(conn, &bytes, self.now);
    }

    /// Take the outputs, checking every frame fits the wire limit and decodes.
    pub fn outputs(&mut self) -> Vec<(ConnId, Option<RelayFrame>, bool)> {
        let mut out = Vec::new();
        for o in self.sb.take_outputs() {
            match o {
                Output::Frame(c, bytes) => {
                    assert!(
                        bytes.len() <= MAX_FRAME_LEN,
                        "an output frame over the limit"
                    );
                    let f: RelayFrame = wire::decode(&bytes).expect("relay frames decode");
                    out.push((c, Some(f), false));
                }
                Output::Close(c) => out.push((c, None, true)),
                Output::Call(_) | Output::GatherObservatory(_) => {}
            }
        }
        out
    }

    /// A person on `conn` (connected here) opens a session in English; its id.
    pub fn person_opens(&mut self, conn: ConnId) -> approdo_core::ids::SessionId {
        self.connect(conn);
        self.frame(
            conn,
            &ClientFrame::OpenSession {
                version: approdo_core::PROTOCOL_VERSION,
                language: tag("en"),
                region: None,
            },
        );
        self.outputs()
            .into_iter()
            .find_map(|(_, f, _)| match f {
                Some(RelayFrame::SessionOpened { session, .. }) => Some(session),
                _ => None,
            })
            .expect("opened")
    }

    /// `conn`'s participant joins `session`'s call (an offer the SFU is not asked to
    /// parse here); the outputs are taken.
    pub fn join_call(&mut self, conn: ConnId, session: approdo_core::ids::SessionId) {
        self.frame(
            conn,
            &ClientFrame::CallJoin {
                session,
                offer: "v=0".into(),
            },
        );
        self.outputs();
    }

    /// `frame` from staff connection `conn`, carried towards node `node`: what the member's
    /// own node checks and charges first (`Switchboard::admit_abroad`).
    pub fn carried(
        &mut self,
        conn: ConnId,
        frame: &ClientFrame,
        node: &str,
    ) -> Result<(), approdo_core::wire::ErrorCode> {
        let bytes = wire::encode(frame).expect("encode");
        let now = self.now;
        self.sb.admit_abroad(conn, &bytes, frame, node, now)
    }

    /// An operator of the national desk speaking English, connected on `conn` and logged
    /// in with credential `serial` (everything sent meanwhile is taken from the outputs).
    pub fn operator_logged_in(&mut self, conn: ConnId, serial: u64) -> Client {
        self.connect(conn);
        let mut operator = Client::staff(
            self.org.public(),
            self.credential(serial, Role::Operator, &["national"], &["en"]),
        );
        operator.login().expect("login");
        for _ in 0..4 {
            while let Some(bytes) = operator.poll_transmit() {
                self.sb.handle(conn, &bytes, self.now);
            }
            for (to, frame, _) in self.outputs() {
                if let (true, Some(f)) = (to == conn, frame) {
                    let bytes = wire::encode(&f).expect("encode");
                    operator.handle_bytes(&bytes, 1).expect("valid");
                }
            }
        }
        operator
    }

    /// `operator` (on `conn`) accepts `session`; the outputs are taken.
    pub fn accept(
        &mut self,
        conn: ConnId,
        operator: &mut Client,
        session: approdo_core::ids::SessionId,
    ) {
        operator.accept(session).expect("accept");
        while let Some(bytes) = operator.poll_transmit() {
            self.sb.handle(conn, &bytes, self.now);
        }
        self.outputs();
    }

    /// The frames sent to `conn` in `outputs`.
    pub fn to(outputs: &[(ConnId, Option<RelayFrame>, bool)], conn: ConnId) -> Vec<RelayFrame> {
        outputs
            .iter()
            .filter(|(c, _, _)| *c == conn)
            .filter_map(|(_, f, _)| f.clone())
            .collect()
    }

    /// Whether `outputs` close `conn`.
    pub fn closes(outputs: &[(ConnId, Option<RelayFrame>, bool)], conn: ConnId) -> bool {
        outputs.iter().any(|(c, _, close)| *c == conn && *close)
    }
}

/// Real clients wired to the switchboard by hand.
pub struct Wired {
    pub clients: HashMap<ConnId, Client>,
    /// Connections the switchboard closed, with the error codes they were sent.
    pub closed: Vec<ConnId>,
    pub errors: Vec<(ConnId, approdo_core::wire::ErrorCode)>,
}

impl Wired {
    pub fn new() -> Wired {
        Wired {
            clients: HashMap::new(),
            closed: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Pass frames until nothing moves. Each client answers each frame it receives at once
    /// (as a driver does: read one message, then write what the client has to say).
    pub fn pump(&mut self, b: &mut Bench) {
        for _ in 0..10_000 {
            let mut moved = false;
            for (conn, c) in self.clients.iter_mut() {
                if self.closed.contains(conn) {
                    continue;
                }
                while let Some(bytes) = c.poll_transmit() {
                    b.sb.handle(*conn, &bytes, b.now);
                    moved = true;
                }
            }
            for out in b.sb.take_outputs() {
                moved = true;
                match out {
                    Output::Frame(conn, bytes) => {
                        assert!(bytes.len() <= MAX_FRAME_LEN);
                        if let Ok(RelayFrame::Error { code }) = wire::decode(&bytes) {
                            self.errors.push((conn, code));
                        }
                        if let Some(c) = self.clients.get_mut(&conn) {
                            c.handle_bytes(&bytes, 1).expect("valid frames");
                            while let Some(bytes) = c.poll_transmit() {
                                b.sb.handle(conn, &bytes, b.now);
                            }
                        }
                    }
                    Output::Close(conn) => {
                        if !self.closed.contains(&conn) {
                            self.closed.push(conn);
                            b.sb.disconnected(conn, b.now);
                        }
                    }
                    Output::Call(_) | Output::GatherObservatory(_) => {}
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the frames never settled");
    }

    pub fn client(&mut self, conn: ConnId) -> &mut Client {
        self.clients.get_mut(&conn).expect("client")
    }

    /// The texts a client has received since last asked.
    pub fn said(&mut self, conn: ConnId) -> Vec<String> {
        let c = self.client(conn);
        std::iter::from_fn(|| c.poll_event())
            .filter_map(|e| match e {
                Event::Message { body, .. } => Some(body.to_string()),
                _ => None,
            })
            .collect()
    }
}

/// A person (conn 1) and an operator (conn 2) in one accepted session, both verified.
pub fn honest_pair(b: &mut Bench, w: &mut Wired) -> approdo_core::ids::SessionId {
    let mut person = Client::person(b.org.public());
    person.open_session(tag("en"), None).expect("open");
    let mut operator = Client::staff(
        b.org.public(),
        b.credential(1, Role::Operator, &["national"], &["en"]),
    );
    operator.login().expect("login");
    for (conn, c) in [(1, person), (2, operator)] {
        b.connect(conn);
        w.clients.insert(conn, c);
    }
    w.pump(b);
    let session = w.client(1).sessions()[0];
    w.client(2).accept(session).expect("accept");
    w.pump(b);
    session
}
