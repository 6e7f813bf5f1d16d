//! A staff member's own node is the authority for their connection's budget across nodes
//! (`switchboard::abroad`): frames it carries to other nodes are charged against the same
//! frame budget as frames for its own sessions, so a member does not get one budget per
//! node.

mod switchboard_harness;

use approdo_core::ids::SessionId;
use approdo_core::wire::{ClientFrame, ErrorCode, RelayFrame};
use switchboard_harness::Bench;

const OPERATOR: u64 = 1;
const SUB: u64 = 1_000;

fn carried(b: &mut Bench, frame: &ClientFrame) -> Result<(), ErrorCode> {
    b.carried(OPERATOR, frame, "naples-1")
}

#[test]
fn frames_carried_elsewhere_spend_the_same_frame_budget() {
    let mut b = Bench::new(|c| {
        c.limits.frames_per_sec = 0.001;
        c.limits.frame_burst = 20.0;
    });
    b.operator_logged_in(OPERATOR, 7);
    b.sb.sub_opened(OPERATOR, "naples-1", SUB);
    let elsewhere = SessionId([9; 16]);
    let mut carried_ok = 0;
    while carried(&mut b, &ClientFrame::Leave { session: elsewhere }).is_ok() {
        carried_ok += 1;
        assert!(carried_ok <= 20, "the budget never ran out");
    }
    assert!(carried_ok > 0);
    assert_eq!(
        carried(&mut b, &ClientFrame::Leave { session: elsewhere }),
        Err(ErrorCode::RateLimited)
    );
    // The same budget: a frame for this node is refused too.
    b.outputs();
    b.frame(
        OPERATOR,
        &ClientFrame::Leave {
            session: SessionId([1; 16]),
        },
    );
    let out = b.outputs();
    assert!(out.iter().any(|(c, f, _)| *c == OPERATOR
        && matches!(f, Some(RelayFrame::Error { code }) if *code == ErrorCode::RateLimited)));
}
