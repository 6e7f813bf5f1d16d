//! A staff member's own node counts their sessions on every node against one cap
//! (`switchboard::abroad`): an `Accept` carried to another node counts until a snapshot of
//! that node answers it, or for [`PENDING_FOR`] at most, so an answer lost on the bus
//! never keeps a slot forever.

mod switchboard_harness;

use std::time::Duration;

use approdo_core::ids::SessionId;
use approdo_core::wire::{ClientFrame, ErrorCode, RelayFrame};
use approdo_relay::Limits;
use approdo_relay::switchboard::PENDING_FOR;
use switchboard_harness::Bench;

const OPERATOR: u64 = 1;
const SUB: u64 = 1_000;

fn carried(b: &mut Bench, frame: &ClientFrame) -> Result<(), ErrorCode> {
    b.carried(OPERATOR, frame, "naples-1")
}

#[test]
fn accepts_carried_elsewhere_count_until_answered_or_for_a_bounded_time() {
    let cap = Limits::default().max_sessions_per_staff;
    let mut b = Bench::new(|_| {});
    b.operator_logged_in(OPERATOR, 7);
    b.sb.sub_opened(OPERATOR, "naples-1", SUB);
    for i in 0..cap {
        let session = SessionId([i as u8 + 10; 16]);
        assert_eq!(carried(&mut b, &ClientFrame::Accept { session }), Ok(()));
    }
    let one_more = ClientFrame::Accept {
        session: SessionId([200; 16]),
    };
    assert_eq!(carried(&mut b, &one_more), Err(ErrorCode::NotAllowed));

    // A person waiting here cannot be taken either: the cap counts every node.
    let person = 2;
    let session = b.person_opens(person);
    b.outputs();
    b.frame(OPERATOR, &ClientFrame::Accept { session });
    let out = b.outputs();
    assert!(out.iter().any(|(c, f, _)| *c == OPERATOR
        && matches!(f, Some(RelayFrame::Error { code }) if *code == ErrorCode::NotAllowed)));

    // No answer ever comes (lost with naples-1's snapshots): the slots come back.
    b.now += PENDING_FOR + Duration::from_secs(1);
    b.sb.tick(b.now);
    assert_eq!(carried(&mut b, &one_more), Ok(()));
}
