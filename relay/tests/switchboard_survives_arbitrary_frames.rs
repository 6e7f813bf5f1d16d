//! The switchboard, driven in memory with no network, survives adversarial frame sequences
//! — random and mutated frames of every kind, maximum sizes, made-up 32-byte tags, a long
//! queue, resumes with stale and stolen tokens, proof-of-work garbage, calls before and
//! after an operator accepts, floods of acks — from hostile connections, including a
//! logged-in operator of another desk. It never panics, every frame it sends fits
//! `MAX_FRAME_LEN` and decodes, and an honest conversation wired beside them (real client
//! state machines, frames passed by hand) carries on unharmed.

mod switchboard_harness;

use std::time::Duration;

use approdo_core::PROTOCOL_VERSION;
use approdo_core::client::Client;
use approdo_core::identity::{Role, SignedCertificate};
use approdo_core::ids::{ParticipantId, ResumeToken, SessionId, Tag};
use approdo_core::limits::{
    MAX_ENVELOPES_PER_SEND, MAX_FRAME_LEN, MAX_PAYLOAD_LEN, MAX_SDP_LEN, MAX_TAG_LEN,
};
use approdo_core::wire::{self, ClientFrame, Envelope, Payload, RelayFrame};
use approdo_relay::switchboard::{ConnId, Output};
use switchboard_harness::{Bench, Rng, Wired, honest_pair, tag};

/// Frames sent by hostile connections.
const ROUNDS: u64 = 12_000;
/// Sessions opened to fill the queue before the hostile rounds.
const WAITING: u64 = 800;

const LANGS: [&str; 4] = ["en", "ro", "zh", "pcm"];

fn random_tag(rng: &mut Rng) -> Tag {
    match rng.below(3) {
        0 => tag(LANGS[rng.below(LANGS.len() as u64) as usize]),
        1 => tag(&"z".repeat(MAX_TAG_LEN)),
        _ => tag(&format!("x{}", rng.below(1000))),
    }
}

fn payload(rng: &mut Rng) -> Payload {
    let len = match rng.below(4) {
        0 => MAX_PAYLOAD_LEN,
        1 => MAX_PAYLOAD_LEN + 1,
        _ => rng.below(200) as usize,
    };
    match rng.below(4) {
        0 => Payload::Handshake(vec![3; len]),
        1 => Payload::Cipher {
            nonce: rng.next(),
            data: vec![1; len],
        },
        2 => Payload::HandshakeRefused,
        _ => Payload::Restart,
    }
}

/// Known values the hostile side reuses: sessions it saw, tokens it was given, seeds.
struct Loot {
    sessions: Vec<SessionId>,
    tokens: Vec<ResumeToken>,
    seeds: Vec<[u8; 32]>,
}

fn pick<T: Clone>(rng: &mut Rng, v: &[T]) -> Option<T> {
    v.get(rng.below(v.len() as u64) as usize).cloned()
}

fn hostile_frame(rng: &mut Rng, session: SessionId, loot: &Loot) -> Vec<u8> {
    let valid = match rng.below(20) {
        0 => ClientFrame::OpenSession {
            version: if rng.below(8) == 0 {
                2
            } else {
                PROTOCOL_VERSION
            },
            language: random_tag(rng),
            region: match rng.below(3) {
                0 => None,
                1 => Some(tag("veneto")),
                _ => Some(random_tag(rng)),
            },
        },
        1 => ClientFrame::Resume {
            version: 1,
            token: pick(rng, &loot.tokens).unwrap_or(ResumeToken([rng.below(255) as u8; 32])),
            received_up_to: rng.next(),
        },
        2 => ClientFrame::Accept { session },
        3 => ClientFrame::End { session },
        4 | 5 => ClientFrame::Ack {
            session,
            up_to: rng.next(),
        },
        6 => {
            let n = rng.below(MAX_ENVELOPES_PER_SEND as u64 + 2) as usize;
            ClientFrame::Send {
                session,
                seq: rng.next(),
                envelopes: (0..n)
                    .map(|_| Envelope {
                        to: ParticipantId(rng.below(5) as u32),
                        payload: payload(rng),
                    })
                    .collect(),
            }
        }
        7 => ClientFrame::StaffProof {
            signature: [rng.below(255) as u8; 64],
        },
        8 => ClientFrame::Invite {
            session,
            language: random_tag(rng),
        },
        9 => ClientFrame::Transfer {
            session,
            desk: random_tag(rng),
        },
        10 => ClientFrame::CallJoin {
            session,
            offer: "v".repeat(if rng.below(2) == 0 { MAX_SDP_LEN } else { 10 }),
        },
        11 => ClientFrame::CallLeave { session },
        12 => ClientFrame::CallVideo {
            session,
            receive: rng.below(2) == 0,
        },
        13 => ClientFrame::ProofOfWork {
            seed: pick(rng, &loot.seeds).unwrap_or([rng.below(255) as u8; 32]),
            nonce: rng.next(),
        },
        14 => ClientFrame::StaffHello {
            version: 1,
            certificate: SignedCertificate {
                body: vec![rng.below(255) as u8; rng.below(300) as usize],
                signature: [7; 64],
            },
        },
        15 => ClientFrame::Leave { session },
        16 => ClientFrame::ObservatoryQuery,
        17 => ClientFrame::Join { session },
        18 => ClientFrame::TurnRequest { session },
        _ => ClientFrame::Ping,
    };
    let Ok(mut bytes) = wire::encode(&valid) else {
        return vec![0xff; 3];
    };
    match rng.below(6) {
        0..=2 => bytes,
        3 => {
            let i = rng.below(bytes.len() as u64) as usize;
            if let Some(b) = bytes.get_mut(i) {
                *b ^= 1 << rng.below(8);
            }
            bytes
        }
        4 => {
            bytes.truncate(rng.below(bytes.len() as u64) as usize);
            bytes
        }
        _ => (0..rng.below(200)).map(|_| rng.below(256) as u8).collect(),
    }
}

