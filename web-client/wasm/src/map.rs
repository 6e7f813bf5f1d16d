//! Plain-Rust conversions between the core's types and the strings and JSON of
//! `web-client/CONTRACT.md`. Nothing here touches JavaScript, so it is tested natively.

use std::io::Write;

use approdo_core::Error;
use approdo_core::client::{Alarm, Event};
use approdo_core::error::CertificateProblem;
use approdo_core::identity::{OrgPublicKey, Role};
use approdo_core::ids::{SessionId, Tag};
use approdo_core::observatory::{Activator, Cell, DIMENSIONS, ObservatoryRecord, Seeker};
use approdo_core::safety::SafetyCode;
use approdo_core::wire::{ErrorCode, Invitation, Outlook, QueueEntry, TurnAnswer};
use serde_json::{Map, Value, json};
use zeroize::{Zeroize, Zeroizing};

// ----- codes: one table per indicator, shared with the terminal client -----------------

pub use approdo_core::observatory::{
    ACTIVATORS, AGES, EXPLOITATIONS, GENDERS, OUTCOMES, code_of, parse_code,
};

/// A count of the observatory's tables: the number, or `null` when suppressed.
fn cell_to_value(c: &Cell) -> Value {
    match c {
        Cell::Count(n) => (*n).into(),
        Cell::Suppressed => Value::Null,
    }
}

/// A row of counts.
fn cells_to_value(cells: &[Cell]) -> Value {
    cells.iter().map(cell_to_value).collect()
}

/// The message of the `Error` thrown to JavaScript for a core error.
pub fn error_code(e: &Error) -> &'static str {
    match e {
        Error::Credential => "credential",
        Error::Malformed => "malformed",
        Error::FrameTooLarge => "frame-too-large",
        Error::State(_) => "state",
        Error::Invalid(_) => "invalid",
        Error::Certificate(_) => "certificate",
        Error::Handshake | Error::Decrypt | Error::NonceExhausted => "state",
    }
}

/// The `reason` of a `peer-rejected` event: finer than [`error_code`], for the local user.
pub fn rejection_reason(e: &Error) -> &'static str {
    match e {
        Error::Handshake => "handshake",
        Error::Decrypt => "decrypt",
        Error::NonceExhausted => "nonce-exhausted",
        Error::Certificate(p) => match p {
            CertificateProblem::BadSignature => "certificate-bad-signature",
            CertificateProblem::Expired => "certificate-expired",
            CertificateProblem::Revoked => "certificate-revoked",
            CertificateProblem::WrongRole => "certificate-wrong-role",
            CertificateProblem::KeyMismatch => "certificate-key-mismatch",
        },
        other => error_code(other),
    }
}

/// The code of a relay error.
pub fn relay_error_code(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Malformed => "malformed",
        ErrorCode::FrameTooLarge => "frame-too-large",
        ErrorCode::RateLimited => "rate-limited",
        ErrorCode::AuthFailed => "auth-failed",
        ErrorCode::NotAllowed => "not-allowed",
        ErrorCode::UnknownSession => "unknown-session",
        ErrorCode::SessionFull => "session-full",
        ErrorCode::VersionMismatch => "version-mismatch",
        ErrorCode::IdleTimeout => "idle-timeout",
        ErrorCode::SlowConsumer => "slow-consumer",
        ErrorCode::ResumeFailed => "resume-failed",
        ErrorCode::Busy => "busy",
        ErrorCode::QuotaExceeded => "quota-exceeded",
        ErrorCode::Replaced => "replaced",
    }
}

/// The page's name for who can answer a waiting person (`CONTRACT.md`, `queue-status`).
pub fn outlook_code(outlook: Outlook) -> &'static str {
    match outlook {
        Outlook::Speaker => "speaker",
        Outlook::WithInterpreter => "with-interpreter",
        Outlook::SeekingInterpreter => "seeking-interpreter",
        Outlook::NobodyOnline => "nobody-online",
    }
}

/// `person`, `operator`, `interpreter` or `coordinator`.
pub fn role_code(role: Option<Role>) -> &'static str {
    role.map_or("person", Role::as_str)
}

/// `myself`, or the activator code of a worker.
pub fn seeker_code(seeker: Seeker) -> &'static str {
    match seeker {
        Seeker::Myself => "myself",
        Seeker::Worker(a) => code_of(ACTIVATORS, &a),
    }
}

