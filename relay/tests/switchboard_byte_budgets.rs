//! Budgets count bytes, not only frames: a connection that sends more bytes than its
//! budget, or connections of one address that together send more than the address's, get
//! `RateLimited` and are closed; pings and acknowledgements that release nothing have a
//! budget of their own, so a flood of them is bounded too.

mod switchboard_harness;

use approdo_core::ids::{ParticipantId, SessionId};
use approdo_core::wire::{self, ClientFrame, Envelope, ErrorCode, Payload, RelayFrame};
use switchboard_harness::Bench;

/// A well-formed frame of exactly `len` bytes that the switchboard refuses without
/// closing (a `Send` for a session the connection is not in: `UnknownSession`).
fn big_frame(len: usize) -> Vec<u8> {
    let frame = |data: usize| {
        wire::encode(&ClientFrame::Send {
            session: SessionId([9; 16]),
            seq: 1,
            envelopes: vec![Envelope {
                to: ParticipantId(2),
                payload: Payload::Cipher {
                    nonce: 0,
                    data: vec![0; data],
                },
            }],
        })
        .expect("encode")
    };
    let overhead = frame(len).len() - len;
    let bytes = frame(len - overhead);
    assert_eq!(bytes.len(), len);
    bytes
}

fn rate_limited(frames: &[RelayFrame]) -> bool {
    frames.contains(&RelayFrame::Error {
        code: ErrorCode::RateLimited,
    })
}

#[test]
fn a_connection_over_its_byte_budget_is_cut_off() {
    let mut b = Bench::new(|c| {
        c.limits.bytes_per_sec = 1_000.0;
        c.limits.byte_burst = 10_000.0;
    });
    b.connect(1);
    // Few frames (well within the frame budget), many bytes.
    let mut cut_after = None;
    for i in 0..20 {
        b.sb.handle(1, &big_frame(1_000), b.now);
        let out = b.outputs();
        if rate_limited(&Bench::to(&out, 1)) {
            assert!(Bench::closes(&out, 1));
            cut_after = Some(i);
            break;
        }
        assert!(!Bench::closes(&out, 1), "closed only for its budget");
    }
    assert_eq!(
        cut_after,
        Some(10),
        "the eleventh kilobyte is over a 10 kB burst"
    );
}

#[test]
fn connections_of_one_address_share_its_byte_budget() {
    let mut b = Bench::new(|c| {
        c.limits.byte_burst_per_addr = 5_000.0;
        c.limits.bytes_per_sec_per_addr = 100.0;
    });
    let ip = "192.0.2.44".parse().expect("ip");
    let mut conns = Vec::new();
    for conn in 1..=6 {
        let tag = b.sb.admit(ip, b.now).expect("admit");
        b.sb.connected(conn, tag, b.now);
        conns.push(conn);
    }
    let mut refused = 0;
    for conn in &conns {
        b.sb.handle(*conn, &big_frame(1_000), b.now);
        let out = b.outputs();
        if rate_limited(&Bench::to(&out, *conn)) {
            assert!(Bench::closes(&out, *conn));
            refused += 1;
        }
    }
    assert_eq!(
        refused, 1,
        "five kilobytes pass, the sixth is over the address budget"
    );
    // Another address is not affected.
    b.connect(100);
    b.sb.handle(100, &big_frame(1_000), b.now);
    assert!(!rate_limited(&Bench::to(&b.outputs(), 100)));
}

#[test]
fn pings_have_their_own_bounded_budget() {
    let mut b = Bench::new(|c| {
        c.limits.frames_per_sec = 1.0;
        c.limits.frame_burst = 1.0;
        c.limits.acks_per_sec = 1.0;
        c.limits.ack_burst = 100.0;
    });
    b.connect(1);
    let ping = wire::encode(&ClientFrame::Ping).expect("encode");
    // Far more pings than the frame budget allows: they do not use it.
    for _ in 0..100 {
        b.sb.handle(1, &ping, b.now);
    }
    let out = b.outputs();
    assert!(!rate_limited(&Bench::to(&out, 1)));
    assert_eq!(Bench::to(&out, 1).len(), 100, "every ping answered");
    // But they are bounded.
    b.sb.handle(1, &ping, b.now);
    assert!(rate_limited(&Bench::to(&b.outputs(), 1)));
}

#[test]
fn acks_that_release_nothing_are_bounded() {
    let mut b = Bench::new(|c| {
        c.limits.acks_per_sec = 1.0;
        c.limits.ack_burst = 50.0;
    });
    b.connect(1);
    let ack = wire::encode(&ClientFrame::Ack {
        session: SessionId([1; 16]),
        up_to: 5,
    })
    .expect("encode");
    let mut limited = false;
    for _ in 0..60 {
        b.sb.handle(1, &ack, b.now);
        if rate_limited(&Bench::to(&b.outputs(), 1)) {
            limited = true;
            break;
        }
    }
    assert!(limited, "a flood of empty acks is cut off");
}
