//! The switchboard, driven in memory with no network, survives thousands of random and
//! mutated frames from hostile connections, and an honest conversation wired beside them
//! (real client state machines, frames passed by hand) carries on unharmed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use approdo_core::client::{Client, Event};
use approdo_core::credential::StaffCredential;
use approdo_core::identity::{Certificate, OrgSigningKey, Role, StaffSigningKey};
use approdo_core::ids::{ParticipantId, ResumeToken, SessionId, Tag};
use approdo_core::noise::NoiseStaticKey;
use approdo_core::wire::{self, ClientFrame, Envelope, Payload};
use approdo_relay::store::EphemeralStore;
use approdo_relay::switchboard::{ConnId, Output, Switchboard};

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn credential(org: &OrgSigningKey, serial: u64) -> StaffCredential {
    let noise = NoiseStaticKey::generate();
    let signing = StaffSigningKey::generate();
    let info = Certificate {
        serial,
        role: Role::Operator,
        label: "op".into(),
        desks: vec![Tag::new("national").expect("tag")],
        languages: vec![Tag::new("en").expect("tag")],
        noise_key: noise.public(),
        signing_key: signing.public(),
        not_after: u64::MAX,
    };
    let certificate = org.certify(&info);
    StaffCredential {
        noise,
        signing,
        certificate,
        info,
    }
}

/// Pass frames between clients and the switchboard until nothing moves.
fn pump(sb: &mut Switchboard, clients: &mut HashMap<ConnId, Client>, now: Instant) {
    loop {
        let mut moved = false;
        for (conn, c) in clients.iter_mut() {
            while let Some(bytes) = c.poll_transmit() {
                sb.handle(*conn, &bytes, now);
                moved = true;
            }
        }
        for out in sb.take_outputs() {
            moved = true;
            if let Output::Frame(conn, bytes) = out
                && let Some(c) = clients.get_mut(&conn)
            {
                c.handle_bytes(&bytes, 1)
                    .expect("the relay only sends valid frames");
            }
        }
        if !moved {
            return;
        }
    }
}

fn hostile_frame(rng: &mut Rng, session: SessionId) -> Vec<u8> {
    let tag = Tag::new("en").expect("tag");
    let valid = match rng.below(9) {
        0 => ClientFrame::OpenSession {
            version: rng.below(3) as u8,
            language: tag,
            region: None,
        },
        1 => ClientFrame::Resume {
            version: 1,
            token: ResumeToken([rng.below(255) as u8; 32]),
            received_up_to: rng.next(),
        },
        2 => ClientFrame::Accept { session },
        3 => ClientFrame::End { session },
        4 => ClientFrame::Ack {
            session,
            up_to: rng.next(),
        },
        5 => ClientFrame::Send {
            session,
            seq: rng.next(),
            envelopes: vec![Envelope {
                to: ParticipantId(rng.below(5) as u32),
                payload: Payload::Cipher {
                    nonce: 0,
                    data: vec![1; 40],
                },
            }],
        },
        6 => ClientFrame::StaffProof {
            signature: [rng.below(255) as u8; 64],
        },
        7 => ClientFrame::Invite {
            session,
            language: Tag::new("ro").expect("tag"),
        },
        _ => ClientFrame::Ping,
    };
    let mut bytes = wire::encode(&valid).expect("encode");
    match rng.below(4) {
        0 => bytes,
        1 => {
            let i = rng.below(bytes.len() as u64) as usize;
            bytes[i] ^= 1 << rng.below(8);
            bytes
        }
        2 => {
            bytes.truncate(rng.below(bytes.len() as u64) as usize);
            bytes
        }
        _ => (0..rng.below(200)).map(|_| rng.below(256) as u8).collect(),
    }
}

#[test]
fn hostile_connections_cannot_hurt_an_honest_session() {
    let org = OrgSigningKey::generate();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = approdo_relay::admin::demo_config(&org, dir.path().join("s"));
    config.limits.frames_per_sec = 1e9;
    config.limits.frame_burst = 1e9;
    config.limits.sessions_per_min_per_addr = 1e9;
    config.limits.connections_per_min_per_addr = 1e9;
    let config = Arc::new(config);
    let store = EphemeralStore::open_wiped(&config.store_dir).expect("store");
    let observatory = approdo_relay::observatory::Observatory::open(&config.observatory_dir)
        .expect("observatory");
    let now = Instant::now();
    let mut sb = Switchboard::new(config.clone(), store, observatory, now).expect("switchboard");

    // The honest pair.
    let mut clients = HashMap::new();
    let mut person = Client::person(org.public());
    person
        .open_session(Tag::new("en").expect("tag"), None)
        .expect("open");
    let mut operator = Client::staff(org.public(), credential(&org, 1));
    operator.login().expect("login");
    for (conn, c) in [(1, person), (2, operator)] {
        let tag = sb
            .admit("192.0.2.1".parse().expect("ip"), now)
            .expect("admit");
        sb.connected(conn, tag, now);
        clients.insert(conn, c);
    }
    pump(&mut sb, &mut clients, now);
    let session = clients[&1].sessions()[0];
    clients
        .get_mut(&2)
        .expect("operator")
        .accept(session)
        .expect("accept");
    pump(&mut sb, &mut clients, now);

    // Hostile connections: 20 000 frames, many aimed at the honest session's id.
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let mut hostile: Vec<ConnId> = Vec::new();
    for round in 0..20_000u64 {
        if hostile.len() < 8 {
            let conn = 100 + round;
            let tag = sb
                .admit("198.51.100.9".parse().expect("ip"), now)
                .expect("admit");
            sb.connected(conn, tag, now);
            hostile.push(conn);
        }
        let conn = hostile[rng.below(hostile.len() as u64) as usize];
        let target = if rng.below(2) == 0 {
            session
        } else {
            SessionId::random()
        };
        let frame = hostile_frame(&mut rng, target);
        sb.handle(conn, &frame, now);
        for out in sb.take_outputs() {
            match out {
                Output::Close(c) if hostile.contains(&c) => {
                    sb.disconnected(c, now);
                    hostile.retain(|h| *h != c);
                }
                Output::Frame(c, bytes) => {
                    if let Some(client) = clients.get_mut(&c) {
                        client.handle_bytes(&bytes, 1).expect("valid frames");
                    }
                }
                _ => {}
            }
        }
        if round % 1000 == 0 {
            sb.tick(now);
            pump(&mut sb, &mut clients, now);
        }
    }

    // The honest conversation still works, both ways.
    pump(&mut sb, &mut clients, now);
    clients
        .get_mut(&1)
        .expect("person")
        .send_text(session, "still here?")
        .expect("send");
    pump(&mut sb, &mut clients, now);
    clients
        .get_mut(&2)
        .expect("operator")
        .send_text(session, "yes")
        .expect("send");
    pump(&mut sb, &mut clients, now);
    let said = |c: &mut Client| -> Vec<String> {
        std::iter::from_fn(|| c.poll_event())
            .filter_map(|e| match e {
                Event::Message { body, .. } => Some(body.to_string()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        said(clients.get_mut(&2).expect("operator")),
        vec!["still here?".to_owned()]
    );
    assert_eq!(
        said(clients.get_mut(&1).expect("person")),
        vec!["yes".to_owned()]
    );
}