/// Parse `myself` or a worker's activator code (`person` is not a worker: use `myself`).
pub fn parse_seeker(code: &str) -> Result<Seeker, Error> {
    if code == "myself" {
        return Ok(Seeker::Myself);
    }
    match parse_code(ACTIVATORS, code) {
        Some(Activator::Person) | None => Err(Error::Invalid("seeker")),
        Some(a) => Ok(Seeker::Worker(a)),
    }
}

// ----- inputs --------------------------------------------------------------------------

/// The organisation key from 64 hex digits.
pub fn parse_org(hex_key: &str) -> Result<OrgPublicKey, Error> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(hex_key.trim(), &mut key)
        .map_err(|_| Error::Invalid("organisation key"))?;
    Ok(OrgPublicKey(key))
}

/// A session id from lowercase hex.
pub fn parse_session(hex_id: &str) -> Result<SessionId, Error> {
    SessionId::from_hex(hex_id)
}

/// A language, desk or region tag.
pub fn parse_tag(tag: &str) -> Result<Tag, Error> {
    Tag::new(tag)
}

const RECORD_KEYS: &[&str] = &[
    "gender",
    "age",
    "emerged",
    "exploited",
    "exploitation",
    "activator",
    "outcome",
];

/// Parse the record JSON of `closeCase`. Every problem is [`Error::Invalid`]; unknown keys,
/// unknown codes and repeated exploitation types are refused. A missing region is `null`.
pub fn parse_record(text: &str) -> Result<ObservatoryRecord, Error> {
    const BAD: Error = Error::Invalid("record");
    let value: Value = serde_json::from_str(text).map_err(|_| BAD)?;
    let obj = value.as_object().ok_or(BAD)?;
    if obj.keys().any(|k| !RECORD_KEYS.contains(&k.as_str())) {
        return Err(BAD);
    }
    let code = |key: &str| obj.get(key).and_then(Value::as_str).ok_or(BAD);
    let region = |key: &str| match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Tag::new(s.as_str()).map(Some).map_err(|_| BAD),
        Some(_) => Err(BAD),
    };
    let mut exploitation = Vec::new();
    for x in obj
        .get("exploitation")
        .and_then(Value::as_array)
        .ok_or(BAD)?
    {
        let e = x
            .as_str()
            .and_then(|c| parse_code(EXPLOITATIONS, c))
            .ok_or(BAD)?;
        if exploitation.contains(&e) {
            return Err(BAD);
        }
        exploitation.push(e);
    }
    Ok(ObservatoryRecord {
        gender: parse_code(GENDERS, code("gender")?).ok_or(BAD)?,
        age: parse_code(AGES, code("age")?).ok_or(BAD)?,
        territory_emerged: region("emerged")?,
        territory_exploitation: region("exploited")?,
        exploitation,
        activator: parse_code(ACTIVATORS, code("activator")?).ok_or(BAD)?,
        outcome: parse_code(OUTCOMES, code("outcome")?).ok_or(BAD)?,
    })
}

/// A record as the contract's JSON object (the inverse of [`parse_record`]).
pub fn record_to_value(r: &ObservatoryRecord) -> Value {
    json!({
        "gender": code_of(GENDERS, &r.gender),
        "age": code_of(AGES, &r.age),
        "emerged": r.territory_emerged.as_ref().map(Tag::as_str),
        "exploited": r.territory_exploitation.as_ref().map(Tag::as_str),
        "exploitation": r.exploitation.iter().map(|e| code_of(EXPLOITATIONS, e)).collect::<Vec<_>>(),
        "activator": code_of(ACTIVATORS, &r.activator),
        "outcome": code_of(OUTCOMES, &r.outcome),
    })
}

// ----- events --------------------------------------------------------------------------

fn entry(session: &SessionId, language: &Tag, desk: &Tag, waiting_secs: u32) -> Value {
    json!({
        "session": session.to_hex(),
        "language": language.as_str(),
        "desk": desk.as_str(),
        "waitingSecs": waiting_secs,
    })
}

fn queue_entry(e: &QueueEntry) -> Value {
    let mut v = entry(&e.session, &e.language, &e.desk, e.waiting_secs);
    if let Value::Object(m) = &mut v {
        m.insert("away".to_owned(), Value::Bool(e.away));
    }
    v
}

fn invitation(e: &Invitation) -> Value {
    entry(&e.session, &e.language, &e.desk, e.waiting_secs)
}

