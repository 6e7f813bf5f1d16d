//! A small world for in-memory tests: the real `Switchboard` and real `Client`s, frames
//! passed by hand, a clock the test moves. Optionally a filter stands in for a relay that
//! loses or withholds frames on the way to a client.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use approdo_core::client::{Client, Event};
use approdo_core::credential::StaffCredential;
use approdo_core::identity::{Certificate, OrgSigningKey, Role, StaffSigningKey};
use approdo_core::ids::{SessionId, Tag};
use approdo_core::noise::NoiseStaticKey;
use approdo_core::wire::{self, ErrorCode, RelayFrame};
use approdo_relay::observatory::Observatory;
use approdo_relay::store::EphemeralStore;
use approdo_relay::switchboard::{ConnId, Output, Switchboard};

/// Decides whether a frame from the relay to a connection is lost on the way.
pub type Filter = Box<dyn FnMut(ConnId, &RelayFrame) -> bool>;

/// The switchboard and its clients.
pub struct World {
    /// The relay's logic.
    pub sb: Switchboard,
    clients: BTreeMap<ConnId, Client>,
    /// Every event each client emitted, in order.
    pub history: BTreeMap<ConnId, Vec<Event>>,
    /// Every `Error` frame the relay sent, by connection.
    pub refused: Vec<(ConnId, ErrorCode)>,
    /// Simulated time.
    pub now: Instant,
    /// Simulated wall clock for the clients (Unix seconds).
    pub unix: u64,
    org: OrgSigningKey,
    next_conn: ConnId,
    next_serial: u64,
    /// Frames for which this answers true are dropped before the client sees them.
    pub lose: Option<Filter>,
    _dir: tempfile::TempDir,
}

fn tag(s: &str) -> Tag {
    Tag::new(s).expect("test tag")
}

impl World {
    /// A relay with the demo desks and default limits.
    pub fn new() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let org = OrgSigningKey::generate();
        let config = approdo_relay::admin::demo_config(&org, dir.path().join("store"));
        let now = Instant::now();
        let store = EphemeralStore::open_wiped(&config.store_dir).expect("store");
        let observatory = Observatory::open(&config.observatory_dir).expect("observatory");
        let sb = Switchboard::new(Arc::new(config), store, observatory, now).expect("switchboard");
        World {
            sb,
            clients: BTreeMap::new(),
            history: BTreeMap::new(),
            refused: Vec::new(),
            now,
            unix: approdo_client_unix_now(),
            org,
            next_conn: 1,
            next_serial: 1,
            lose: None,
            _dir: dir,
        }
    }

    fn connect(&mut self, client: Client) -> ConnId {
        let conn = self.next_conn;
        self.next_conn += 1;
        // Each client from its own documentation address, so per-address limits stay apart.
        let addr = format!("192.0.2.{}", conn % 250 + 1).parse().expect("ip");
        let tag = self.sb.admit(addr, self.now).expect("admitted");
        self.sb.connected(conn, tag, self.now);
        self.clients.insert(conn, client);
        conn
    }

    /// A person who opens a session in `language` (optionally at a regional desk).
    pub fn person(&mut self, language: &str, region: Option<&str>) -> ConnId {
        let mut c = Client::person(self.org.public());
        c.set_national_desk(tag("national"));
        c.open_session(tag(language), region.map(tag))
            .expect("open");
        let conn = self.connect(c);
        self.pump();
        conn
    }

    /// A staff member, logged in.
    pub fn staff(&mut self, role: Role, desks: &[&str], languages: &[&str]) -> ConnId {
        let noise = NoiseStaticKey::generate();
        let signing = StaffSigningKey::generate();
        let serial = self.next_serial;
        self.next_serial += 1;
        let info = Certificate {
            serial,
            role,
            label: format!("{}-{serial}", role.as_str()),
            desks: desks.iter().map(|d| tag(d)).collect(),
            languages: languages.iter().map(|l| tag(l)).collect(),
            noise_key: noise.public(),
            signing_key: signing.public(),
            not_after: u64::MAX,
        };
        let certificate = self.org.certify(&info);
        let mut c = Client::staff(
            self.org.public(),
            StaffCredential {
                noise,
                signing,
                certificate,
                info,
            },
        );
        c.login().expect("login");
        let conn = self.connect(c);
        self.pump();
        conn
    }

    /// A client, to act on.
    pub fn client(&mut self, conn: ConnId) -> &mut Client {
        self.clients.get_mut(&conn).expect("a client of this world")
    }

    /// The (first) session a client is in.
    pub fn session_of(&self, conn: ConnId) -> SessionId {
        self.clients[&conn].sessions()[0]
    }

    /// Move frames both ways until nothing moves.
    pub fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            let conns: Vec<ConnId> = self.clients.keys().copied().collect();
            for conn in conns {
                let c = self.clients.get_mut(&conn).expect("client");
                c.handle_timeout(self.unix);
                while let Some(bytes) = c.poll_transmit() {
                    self.sb.handle(conn, &bytes, self.now);
                    moved = true;
                }
            }
            for out in self.sb.take_outputs() {
                moved = true;
                match out {
                    Output::Frame(conn, bytes) => self.deliver(conn, &bytes),
                    Output::Close(conn) => {
                        self.sb.disconnected(conn, self.now);
                        self.clients.remove(&conn);
                    }
                    Output::Call(_) | Output::GatherObservatory(_) => {}
                }
            }
            for (conn, c) in self.clients.iter_mut() {
                let h = self.history.entry(*conn).or_default();
                h.extend(std::iter::from_fn(|| c.poll_event()));
            }
            if !moved {
                return;
            }
        }
        panic!("frames never stopped moving");
    }

    fn deliver(&mut self, conn: ConnId, bytes: &[u8]) {
        let frame: RelayFrame = wire::decode(bytes).expect("the relay sends valid frames");
        if let RelayFrame::Error { code } = frame {
            self.refused.push((conn, code));
        }
        if let Some(lose) = self.lose.as_mut()
            && lose(conn, &frame)
        {
            return;
        }
        if let Some(c) = self.clients.get_mut(&conn) {
            c.handle_frame(frame, self.unix)
                .expect("the client takes what the relay sends");
        }
    }

    /// Let time pass for the relay and the clients, then settle.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.unix += by.as_secs();
        self.sb.tick(self.now);
        self.pump();
    }

    /// The chat messages a client received, in order.
    pub fn said_to(&self, conn: ConnId) -> Vec<String> {
        self.history
            .get(&conn)
            .map(|h| {
                h.iter()
                    .filter_map(|e| match e {
                        Event::Message { body, .. } => Some(body.to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether a client emitted an event matching `f`.
    pub fn saw(&self, conn: ConnId, f: impl Fn(&Event) -> bool) -> bool {
        self.history.get(&conn).is_some_and(|h| h.iter().any(f))
    }
}

fn approdo_client_unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
