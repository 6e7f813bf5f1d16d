//! The hex test vectors in `docs/protocol.md` are what this implementation produces and
//! accepts, byte for byte, so another implementation can check itself against the doc.

use std::collections::BTreeMap;

use approdo_core::content::{Content, open_plaintext, seal_plaintext};
use approdo_core::identity::Role;
use approdo_core::ids::{ParticipantId, ResumeToken, SessionId, Tag};
use approdo_core::noise::prologue;
use approdo_core::observatory::{
    Activator, AgeBand, Cell, Dimension, Exploitation, Gender, ObservatoryRecord,
    ObservatoryTables, Outcome, Seeker, StoredRecord, Table,
};
use approdo_core::pow;
use approdo_core::safety::{RosterMember, SafetyBook, code_of};
use approdo_core::wire::{
    self, ClientFrame, Envelope, ErrorCode, Invitation, Outlook, Payload, QueueEntry, RelayFrame,
    SessionEvent, TurnAnswer,
};
use blake2::{Blake2s256, Digest};

const S: SessionId = SessionId([0x11; 16]);

/// The proof-of-work vector's puzzle: seed of thirty-two `22` bytes, 12 leading zero bits.
const POW_SEED: [u8; 32] = [0x22; 32];
const POW_DIFFICULTY: u8 = 12;

/// The credential vector's passphrase and salt.
const CRED_PASSPHRASE: &str = "correct horse battery staple";
const CRED_SALT: [u8; 16] = [0x55; 16];
/// Argon2id parameters every credential file written today carries.
const CRED_MEMORY_KIB: u32 = 19 * 1024;
const CRED_PASSES: u32 = 2;

/// The record used by the observatory vectors.
fn record() -> ObservatoryRecord {
    ObservatoryRecord {
        gender: Gender::Female,
        age: AgeBand::From18To25,
        territory_emerged: Some(tag("toscana")),
        territory_exploitation: None,
        exploitation: vec![Exploitation::LabourAgriculture, Exploitation::SexualStreet],
        activator: Activator::StreetUnit,
        outcome: Outcome::Interview,
    }
}

/// The smallest nonce solving the documented puzzle, found by counting from 0 with the
/// hash written out as the document describes it (not through `pow::solve`).
fn pow_nonce_by_hand() -> u64 {
    (0u64..)
        .find(|n| leading_zero_bits(&pow_hash(*n)) >= u32::from(POW_DIFFICULTY))
        .expect("a solution exists")
}

fn pow_hash(nonce: u64) -> [u8; 32] {
    let mut h = Blake2s256::new();
    h.update(b"approdo/v1/pow");
    h.update(POW_SEED);
    h.update(nonce.to_be_bytes());
    h.finalize().into()
}

fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut bits = 0;
    for b in hash {
        if *b != 0 {
            return bits + b.leading_zeros();
        }
        bits += 8;
    }
    bits
}

/// Argon2id as the document gives it: version 0x13, `p = 1`, 32-byte output.
#[cfg(feature = "credential-files")]
fn credential_key(passphrase: &str, salt: &[u8], memory_kib: u32, passes: u32) -> [u8; 32] {
    use argon2::{Algorithm, Argon2, Params, Version};
    let params = Params::new(memory_kib, passes, 1, Some(32)).expect("params");
    let mut key = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut key)
        .expect("argon2id");
    key
}