/// An event as the contract's JSON object.
pub fn event_to_value(event: &Event) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    let kind = match event {
        Event::SessionOpened { session } => {
            put("session", session.to_hex().into());
            "session-opened"
        }
        Event::QueueStatus {
            session,
            position,
            wait_secs,
            fallback,
            outlook,
        } => {
            put("session", session.to_hex().into());
            put("position", (*position).into());
            put("waitSecs", (*wait_secs).into());
            put("fallback", fallback.clone().into());
            put("outlook", outlook_code(*outlook).into());
            "queue-status"
        }
        Event::LoggedIn => "logged-in",
        Event::Queue { entries, total } => {
            put("entries", entries.iter().map(queue_entry).collect());
            put("total", (*total).into());
            "queue"
        }
        Event::Invitations { entries, total } => {
            put("entries", entries.iter().map(invitation).collect());
            put("total", (*total).into());
            "invitations"
        }
        Event::Joined { session } => {
            put("session", session.to_hex().into());
            "joined"
        }
        Event::PeerArrived { session, peer } => {
            put("session", session.to_hex().into());
            put("peer", peer.0.into());
            "peer-arrived"
        }
        Event::PeerVerified {
            session,
            peer,
            role,
            label,
        } => {
            put("session", session.to_hex().into());
            put("peer", peer.0.into());
            put("role", role.map(Role::as_str).into());
            put("label", label.clone().into());
            "peer-verified"
        }
        Event::PeerRejected {
            session,
            peer,
            reason,
        } => {
            put("session", session.to_hex().into());
            put("peer", peer.0.into());
            put("reason", rejection_reason(reason).into());
            "peer-rejected"
        }
        Event::PeerLeft { session, peer } => {
            put("session", session.to_hex().into());
            put("peer", peer.0.into());
            "peer-left"
        }
        Event::Message {
            session,
            from,
            body,
            private,
        } => {
            put("session", session.to_hex().into());
            put("from", from.0.into());
            put("body", body.as_str().into());
            put("private", (*private).into());
            "message"
        }
        Event::SafetyCode { session, code } => {
            put("session", session.to_hex().into());
            let (state, digits) = match code {
                SafetyCode::Pending => ("pending", None),
                SafetyCode::Mismatch => ("mismatch", None),
                SafetyCode::Ready(d) => ("ready", Some(d.as_str())),
            };
            put("state", state.into());
            put("code", digits.into());
            "safety-code"
        }
        Event::MembershipAlarm { session, alarm } => {
            put("session", session.to_hex().into());
            let (kind, peer, unknown) = match alarm {
                Alarm::SecondPerson { peer } => ("second-person", *peer, None),
                Alarm::RosterMismatch { peer } => ("roster-mismatch", *peer, None),
                Alarm::UnknownMember { peer, unknown } => {
                    ("unknown-member", *peer, Some(unknown.0))
                }
                Alarm::RosterUnconfirmed { peer } => ("roster-unconfirmed", *peer, None),
            };
            put("alarm", kind.into());
            put("peer", peer.0.into());
            put("unknown", unknown.into());
            "membership-alarm"
        }
        Event::RosterAgreed { session, members } => {
            put("session", session.to_hex().into());
            put(
                "members",
                members.iter().map(|m| Value::from(m.0)).collect(),
            );
            "roster-agreed"
        }
        Event::ChannelRestarted { session, peer } => {
            put("session", session.to_hex().into());
            put("peer", peer.0.into());
            "channel-restarted"
        }
        Event::BacklogFull { session } => {
            put("session", session.to_hex().into());
            "backlog-full"
        }
        Event::NotSafe { session, from } => {
            put("session", session.to_hex().into());
            put("from", from.0.into());
            "not-safe"
        }
        Event::Transferred { session, desk } => {
            put("session", session.to_hex().into());
            put("desk", desk.as_str().into());
            "transferred"
        }
        Event::Undecryptable { session, peer } => {
            put("session", session.to_hex().into());
            put("peer", peer.0.into());
            "undecryptable"
        }
        Event::Resumed { session, intact } => {
            put("session", session.to_hex().into());
            put("intact", (*intact).into());
            "resumed"
        }
        Event::SessionEnded { session } => {
            put("session", session.to_hex().into());
            "session-ended"
        }
        Event::RelayError { code } => {
            put("code", relay_error_code(*code).into());
            "relay-error"
        }
        Event::Intake {
            session,
            from,
            seeker,
        } => {
            put("session", session.to_hex().into());
            put("from", from.0.into());
            put("seeker", seeker_code(*seeker).into());
            "intake"
        }
        Event::HandoverNote {
            session,
            from,
            desk,
            body,
        } => {
            put("session", session.to_hex().into());
            put("from", from.0.into());
            put("desk", desk.as_str().into());
            put("body", body.as_str().into());
            "handover-note"
        }
        Event::ObservatoryTables { tables } => {
            put("months", tables.months.clone().into());
            put("cases", cell_to_value(&tables.cases));
            put("byMonth", cells_to_value(&tables.cases_by_month));
            let list = tables
                .tables
                .iter()
                .map(|t| {
                    json!({
                        "dimension": code_of(DIMENSIONS, &t.dimension),
                        "values": t.values,
                        "total": cells_to_value(&t.total),
                        "byMonth": t.by_month.iter().map(|r| cells_to_value(r)).collect::<Vec<_>>(),
                    })
                })
                .collect();
            put("tables", list);
            "observatory"
        }
        Event::CallAnswer { session, sdp } => {
            put("session", session.to_hex().into());
            put("sdp", sdp.clone().into());
            "call-answer"
        }
        Event::Turn { session, answer } => {
            put("session", session.to_hex().into());
            match answer {
                TurnAnswer::Credentials {
                    urls,
                    username,
                    credential,
                    lifetime_secs,
                } => {
                    put("urls", urls.clone().into());
                    put("username", username.clone().into());
                    put("credential", credential.clone().into());
                    put("lifetimeSecs", (*lifetime_secs).into());
                }
                TurnAnswer::Unavailable => put("refused", "unavailable".into()),
                TurnAnswer::NotInCall => put("refused", "not-in-call".into()),
                TurnAnswer::TooMany => put("refused", "too-many".into()),
            }
            "turn"
        }
        Event::CallMembers { session, members } => {
            put("session", session.to_hex().into());
            put("members", members.iter().map(|p| p.0).collect());
            "call-members"
        }
        Event::MediaKey {
            session,
            participant,
            epoch,
            own,
            key,
        } => {
            put("session", session.to_hex().into());
            put("participant", participant.0.into());
            put("epoch", (*epoch).into());
            put("own", (*own).into());
            put("key", hex::encode(&key[..]).into());
            "media-key"
        }
    };
    m.insert("type".to_owned(), kind.into());
    Value::Object(m)
}

