//! A waiting person whose connection drops stays in the queue (they may resume), and the
//! operators' queue view says so at once: `away` changes the view, so it is sent again
//! without waiting for the periodic refresh.

mod switchboard_harness;

use approdo_core::PROTOCOL_VERSION;
use approdo_core::wire::{ClientFrame, RelayFrame};
use switchboard_harness::{Bench, tag};

/// The `away` flags of every queue view sent to `conn` since the last look.
fn away_flags(b: &mut Bench, conn: u64) -> Vec<Vec<bool>> {
    b.outputs()
        .into_iter()
        .filter(|(c, _, _)| *c == conn)
        .filter_map(|(_, f, _)| match f {
            Some(RelayFrame::Queue { entries, .. }) => {
                Some(entries.iter().map(|e| e.away).collect())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_dropped_waiting_person_is_marked_away_at_once() {
    let mut b = Bench::new(|_| {});
    let op = 10;
    let _operator = b.operator_logged_in(op, 1);

    let person = 1;
    b.connect(person);
    b.frame(
        person,
        &ClientFrame::OpenSession {
            version: PROTOCOL_VERSION,
            language: tag("en"),
            region: None,
        },
    );
    assert_eq!(away_flags(&mut b, op), vec![vec![false]], "connected");

    b.sb.disconnected(person, b.now);
    assert_eq!(
        away_flags(&mut b, op),
        vec![vec![true]],
        "the drop is sent at once, and the person still waits"
    );
}
