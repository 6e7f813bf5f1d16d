//! A `Send` with more than `MAX_ENVELOPES_PER_SEND` envelopes, or a payload longer than
//! `MAX_PAYLOAD_LEN`, is refused (`Malformed`, connection closed) and nothing is delivered;
//! within those bounds every `Event` fits a frame. (Before, an `Event` could be one byte
//! larger than its `Send`, and a maximum-size `Send` made the relay panic.)

mod switchboard_harness;

use approdo_core::ids::ParticipantId;
use approdo_core::limits::{MAX_ENVELOPES_PER_SEND, MAX_FRAME_LEN, MAX_PAYLOAD_LEN};
use approdo_core::wire::{self, ClientFrame, Envelope, ErrorCode, Payload, RelayFrame};
use switchboard_harness::{Bench, Wired, honest_pair};

fn cipher(len: usize) -> Envelope {
    Envelope {
        to: ParticipantId(2),
        payload: Payload::Cipher {
            nonce: 0,
            data: vec![0xaa; len],
        },
    }
}

/// The person's raw `Send`: what the relay answered the person, and whether the operator
/// got events.
fn send(b: &mut Bench, frame: ClientFrame) -> (Vec<RelayFrame>, bool, usize) {
    let bytes = wire::encode(&frame).expect("within the frame limit");
    b.sb.handle(1, &bytes, b.now);
    let out = b.outputs();
    let events = Bench::to(&out, 2)
        .iter()
        .filter(|f| matches!(f, RelayFrame::Event { .. }))
        .count();
    (Bench::to(&out, 1), Bench::closes(&out, 1), events)
}

#[test]
fn a_maximum_size_send_is_refused_without_a_panic() {
    let mut b = Bench::new(|_| {});
    let mut w = Wired::new();
    let session = honest_pair(&mut b, &mut w);
    // Make the operator's event numbers two bytes long while the person's send numbers
    // stay one byte: an `Event` is then one byte longer than the `Send` it comes from.
    // Above the numbers the person's client used for its handshake.
    let mut seq = 10;
    for _ in 0..25 {
        seq += 1;
        let (_, closed, events) = send(
            &mut b,
            ClientFrame::Send {
                session,
                seq,
                envelopes: vec![cipher(32); MAX_ENVELOPES_PER_SEND],
            },
        );
        assert!(!closed);
        assert_eq!(events, MAX_ENVELOPES_PER_SEND);
    }
    // The largest `Send` that fits a frame.
    let overhead = wire::encode(&ClientFrame::Send {
        session,
        seq: seq + 1,
        envelopes: vec![cipher(0)],
    })
    .expect("encode")
    .len();
    let mut len = MAX_FRAME_LEN - overhead;
    while wire::encode(&ClientFrame::Send {
        session,
        seq: seq + 1,
        envelopes: vec![cipher(len)],
    })
    .is_err()
    {
        len -= 1;
    }
    let (answer, closed, events) = send(
        &mut b,
        ClientFrame::Send {
            session,
            seq: seq + 1,
            envelopes: vec![cipher(len)],
        },
    );
    assert_eq!(
        answer,
        vec![RelayFrame::Error {
            code: ErrorCode::Malformed
        }]
    );
    assert!(closed, "a malformed Send closes the connection");
    assert_eq!(events, 0, "nothing of it is delivered");
}

#[test]
fn too_many_envelopes_or_too_long_a_payload_are_malformed() {
    for (envelopes, why) in [
        (vec![cipher(8); MAX_ENVELOPES_PER_SEND + 1], "envelopes"),
        (vec![cipher(MAX_PAYLOAD_LEN + 1)], "cipher payload"),
        (
            vec![Envelope {
                to: ParticipantId(2),
                payload: Payload::Handshake(vec![1; MAX_PAYLOAD_LEN + 1]),
            }],
            "handshake payload",
        ),
    ] {
        let mut b = Bench::new(|_| {});
        let mut w = Wired::new();
        let session = honest_pair(&mut b, &mut w);
        let (answer, closed, events) = send(
            &mut b,
            ClientFrame::Send {
                session,
                seq: 100,
                envelopes,
            },
        );
        assert_eq!(
            answer,
            vec![RelayFrame::Error {
                code: ErrorCode::Malformed
            }],
            "{why}"
        );
        assert!(closed, "{why}");
        assert_eq!(events, 0, "{why}");
    }
}

#[test]
fn the_largest_allowed_send_is_delivered() {
    let mut b = Bench::new(|_| {});
    let mut w = Wired::new();
    let session = honest_pair(&mut b, &mut w);
    let (answer, closed, events) = send(
        &mut b,
        ClientFrame::Send {
            session,
            seq: u64::MAX,
            envelopes: vec![cipher(MAX_PAYLOAD_LEN); MAX_ENVELOPES_PER_SEND],
        },
    );
    assert!(!closed);
    assert!(
        answer
            .iter()
            .all(|f| matches!(f, RelayFrame::Accepted { .. })),
        "{answer:?}"
    );
    assert_eq!(events, MAX_ENVELOPES_PER_SEND);
}