/// The associated data of the credential cipher, as the document gives it.
fn credential_aad(memory_kib: u32, passes: u32) -> String {
    format!("approdo-credential/1|argon2id|{memory_kib}|{passes}")
}

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
            version: 2,
            language: tag("en"),
            region: None,
        }),
    );
    v.insert(
        "open-session-ro-toscana",
        c(ClientFrame::OpenSession {
            version: 2,
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
            outlook: Outlook::SeekingInterpreter,
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
    integrity_vectors(&mut v);
    intake_vectors(&mut v);
    turn_vectors(&mut v);
    v
}

/// The wire additions for integrity: restart, several envelopes to one recipient, proof of
/// work, token rotation, capped views with totals, the two new error codes, roster and
/// transfer contents.
fn integrity_vectors(v: &mut BTreeMap<&'static str, Vec<u8>>) {
    let c = |f: ClientFrame| wire::encode(&f).expect("encode");
    let r = |f: RelayFrame| wire::encode(&f).expect("encode");
    let plain = |content: Content| seal_plaintext(&content).expect("seal").to_vec();
    v.insert(
        "send-two-to-one",
        c(ClientFrame::Send {
            session: S,
            seq: 3,
            envelopes: vec![
                Envelope {
                    to: ParticipantId(2),
                    payload: Payload::Cipher {
                        nonce: 0,
                        data: vec![0xaa; 2],
                    },
                },
                Envelope {
                    to: ParticipantId(2),
                    payload: Payload::Cipher {
                        nonce: 1,
                        data: vec![0xbb; 2],
                    },
                },
            ],
        }),
    );
    v.insert(
        "send-restart",
        c(ClientFrame::Send {
            session: S,
            seq: 4,
            envelopes: vec![Envelope {
                to: ParticipantId(3),
                payload: Payload::Restart,
            }],
        }),
    );
    v.insert(
        "proof-required",
        r(RelayFrame::ProofRequired {
            seed: POW_SEED,
            difficulty: POW_DIFFICULTY,
        }),
    );
    let nonce = pow_nonce_by_hand();
    v.insert("pow-solution", nonce.to_string().into_bytes());
    v.insert("pow-hash", pow_hash(nonce).to_vec());
    v.insert(
        "proof-of-work",
        c(ClientFrame::ProofOfWork {
            seed: POW_SEED,
            nonce,
        }),
    );
    v.insert(
        "rejoin",
        c(ClientFrame::Rejoin {
            version: 2,
            token: ResumeToken([0x33; 32]),
        }),
    );
    // On QUIC (§1.5) each frame is preceded by its length, a big-endian u32.
    let quic = |frame: Vec<u8>| -> Vec<u8> {
        let len = u32::try_from(frame.len()).expect("a small frame");
        let mut out = len.to_be_bytes().to_vec();
        out.extend(frame);
        out
    };
    v.insert("quic-ping", quic(c(ClientFrame::Ping)));
    v.insert(
        "quic-error-frame-too-large",
        quic(r(RelayFrame::Error {
            code: ErrorCode::FrameTooLarge,
        })),
    );
    v.insert(
        "plaintext-not-safe",
        seal_plaintext(&Content::NotSafe).expect("seal").to_vec(),
    );
    v.insert(
        "new-token",
        r(RelayFrame::NewToken {
            session: S,
            token: ResumeToken([0x33; 32]),
        }),
    );
    v.insert(
        "queue-one-of-7",
        r(RelayFrame::Queue {
            entries: vec![QueueEntry {
                session: S,
                language: tag("en"),
                desk: tag("national"),
                waiting_secs: 42,
                away: true,
            }],
            total: 7,
        }),
    );
    v.insert(
        "invitations-one",
        r(RelayFrame::Invitations {
            entries: vec![Invitation {
                session: S,
                language: tag("ro"),
                desk: tag("toscana"),
                waiting_secs: 5,
            }],
            total: 1,
        }),
    );
    v.insert(
        "error-quota-exceeded",
        r(RelayFrame::Error {
            code: ErrorCode::QuotaExceeded,
        }),
    );
    v.insert(
        "error-replaced",
        r(RelayFrame::Error {
            code: ErrorCode::Replaced,
        }),
    );
    v.insert(
        "plaintext-roster",
        plain(Content::Roster {
            members: vec![ParticipantId(1), ParticipantId(2), ParticipantId(3)],
            digest: [0x44; 32],
        }),
    );
    v.insert(
        "plaintext-transferred",
        plain(Content::Transferred {
            desk: tag("toscana"),
        }),
    );
}

/// The intake's and the observatory's encodings, and the credential file's key derivation.
fn intake_vectors(v: &mut BTreeMap<&'static str, Vec<u8>>) {
    let c = |f: ClientFrame| wire::encode(&f).expect("encode");
    let r = |f: RelayFrame| wire::encode(&f).expect("encode");
    v.insert("seeker-myself", enc(&Seeker::Myself));
    v.insert(
        "seeker-worker-street-unit",
        enc(&Seeker::Worker(Activator::StreetUnit)),
    );
    v.insert(
        "plaintext-intake-myself",
        seal_plaintext(&Content::Intake {
            seeker: Seeker::Myself,
        })
        .expect("seal")
        .to_vec(),
    );
    v.insert("observatory-record", enc(&record()));
    let stored = StoredRecord {
        month: "2026-11".into(),
        record: record(),
    };
    v.insert("stored-record", enc(&stored));
    v.insert(
        "close-case",
        c(ClientFrame::CloseCase {
            session: S,
            record: record(),
        }),
    );
    v.insert(
        "observatory-one",
        r(RelayFrame::Observatory {
            records: vec![stored],
        }),
    );
    v.insert(
        "observatory-tables",
        r(RelayFrame::ObservatoryTables {
            tables: ObservatoryTables {
                months: vec!["2026-11".into()],
                cases: Cell::Count(7),
                cases_by_month: vec![Cell::Count(7)],
                tables: vec![Table {
                    dimension: Dimension::Gender,
                    values: vec!["female".into(), "male".into()],
                    total: vec![Cell::Count(5), Cell::Suppressed],
                    by_month: vec![vec![Cell::Count(5), Cell::Suppressed]],
                }],
            },
        }),
    );
    v.insert(
        "credential-aad",
        credential_aad(CRED_MEMORY_KIB, CRED_PASSES).into_bytes(),
    );
    #[cfg(feature = "credential-files")]
    v.insert(
        "credential-key",
        credential_key(CRED_PASSPHRASE, &CRED_SALT, CRED_MEMORY_KIB, CRED_PASSES).to_vec(),
    );
}

/// The TURN vectors' secret, expiry and random id.
const TURN_SECRET: &[u8] = b"approdo-turn-test-secret";
const TURN_EXPIRY: u64 = 1_798_761_600;
const TURN_URL: &str = "turn:127.0.0.1:3478?transport=tcp";

/// The TURN REST username and credential as the document gives them:
/// `expiry ":" hex(id)` and `base64(HMAC-SHA1(secret, username))`.
fn turn_username_and_credential() -> (String, String) {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let id: Vec<u8> = (0u8..16).collect();
    let username = format!("{TURN_EXPIRY}:{}", hex::encode(id));
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(TURN_SECRET).expect("any key length");
    mac.update(username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

/// TURN for calls when UDP is blocked: the request, an answer with credentials, a
/// refusal, and the credential scheme itself.
fn turn_vectors(v: &mut BTreeMap<&'static str, Vec<u8>>) {
    let c = |f: ClientFrame| wire::encode(&f).expect("encode");
    let r = |f: RelayFrame| wire::encode(&f).expect("encode");
    let (username, credential) = turn_username_and_credential();
    v.insert("turn-username", username.clone().into_bytes());
    v.insert("turn-credential", credential.clone().into_bytes());
    v.insert("turn-request", c(ClientFrame::TurnRequest { session: S }));
    v.insert(
        "turn-credentials",
        r(RelayFrame::Turn {
            session: S,
            answer: TurnAnswer::Credentials {
                urls: vec![TURN_URL.into()],
                username,
                credential,
                lifetime_secs: 300,
            },
        }),
    );
    v.insert(
        "turn-not-in-call",
        r(RelayFrame::Turn {
            session: S,
            answer: TurnAnswer::NotInCall,
        }),
    );
}

/// postcard of any value, for the vectors of types that are not frames.
fn enc<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("encode")
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
    // Every missing or different vector at once, so the document can be fixed in one go.
    let wrong: Vec<String> = ours
        .iter()
        .filter(|(name, bytes)| doc.get(**name) != Some(*bytes))
        .map(|(name, bytes)| format!("vector {name}\nhex: {}", hex::encode(bytes)))
        .collect();
    assert!(
        wrong.is_empty(),
        "docs/protocol.md lacks or differs on:\n{}",
        wrong.join("\n")
    );
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

#[test]
fn the_documented_pow_solution_is_what_the_core_finds() {
    let doc = documented();
    let nonce: u64 = String::from_utf8(doc["pow-solution"].clone())
        .expect("text")
        .parse()
        .expect("a decimal nonce");
    assert_eq!(pow::solve(&POW_SEED, POW_DIFFICULTY), Some(nonce));
    assert!(pow::verify(&POW_SEED, POW_DIFFICULTY, nonce));
    assert!(!pow::verify(&POW_SEED, POW_DIFFICULTY, nonce - 1));
    let f: ClientFrame = wire::decode(&doc["proof-of-work"]).expect("decode");
    assert_eq!(
        f,
        ClientFrame::ProofOfWork {
            seed: POW_SEED,
            nonce
        }
    );
}

#[test]
fn the_documented_new_frames_decode_back() {
    let doc = documented();
    let f: ClientFrame = wire::decode(&doc["send-two-to-one"]).expect("decode");
    let ClientFrame::Send { envelopes, .. } = f else {
        panic!("a Send")
    };
    assert!(envelopes.iter().all(|e| e.to == ParticipantId(2)));
    let f: RelayFrame = wire::decode(&doc["queue-one-of-7"]).expect("decode");
    assert!(matches!(f, RelayFrame::Queue { ref entries, total: 7 } if entries.len() == 1));
    let c = open_plaintext(&doc["plaintext-transferred"]).expect("open");
    assert_eq!(
        c,
        Content::Transferred {
            desk: tag("toscana")
        }
    );
    let s: StoredRecord = postcard::from_bytes(&doc["stored-record"]).expect("decode");
    assert_eq!(s.record, record());
}

/// The documented file format is what the core writes: JSON fields, Argon2id parameters,
/// salt and nonce sizes, associated data, and the plaintext layout byte by byte
/// (`noise_secret` 32, `signing_seed` 32, then `postcard(SignedCertificate)`, nothing after).
#[cfg(feature = "credential-files")]
#[test]
fn a_credential_file_has_the_documented_layout() {
    use base64::{Engine, engine::general_purpose::STANDARD as B64};
    use chacha20poly1305::aead::{Aead, KeyInit, Payload as AeadPayload};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};

    let (org, cred) = fixed_credential();
    let text = cred.to_file(CRED_PASSPHRASE).expect("seal");
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let fields: Vec<&str> = json
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = fields.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "format",
            "kdf",
            "memory_kib",
            "nonce",
            "passes",
            "salt",
            "sealed"
        ]
    );
    assert_eq!(json["format"], "approdo-credential/1");
    assert_eq!(json["kdf"], "argon2id");
    assert_eq!(json["memory_kib"], CRED_MEMORY_KIB);
    assert_eq!(json["passes"], CRED_PASSES);
    let b64 = |k: &str| {
        B64.decode(json[k].as_str().expect("a string"))
            .expect("base64")
    };
    let (salt, nonce, sealed) = (b64("salt"), b64("nonce"), b64("sealed"));
    assert_eq!(salt.len(), 16);
    assert_eq!(nonce.len(), 24);

    let key = credential_key(CRED_PASSPHRASE, &salt, CRED_MEMORY_KIB, CRED_PASSES);
    let plain = XChaCha20Poly1305::new((&key).into())
        .decrypt(
            XNonce::from_slice(&nonce),
            AeadPayload {
                msg: &sealed,
                aad: credential_aad(CRED_MEMORY_KIB, CRED_PASSES).as_bytes(),
            },
        )
        .expect("the documented key and associated data open it");
    assert_eq!(sealed.len(), plain.len() + 16, "a 16-byte tag");
    assert_eq!(&plain[..32], &cred.noise.secret()[..]);
    assert_eq!(&plain[32..64], &cred.signing.seed()[..]);
    assert_eq!(&plain[64..], &enc(&cred.certificate)[..]);

    // And a file written by hand from the document alone opens in the core.
    let written = XChaCha20Poly1305::new((&key).into())
        .encrypt(
            XNonce::from_slice(&[0x66; 24]),
            AeadPayload {
                msg: &plain,
                aad: credential_aad(CRED_MEMORY_KIB, CRED_PASSES).as_bytes(),
            },
        )
        .expect("seal");
    let by_hand = serde_json::json!({
        "format": "approdo-credential/1",
        "kdf": "argon2id",
        "memory_kib": CRED_MEMORY_KIB,
        "passes": CRED_PASSES,
        "salt": B64.encode(&salt),
        "nonce": B64.encode([0x66; 24]),
        "sealed": B64.encode(written),
    })
    .to_string();
    let opened = approdo_core::credential::StaffCredential::from_file(
        &by_hand,
        CRED_PASSPHRASE,
        &org.public(),
    )
    .expect("opens");
    assert_eq!(opened.info, cred.info);
}

/// A credential from fixed seeds, so the test needs no randomness but the file's own.
#[cfg(feature = "credential-files")]
fn fixed_credential() -> (
    approdo_core::identity::OrgSigningKey,
    approdo_core::credential::StaffCredential,
) {
    use approdo_core::identity::{Certificate, OrgSigningKey, StaffSigningKey};
    use approdo_core::noise::NoiseStaticKey;
    let org = OrgSigningKey::from_seed(&[0x01; 32]);
    let noise = NoiseStaticKey::from_secret(&[0x02; 32]);
    let signing = StaffSigningKey::from_seed(&[0x03; 32]);
    let info = Certificate {
        serial: 7,
        role: Role::Operator,
        label: "op-7".into(),
        desks: vec![tag("national")],
        languages: vec![tag("en"), tag("it")],
        noise_key: noise.public(),
        signing_key: signing.public(),
        not_after: 4_102_444_800,
    };
    let certificate = org.certify(&info);
    (
        org,
        approdo_core::credential::StaffCredential {
            noise,
            signing,
            certificate,
            info,
        },
    )
}

#[test]
fn the_documented_turn_frames_decode_back() {
    let doc = documented();
    let f: ClientFrame = wire::decode(&doc["turn-request"]).expect("decode");
    assert_eq!(f, ClientFrame::TurnRequest { session: S });
    let f: RelayFrame = wire::decode(&doc["turn-credentials"]).expect("decode");
    let RelayFrame::Turn {
        answer:
            TurnAnswer::Credentials {
                username,
                credential,
                ..
            },
        ..
    } = f
    else {
        panic!("credentials")
    };
    assert_eq!(username.as_bytes(), &doc["turn-username"][..]);
    assert_eq!(credential.as_bytes(), &doc["turn-credential"][..]);
}
