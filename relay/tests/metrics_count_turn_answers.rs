//! The metrics endpoint counts TURN answers by kind — how often calls need TURN because a
//! direct path failed, and how often it is refused — and nothing more: no session, no
//! participant, no address.

mod switchboard_harness;

use approdo_core::wire::ClientFrame;
use approdo_relay::metrics::Snapshot;
use approdo_relay::switchboard::TurnAnswers;
use approdo_relay::turn::Turn;
use switchboard_harness::Bench;

fn ask(b: &mut Bench, conn: u64, session: approdo_core::ids::SessionId) {
    b.frame(conn, &ClientFrame::TurnRequest { session });
    b.outputs();
}

#[test]
fn turn_answers_are_counted_by_kind() {
    let mut b = Bench::new(|c| {
        c.turn = Some(
            Turn::new(
                vec!["turn:127.0.0.1:3478?transport=tcp".into()],
                b"a test secret of some length",
                300,
            )
            .expect("turn"),
        );
    });
    let session = b.person_opens(1);
    let mut operator = b.operator_logged_in(2, 1);
    b.accept(2, &mut operator, session);
    ask(&mut b, 1, session); // not in the call yet
    b.join_call(1, session);
    for _ in 0..3 {
        ask(&mut b, 1, session); // two sets, then too many
    }
    let counted = b.sb.gauges().turn_answers;
    assert_eq!(
        counted,
        TurnAnswers {
            credentials: 2,
            unavailable: 0,
            not_in_call: 1,
            too_many: 1,
        }
    );

    let snapshot = Snapshot {
        switchboard: b.sb.gauges(),
        ..Snapshot::default()
    };
    let text = snapshot.render();
    for line in [
        "approdo_turn_answers_total{answer=\"credentials\"} 2",
        "approdo_turn_answers_total{answer=\"not_in_call\"} 1",
        "approdo_turn_answers_total{answer=\"too_many\"} 1",
        "approdo_turn_answers_total{answer=\"unavailable\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    assert!(!text.contains(&session.to_hex()[..8]), "no session id");
}

#[test]
fn a_relay_without_turn_counts_unavailable() {
    let mut b = Bench::new(|_| {});
    let session = b.person_opens(1);
    let mut operator = b.operator_logged_in(2, 1);
    b.accept(2, &mut operator, session);
    ask(&mut b, 1, session);
    assert_eq!(b.sb.gauges().turn_answers.unavailable, 1);
    // The other kinds stay at zero.
    assert_eq!(
        b.sb.gauges().turn_answers,
        TurnAnswers {
            unavailable: 1,
            ..TurnAnswers::default()
        }
    );
}