/// Check every output; feed the honest clients theirs; note what the hostile side learns.
fn route(b: &mut Bench, w: &mut Wired, hostile: &mut Vec<ConnId>, loot: &mut Loot) {
    for out in b.sb.take_outputs() {
        match out {
            Output::Frame(c, bytes) => {
                assert!(
                    bytes.len() <= MAX_FRAME_LEN,
                    "an output frame over the limit"
                );
                let frame: RelayFrame = wire::decode(&bytes).expect("relay frames decode");
                if let Some(client) = w.clients.get_mut(&c) {
                    client.handle_bytes(&bytes, 1).expect("valid frames");
                    continue;
                }
                match frame {
                    RelayFrame::SessionOpened { session, token, .. }
                    | RelayFrame::Joined { session, token, .. }
                    | RelayFrame::NewToken { session, token } => {
                        loot.sessions.push(session);
                        loot.tokens.push(token);
                    }
                    RelayFrame::ProofRequired { seed, .. } => loot.seeds.push(seed),
                    RelayFrame::Queue { entries, .. } => {
                        loot.sessions.extend(entries.iter().map(|e| e.session));
                    }
                    _ => {}
                }
            }
            Output::Close(c) => {
                assert!(
                    !w.clients.contains_key(&c),
                    "an honest connection was closed"
                );
                if hostile.contains(&c) {
                    b.sb.disconnected(c, b.now);
                    hostile.retain(|h| *h != c);
                }
            }
            Output::Call(_) | Output::GatherObservatory(_) => {}
        }
    }
}

#[test]
fn hostile_connections_cannot_hurt_an_honest_session() {
    let mut b = Bench::new(|c| {
        c.limits.frames_per_sec = 1e9;
        c.limits.frame_burst = 1e9;
        c.limits.bytes_per_sec = 1e12;
        c.limits.byte_burst = 1e12;
        c.limits.bytes_per_sec_per_addr = 1e12;
        c.limits.byte_burst_per_addr = 1e12;
        c.limits.sessions_per_min_per_addr = 1e9;
        c.limits.connections_per_min_per_addr = 1e9;
        c.limits.max_stored_per_participant = 50;
    });
    let mut w = Wired::new();
    let session = honest_pair(&mut b, &mut w);
    let mut loot = Loot {
        sessions: Vec::new(),
        tokens: Vec::new(),
        seeds: Vec::new(),
    };
    let mut hostile: Vec<ConnId> = Vec::new();

    // A long queue, in every served and several made-up languages.
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    for conn in 10_000..10_000 + WAITING {
        b.connect(conn);
        hostile.push(conn);
        let language = if conn % 4 == 0 {
            random_tag(&mut rng)
        } else {
            tag(LANGS[rng.below(LANGS.len() as u64) as usize])
        };
        b.frame(
            conn,
            &ClientFrame::OpenSession {
                version: PROTOCOL_VERSION,
                language,
                region: None,
            },
        );
        // Slowly at first, then a flood: proofs of work are asked.
        let fast = conn >= 10_000 + WAITING - WAITING / 5;
        b.now += Duration::from_millis(if fast { 5 } else { 180 });
    }
    route(&mut b, &mut w, &mut hostile, &mut loot);

    // A logged-in operator of another desk, acting on whatever it can reach.
    let rogue: ConnId = 5;
    b.connect(rogue);
    let mut op = Client::staff(
        b.org.public(),
        b.credential(77, Role::Operator, &["veneto"], &["en", "ro"]),
    );
    op.login().expect("login");
    for _ in 0..3 {
        while let Some(bytes) = op.poll_transmit() {
            b.sb.handle(rogue, &bytes, b.now);
        }
        for out in b.sb.take_outputs() {
            if let Output::Frame(5, bytes) = out {
                op.handle_bytes(&bytes, 1).expect("valid");
            }
        }
    }
    hostile.push(rogue);

    for round in 0..ROUNDS {
        if hostile.len() < 12 {
            let conn = 100_000 + round;
            b.connect(conn);
            hostile.push(conn);
        }
        let conn = hostile[rng.below(hostile.len() as u64) as usize];
        let target = match rng.below(4) {
            0 => session,
            1 => SessionId::random(),
            _ => pick(&mut rng, &loot.sessions).unwrap_or(session),
        };
        if rng.below(50) == 0 {
            // An ack flood.
            for _ in 0..200 {
                let bytes = wire::encode(&ClientFrame::Ack {
                    session: target,
                    up_to: rng.next(),
                })
                .expect("encode");
                b.sb.handle(conn, &bytes, b.now);
            }
        } else {
            let frame = hostile_frame(&mut rng, target, &loot);
            b.sb.handle(conn, &frame, b.now);
        }
        route(&mut b, &mut w, &mut hostile, &mut loot);
        if round % 500 == 0 {
            b.now += Duration::from_millis(700);
            b.sb.tick(b.now);
            w.pump(&mut b);
        }
    }

    // The honest conversation still works, both ways.
    w.pump(&mut b);
    w.said(1);
    w.said(2);
    w.client(1).send_text(session, "still here?").expect("send");
    w.pump(&mut b);
    w.client(2).send_text(session, "yes").expect("send");
    w.pump(&mut b);
    assert_eq!(w.said(2), vec!["still here?".to_owned()]);
    assert_eq!(w.said(1), vec!["yes".to_owned()]);
    assert!(w.closed.is_empty(), "no honest connection was closed");
}
