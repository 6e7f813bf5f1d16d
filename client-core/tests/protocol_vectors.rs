//! The hex test vectors in `docs/protocol.md` are what this implementation produces and
//! accepts, byte for byte, so another implementation can check itself against the doc.

use std::collections::BTreeMap;

use approdo_core::content::{Content, open_plaintext, seal_plaintext};
use approdo_core::identity::Role;
use approdo_core::ids::{ParticipantId, SessionId, Tag};
use approdo_core::noise::prologue;
use approdo_core::safety::{RosterMember, SafetyBook, code_of};
use approdo_core::wire::{
    self, ClientFrame, Envelope, ErrorCode, Payload, RelayFrame, SessionEvent,
};

const S: SessionId = SessionId([0x11; 16]);

fn tag(s: &str) -> Tag {
    Tag::new(s).expect("tag")
}

/// Every vector the document must carry, by name.
fn vectors() -> BTreeMap<&'static str, Vec<u8>> {
    let mut v = BTreeMap::new();
    let c = |f: ClientFrame| wire::encode(&f).expect("encode");
    let r = |f: RelayFrame| wire::encode(&f).expect("encode");
    v.insert(
        "open-session-en",
        c(ClientFrame::OpenSession {
            version: 1,
            language: tag("en"),
            region: None,
        }),
    );
    v.insert(
        "open-session-ro-toscana",
        c(ClientFrame::OpenSession {
            version: 1,
            language: tag("ro"),
            region: Some(tag("toscana")),
        }),
    );
    v.insert(
        "send-cipher",
        c(ClientFrame::Send {
            session: S,
            seq: 1,
            envelopes: vec![Envelope {
                to: ParticipantId(2),
                payload: Payload::Cipher {
                    nonce: 0,
                    data: vec![0xaa; 4],
                },
            }],
        }),
    );
    v.insert(
        "ack-300",
        c(ClientFrame::Ack {
            session: S,
            up_to: 300,
        }),
    );
    v.insert("ping", c(ClientFrame::Ping));
    v.insert(
        "event-arrived-operator",
        r(RelayFrame::Event {
            session: S,
            seq: 1,
            event: SessionEvent::Arrived {
                id: ParticipantId(2),
                role: Some(Role::Operator),
            },
        }),
    );
    v.insert(
        "queue-status-fallback",
        r(RelayFrame::QueueStatus {
            session: S,
            position: 2,
            wait_secs: 360,
            fallback: vec!["800 290 290".into()],
        }),
    );
    v.insert(
        "error-frame-too-large",
        r(RelayFrame::Error {
            code: ErrorCode::FrameTooLarge,
        }),
    );
    v.insert(
        "plaintext-text-ciao",
        seal_plaintext(&Content::Text {
            body: "ciao".into(),
            private: false,
        })
        .expect("seal")
        .to_vec(),
    );
    v.insert(
        "prologue-1-2",
        prologue(&S, ParticipantId(1), ParticipantId(2)),
    );
    let mut book = SafetyBook::default();
    book.record(
        ParticipantId(1),
        ParticipantId(1),
        ParticipantId(2),
        [0x01; 32],
        0,
    );
    let roster = [
        RosterMember {
            id: ParticipantId(1),
            role: None,
            serial: None,
        },
        RosterMember {
            id: ParticipantId(2),
            role: Some(Role::Operator),
            serial: Some(7),
        },
    ];
    let digest = book.roster_digest(&S, &roster).expect("complete roster");
    v.insert("roster-digest-1-2", digest.to_vec());
    v.insert("safety-code-1-2", code_of(&digest).into_bytes());
    v
}

/// Vectors in the document: a line `vector NAME`, then `hex: …` (continued on following
/// lines made only of hex digits and spaces) or `text: …` for the safety code.
fn documented() -> BTreeMap<String, Vec<u8>> {
    let doc = include_str!("../../docs/protocol.md");
    let mut out = BTreeMap::new();
    let mut name: Option<String> = None;
    let mut hex_of: Option<(String, String)> = None;
    let is_hex_line =
        |l: &str| !l.is_empty() && l.chars().all(|c| c.is_ascii_hexdigit() || c == ' ');
    for line in doc.lines() {
        let line = line.trim();
        if let Some((n, acc)) = &mut hex_of {
            if is_hex_line(line) {
                acc.push_str(line);
                continue;
            }
            let clean: String = acc.chars().filter(|c| !c.is_whitespace()).collect();
            out.insert(n.clone(), hex::decode(clean).expect("hex in the doc"));
            hex_of = None;
        }
        if let Some(n) = line.strip_prefix("vector ") {
            name = Some(n.trim().to_owned());
        } else if let (Some(n), Some(h)) = (&name, line.strip_prefix("hex:")) {
            hex_of = Some((n.clone(), h.to_owned()));
            name = None;
        } else if let (Some(n), Some(t)) = (&name, line.strip_prefix("text:")) {
            out.insert(n.clone(), t.trim().as_bytes().to_vec());
            name = None;
        }
    }
    if let Some((n, acc)) = hex_of {
        let clean: String = acc.chars().filter(|c| !c.is_whitespace()).collect();
        out.insert(n, hex::decode(clean).expect("hex in the doc"));
    }
    out
}

#[test]
fn the_documented_vectors_match_the_implementation() {
    let ours = vectors();
    let doc = documented();
    for (name, bytes) in &ours {
        let documented = doc.get(*name).unwrap_or_else(|| {
            panic!(
                "docs/protocol.md lacks vector {name}: hex: {}",
                hex::encode(bytes)
            )
        });
        assert_eq!(hex::encode(documented), hex::encode(bytes), "vector {name}");
    }
    assert_eq!(
        doc.len(),
        ours.len(),
        "the document has vectors the test does not know"
    );
}

#[test]
fn the_documented_frames_decode_back() {
    let doc = documented();
    let f: ClientFrame = wire::decode(&doc["send-cipher"]).expect("decode");
    assert!(matches!(f, ClientFrame::Send { seq: 1, .. }));
    let f: RelayFrame = wire::decode(&doc["queue-status-fallback"]).expect("decode");
    assert!(matches!(
        f,
        RelayFrame::QueueStatus {
            position: 2,
            wait_secs: 360,
            ..
        }
    ));
    let c = open_plaintext(&doc["plaintext-text-ciao"]).expect("open");
    assert_eq!(
        c,
        Content::Text {
            body: "ciao".into(),
            private: false
        }
    );
}
