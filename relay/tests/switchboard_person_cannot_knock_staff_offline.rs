//! A person who floods at the frame limit, six messages per `Send`, makes the operator
//! acknowledge six events per frame. Those acknowledgements must not use up the operator's
//! frame budget: the operator is never refused or cut off and receives every message.
//! (Before, the operator was disconnected as rate-limited about every two seconds.)

mod switchboard_harness;

use std::time::Duration;

use approdo_core::ids::SessionId;
use approdo_core::limits::MAX_ENVELOPES_PER_SEND;
use approdo_core::wire::{ClientFrame, ErrorCode};
use switchboard_harness::{Bench, Wired, honest_pair};

/// Simulated seconds of flooding.
const FLOOD_SECS: u64 = 30;

/// Six messages from the person (`{prefix}-0` … `{prefix}-5`), merged into one `Send`
/// carrying the highest of their numbers: the most a frame may carry.
fn six_in_one_send(w: &mut Wired, session: SessionId, prefix: &str) -> ClientFrame {
    let person = w.client(1);
    let mut merged = Vec::new();
    let mut last_seq = 0;
    for k in 0..MAX_ENVELOPES_PER_SEND {
        person
            .send_text(session, &format!("{prefix}-{k}"))
            .expect("send");
        match person.poll_frame() {
            Some(ClientFrame::Send { seq, envelopes, .. }) => {
                last_seq = seq;
                merged.extend(envelopes);
            }
            other => panic!("expected a Send, got {other:?}"),
        }
    }
    assert_eq!(merged.len(), MAX_ENVELOPES_PER_SEND);
    ClientFrame::Send {
        session,
        seq: last_seq,
        envelopes: merged,
    }
}

#[test]
fn a_flooding_person_cannot_get_the_operator_disconnected() {
    let mut b = Bench::new(|_| {});
    let frames_per_sec = approdo_relay::config::Limits::default().frames_per_sec as u64;
    let mut w = Wired::new();
    let session = honest_pair(&mut b, &mut w);
    w.said(2);

    let step = Duration::from_secs(1) / frames_per_sec as u32;
    let mut sent = 0usize;
    for i in 0..FLOOD_SECS * frames_per_sec {
        b.frame(1, &six_in_one_send(&mut w, session, &format!("m{i}")));
        sent += MAX_ENVELOPES_PER_SEND;
        w.pump(&mut b);
        b.now += step;
        if i % frames_per_sec == 0 {
            b.sb.tick(b.now);
        }
        assert!(
            !w.closed.contains(&2),
            "the operator was cut off after {i} frames"
        );
    }
    let refused: Vec<ErrorCode> = w
        .errors
        .iter()
        .filter(|(c, _)| *c == 2)
        .map(|(_, e)| *e)
        .collect();
    assert!(refused.is_empty(), "the operator was refused: {refused:?}");
    assert!(
        !w.closed.contains(&1),
        "the person stayed within its budgets"
    );
    let got = w.said(2);
    assert_eq!(got.len(), sent, "every message reached the operator");
    assert_eq!(got.first().map(String::as_str), Some("m0-0"));
    assert_eq!(got.last().map(String::as_str), Some("m2999-5"));
}

#[test]
fn a_persons_whole_burst_at_once_cannot_get_the_operator_disconnected() {
    let mut b = Bench::new(|_| {});
    let limits = approdo_relay::config::Limits::default();
    // What setting up the conversation took from its frame budget is left out.
    let burst = limits.frame_burst as usize - 16;
    // Its byte budget ends the burst first: frames are taken while they fit.
    let byte_budget = limits.byte_burst as usize;
    let mut spent = 0usize;
    let mut w = Wired::new();
    let session = honest_pair(&mut b, &mut w);
    w.said(2);

    // The person's entire budget in one go, six messages per frame, all handled
    // before the operator can acknowledge anything (a round trip is far longer than the
    // relay takes to read them).
    let mut sent = 0usize;
    for i in 0..burst {
        let frame = six_in_one_send(&mut w, session, &format!("b{i}"));
        spent += approdo_core::wire::encode(&frame).expect("encode").len();
        if spent > byte_budget {
            break;
        }
        b.frame(1, &frame);
        sent += MAX_ENVELOPES_PER_SEND;
    }
    assert!(
        sent > 4096,
        "more events than the old limit ({sent}): the case that cut the operator off"
    );
    for _ in 0..64 {
        w.pump(&mut b);
    }
    assert!(!w.closed.contains(&2), "the operator was cut off");
    assert!(
        !w.closed.contains(&1),
        "the person stayed within its budgets"
    );
    let got = w.said(2);
    assert_eq!(got.len(), sent, "every message reached the operator");
    assert_eq!(got.first().map(String::as_str), Some("b0-0"));
}
