//! When an event cannot be kept for a participant who is away (their count, the session's
//! bytes or the relay's bytes are at quota), that participant is removed — the others see
//! `Departed`, or `Ended` when it is the person — and the sender whose `Send` caused it gets
//! `QuotaExceeded`, with its connection left open. No event is dropped in silence.

mod switchboard_harness;

use approdo_core::ids::{ParticipantId, SessionId};
use approdo_core::wire::{ClientFrame, Envelope, ErrorCode, Payload, RelayFrame, SessionEvent};
use approdo_relay::config::Config;
use switchboard_harness::{Bench, Wired, honest_pair};

/// The operator (conn 2) drops; the person (conn 1) sends `n` one-envelope messages of
/// `len` bytes to it. Returns what the person was sent and whether it was closed.
fn person_writes_to_away_operator(
    tweak: impl FnOnce(&mut Config),
    n: u64,
    len: usize,
) -> (Vec<RelayFrame>, bool, Bench, SessionId) {
    let mut b = Bench::new(tweak);
    let mut w = Wired::new();
    let session = honest_pair(&mut b, &mut w);
    b.sb.disconnected(2, b.now);
    b.outputs();
    let mut answers = Vec::new();
    let mut closed = false;
    for seq in 1..=n {
        b.frame(
            1,
            &ClientFrame::Send {
                session,
                // Above the numbers the honest clients used for their handshakes.
                seq: 100 + seq,
                envelopes: vec![Envelope {
                    to: ParticipantId(2),
                    payload: Payload::Cipher {
                        nonce: seq,
                        data: vec![7; len],
                    },
                }],
            },
        );
        let out = b.outputs();
        answers.extend(Bench::to(&out, 1));
        closed |= Bench::closes(&out, 1);
    }
    (answers, closed, b, session)
}

fn quota_exceeded(frames: &[RelayFrame]) -> usize {
    frames
        .iter()
        .filter(|f| {
            matches!(
                f,
                RelayFrame::Error {
                    code: ErrorCode::QuotaExceeded
                }
            )
        })
        .count()
}

fn departed(frames: &[RelayFrame], who: u32) -> bool {
    frames.iter().any(|f| {
        matches!(f, RelayFrame::Event { event: SessionEvent::Departed { id }, .. } if id.0 == who)
    })
}

#[test]
fn over_the_participant_count_the_sender_is_told() {
    let (answers, closed, b, _) =
        person_writes_to_away_operator(|c| c.limits.max_stored_per_participant = 3, 5, 40);
    assert_eq!(quota_exceeded(&answers), 1, "{answers:?}");
    assert!(departed(&answers, 2), "the person sees the operator leave");
    assert!(!closed, "QuotaExceeded leaves the connection open");
    assert_eq!(b.sb.census().away_participants, 0);
    assert_eq!(b.sb.census().sessions, 1, "the person's session carries on");
}

#[test]
fn over_the_session_byte_quota_the_sender_is_told() {
    let (answers, closed, _, _) = person_writes_to_away_operator(
        |c| c.limits.max_stored_bytes_per_session = 10_000,
        5,
        4_000,
    );
    assert_eq!(quota_exceeded(&answers), 1, "{answers:?}");
    assert!(departed(&answers, 2));
    assert!(!closed);
}

#[test]
fn over_the_relay_byte_quota_the_sender_is_told() {
    let (answers, closed, _, _) =
        person_writes_to_away_operator(|c| c.limits.max_stored_bytes = 1_000, 3, 600);
    assert_eq!(quota_exceeded(&answers), 1, "{answers:?}");
    assert!(departed(&answers, 2));
    assert!(!closed);
}

#[test]
fn when_the_away_person_cannot_be_kept_the_session_ends() {
    let mut b = Bench::new(|c| c.limits.max_stored_per_participant = 2);
    let mut w = Wired::new();
    let session = honest_pair(&mut b, &mut w);
    b.sb.disconnected(1, b.now);
    b.outputs();
    let mut answers = Vec::new();
    for seq in 1..=3 {
        b.frame(
            2,
            &ClientFrame::Send {
                session,
                // Above the numbers the honest clients used for their handshakes.
                seq: 100 + seq,
                envelopes: vec![Envelope {
                    to: ParticipantId(1),
                    payload: Payload::Cipher {
                        nonce: seq,
                        data: vec![7; 40],
                    },
                }],
            },
        );
        let out = b.outputs();
        answers.extend(Bench::to(&out, 2));
        assert!(!Bench::closes(&out, 2));
    }
    assert_eq!(quota_exceeded(&answers), 1, "{answers:?}");
    assert!(answers.iter().any(|f| matches!(
        f,
        RelayFrame::Event {
            event: SessionEvent::Ended,
            ..
        }
    )));
    assert_eq!(b.sb.census().sessions, 0);
    assert_eq!(b.sb.census().stored_records, 0);
}
