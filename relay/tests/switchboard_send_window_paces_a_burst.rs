//! A burst of events to one participant goes out a window at a time: at most
//! `SEND_WINDOW` unacknowledged on the wire, the rest in order as acknowledgements come
//! back, every one once, and the slower reader is never cut off for being slower.

mod switchboard_harness;

use approdo_core::ids::ParticipantId;
use approdo_core::limits::MAX_ENVELOPES_PER_SEND;
use approdo_core::wire::{ClientFrame, Envelope, Payload, RelayFrame, SessionEvent};
use approdo_relay::switchboard::SEND_WINDOW;
use switchboard_harness::Bench;

/// The events numbers sent to `conn` in `out`, and whether it was closed.
fn events_to(out: &[(u64, Option<RelayFrame>, bool)], conn: u64) -> (Vec<u64>, bool) {
    let seqs = out
        .iter()
        .filter(|(c, _, _)| *c == conn)
        .filter_map(|(_, f, _)| match f {
            Some(RelayFrame::Event {
                seq,
                event: SessionEvent::Message { .. },
                ..
            }) => Some(*seq),
            _ => None,
        })
        .collect();
    (seqs, Bench::closes(out, conn))
}

#[test]
fn a_burst_goes_out_a_window_at_a_time() {
    let mut b = Bench::new(|_| {});
    let session = b.person_opens(1);
    let mut operator = b.operator_logged_in(2, 1);
    operator.accept(session).expect("accept");
    while let Some(bytes) = operator.poll_transmit() {
        b.sb.handle(2, &bytes, b.now);
    }
    // The operator acknowledges what joining sent it: the window starts empty.
    let joined = b
        .outputs()
        .into_iter()
        .filter_map(|(c, f, _)| match f {
            Some(RelayFrame::Event { seq, .. }) if c == 2 => Some(seq),
            _ => None,
        })
        .max()
        .expect("joining sends events");
    b.frame(
        2,
        &ClientFrame::Ack {
            session,
            up_to: joined,
        },
    );
    b.outputs();
    let operator_id = ParticipantId(2);

    // The person sends three windows' worth at once, six messages per frame.
    let total = 3 * SEND_WINDOW;
    let frames = total / MAX_ENVELOPES_PER_SEND;
    for seq in 1..=frames as u64 {
        let envelopes = (0..MAX_ENVELOPES_PER_SEND as u64)
            .map(|i| Envelope {
                to: operator_id,
                payload: Payload::Cipher {
                    nonce: seq * 10 + i,
                    data: vec![0x5a; 48],
                },
            })
            .collect();
        b.frame(
            1,
            &ClientFrame::Send {
                session,
                seq,
                envelopes,
            },
        );
    }
    let (first, closed) = events_to(&b.outputs(), 2);
    assert!(!closed, "the operator is not cut off");
    assert_eq!(first.len(), SEND_WINDOW, "one window on the wire");

    // Acknowledging the first half releases as many more, in order, after the first.
    let mut received = first.clone();
    let half = first[SEND_WINDOW / 2 - 1];
    b.frame(
        2,
        &ClientFrame::Ack {
            session,
            up_to: half,
        },
    );
    let (more, closed) = events_to(&b.outputs(), 2);
    assert!(!closed);
    assert_eq!(more.len(), SEND_WINDOW / 2);
    received.extend(more);

    // Acknowledging everything so far, until nothing waits.
    loop {
        let up_to = *received.last().expect("some");
        b.frame(2, &ClientFrame::Ack { session, up_to });
        let (more, closed) = events_to(&b.outputs(), 2);
        assert!(!closed);
        assert!(more.len() <= SEND_WINDOW);
        if more.is_empty() {
            break;
        }
        received.extend(more);
    }
    let first_seq = received[0];
    let expected: Vec<u64> = (first_seq..first_seq + total as u64).collect();
    assert_eq!(received, expected, "every event once, in order");
}