/// Overwrite every string inside a JSON value (message bodies, notes) before it is freed.
pub fn wipe(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Counts the bytes written to it.
struct Count(usize);

impl Write for Count {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An event as JSON text. The buffer is sized exactly first, so no partial copy of a
/// message is left behind by a reallocation, and every intermediate string is wiped.
pub fn event_to_json(event: &Event) -> Zeroizing<String> {
    let mut value = event_to_value(event);
    let mut count = Count(0);
    let mut out = Zeroizing::new(String::new());
    if serde_json::to_writer(&mut count, &value).is_ok() {
        let mut buf = Vec::with_capacity(count.0);
        if serde_json::to_writer(&mut buf, &value).is_ok() {
            // serde_json writes UTF-8 only; should that ever fail, the bytes are wiped.
            match String::from_utf8(buf) {
                Ok(s) => *out = s,
                Err(e) => e.into_bytes().zeroize(),
            }
        }
    }
    wipe(&mut value);
    out
}

#[cfg(test)]
mod tests {
    use approdo_core::ids::ParticipantId;
    use approdo_core::observatory::{Dimension, ObservatoryTables, Table};

    use super::*;
    use approdo_core::observatory::{AgeBand, Exploitation, Gender, Outcome};

    fn session() -> SessionId {
        SessionId([0xab; approdo_core::limits::SESSION_ID_LEN])
    }

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("valid JSON")
    }

    #[test]
    fn record_round_trip() {
        let text = r#"{"gender":"female","age":"under-18","emerged":"sicilia","exploited":null,
            "exploitation":["labour-agriculture","sexual-street"],"activator":"street-unit",
            "outcome":"shelter"}"#;
        let record = parse_record(text).expect("valid record");
        assert_eq!(
            record,
            ObservatoryRecord {
                gender: Gender::Female,
                age: AgeBand::Under18,
                territory_emerged: Some(Tag::new("sicilia").expect("tag")),
                territory_exploitation: None,
                exploitation: vec![Exploitation::LabourAgriculture, Exploitation::SexualStreet],
                activator: Activator::StreetUnit,
                outcome: Outcome::ShelterFirstAssistance,
            }
        );
        assert_eq!(record_to_value(&record), parse(text));
        let again = parse_record(&record_to_value(&record).to_string()).expect("round trip");
        assert_eq!(again, record);
    }

    #[test]
    fn every_code_round_trips() {
        fn check<T: Copy + PartialEq + std::fmt::Debug>(table: &[(T, &'static str)]) {
            for (v, c) in table {
                assert_eq!(code_of(table, v), *c);
                assert_eq!(parse_code(table, c), Some(*v));
            }
        }
        check(GENDERS);
        check(AGES);
        check(EXPLOITATIONS);
        check(ACTIVATORS);
        check(OUTCOMES);
        assert_eq!(parse_seeker("myself"), Ok(Seeker::Myself));
        assert_eq!(
            parse_seeker("police"),
            Ok(Seeker::Worker(Activator::PoliceCarabinieri))
        );
        assert!(parse_seeker("person").is_err());
        assert_eq!(
            seeker_code(Seeker::Worker(Activator::CasSprar)),
            "cas-sprar"
        );
    }

    #[test]
    fn bad_records_are_invalid() {
        let good = r#"{"gender":"male","age":"unknown","emerged":null,"exploited":null,"exploitation":[],"activator":"person","outcome":"referral"}"#;
        assert!(parse_record(good).is_ok());
        for bad in [
            "not json",
            "[]",
            r#"{"gender":"male"}"#,
            &good.replace("\"male\"", "\"M\""),
            &good.replace("[]", r#"["begging","begging"]"#),
            &good.replace("\"emerged\":null", "\"emerged\":\"Sicilia!\""),
            &good.replace("\"outcome\"", "\"note\":\"free text\",\"outcome\""),
        ] {
            assert_eq!(parse_record(bad), Err(Error::Invalid("record")), "{bad}");
        }
    }

    #[test]
    fn message_event_shape() {
        let event = Event::Message {
            session: session(),
            from: ParticipantId(2),
            body: Zeroizing::new("ciao \"tutti\" — 你好".to_owned()),
            private: true,
        };
        let text = event_to_json(&event);
        assert_eq!(
            parse(&text),
            json!({"type": "message", "session": "ab".repeat(16), "from": 2,
                   "body": "ciao \"tutti\" — 你好", "private": true})
        );
    }

    #[test]
    fn queue_status_event_shape() {
        let event = Event::QueueStatus {
            session: session(),
            position: 3,
            wait_secs: 240,
            fallback: vec!["800 290 290".to_owned()],
            outlook: Outlook::SeekingInterpreter,
        };
        assert_eq!(
            parse(&event_to_json(&event)),
            json!({"type": "queue-status", "session": "ab".repeat(16), "position": 3,
                   "waitSecs": 240, "fallback": ["800 290 290"],
                   "outlook": "seeking-interpreter"})
        );
    }

    #[test]
    fn other_event_shapes() {
        let ready = Event::SafetyCode {
            session: session(),
            code: SafetyCode::Ready("1234 5678 9012 3456".into()),
        };
        assert_eq!(
            parse(&event_to_json(&ready)),
            json!({"type": "safety-code", "session": "ab".repeat(16), "state": "ready",
                   "code": "1234 5678 9012 3456"})
        );
        let verified = Event::PeerVerified {
            session: session(),
            peer: ParticipantId(1),
            role: None,
            label: None,
        };
        assert_eq!(
            parse(&event_to_json(&verified)),
            json!({"type": "peer-verified", "session": "ab".repeat(16), "peer": 1,
                   "role": null, "label": null})
        );
        let obs = Event::ObservatoryTables {
            tables: ObservatoryTables {
                months: vec!["2026-11".into()],
                cases: Cell::Count(7),
                cases_by_month: vec![Cell::Count(7)],
                tables: vec![Table {
                    dimension: Dimension::Gender,
                    values: vec!["female".into(), "male".into()],
                    total: vec![Cell::Suppressed, Cell::Suppressed],
                    by_month: vec![vec![Cell::Suppressed, Cell::Suppressed]],
                }],
            },
        };
        assert_eq!(
            parse(&event_to_json(&obs)),
            json!({"type": "observatory", "months": ["2026-11"], "cases": 7, "byMonth": [7],
                   "tables": [{"dimension": "gender", "values": ["female", "male"],
                               "total": [null, null], "byMonth": [[null, null]]}]})
        );
        let err = Event::RelayError {
            code: ErrorCode::FrameTooLarge,
        };
        assert_eq!(
            parse(&event_to_json(&err)),
            json!({"type": "relay-error", "code": "frame-too-large"})
        );
    }

    #[test]
    fn wipe_clears_strings() {
        let mut v = json!({"a": ["secret"], "b": {"c": "words"}});
        wipe(&mut v);
        assert_eq!(v, json!({"a": [""], "b": {"c": ""}}));
    }
}
