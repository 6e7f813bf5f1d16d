//! Proof of work only under a flood: at an ordinary rate of new sessions none is asked;
//! when `OpenSession` attempts come faster than configured, `OpenSession` is answered with
//! `ProofRequired` (connection open), a wrong or unsolicited proof is `RateLimited` (closed),
//! and a right one opens exactly one session.

mod switchboard_harness;

use std::time::Duration;

use approdo_core::PROTOCOL_VERSION;
use approdo_core::limits::MAX_POW_DIFFICULTY;
use approdo_core::wire::{ClientFrame, ErrorCode, RelayFrame};
use switchboard_harness::{Bench, tag};

fn open(b: &mut Bench, conn: u64) -> (Vec<RelayFrame>, bool) {
    b.frame(
        conn,
        &ClientFrame::OpenSession {
            version: PROTOCOL_VERSION,
            language: tag("en"),
            region: None,
        },
    );
    let out = b.outputs();
    (Bench::to(&out, conn), Bench::closes(&out, conn))
}

fn opened(frames: &[RelayFrame]) -> bool {
    frames
        .iter()
        .any(|f| matches!(f, RelayFrame::SessionOpened { .. }))
}

fn asked(frames: &[RelayFrame]) -> Option<([u8; 32], u8)> {
    frames.iter().find_map(|f| match f {
        RelayFrame::ProofRequired { seed, difficulty } => Some((*seed, *difficulty)),
        _ => None,
    })
}

fn proof(b: &mut Bench, conn: u64, seed: [u8; 32], nonce: u64) -> (Vec<RelayFrame>, bool) {
    b.frame(conn, &ClientFrame::ProofOfWork { seed, nonce });
    let out = b.outputs();
    (Bench::to(&out, conn), Bench::closes(&out, conn))
}

#[test]
fn no_proof_is_asked_without_a_flood() {
    let mut b = Bench::new(|_| {});
    let rate = b_threshold();
    // Just under the threshold for a minute.
    let per_sec = rate.floor() as u64;
    for conn in 0..60 * per_sec {
        b.connect(conn);
        let (answer, _) = open(&mut b, conn);
        assert!(asked(&answer).is_none(), "asked at {conn}");
        assert!(opened(&answer));
        b.now += Duration::from_secs(1) / per_sec as u32;
    }
}

fn b_threshold() -> f64 {
    approdo_relay::config::Limits::default().open_sessions_per_sec_before_proof
}

/// Attempts within one second until a proof is asked; returns the connection asked and
/// its puzzle.
fn flood(b: &mut Bench, from: u64) -> (u64, [u8; 32], u8) {
    for conn in from..from + 1_000 {
        b.connect(conn);
        let (answer, closed) = open(b, conn);
        if let Some((seed, difficulty)) = asked(&answer) {
            assert!(!closed, "ProofRequired leaves the connection open");
            assert!(!opened(&answer));
            return (conn, seed, difficulty);
        }
    }
    panic!("a flood never asked for a proof");
}

#[test]
fn under_a_flood_a_proof_is_asked_and_only_a_right_one_opens() {
    let mut b = Bench::new(|_| {});
    let (conn, _, difficulty) = flood(&mut b, 1);
    assert!(
        (10..=MAX_POW_DIFFICULTY).contains(&difficulty),
        "{difficulty}"
    );
    // Asking again without a proof: another puzzle, still no session.
    let (answer, _) = open(&mut b, conn);
    let (seed, difficulty) = asked(&answer).expect("asked again");
    assert!(b.sb.census().sessions < 1_000);

    // A right proof, then exactly one session.
    let nonce = approdo_core::pow::solve(&seed, difficulty).expect("solvable");
    let (answer, closed) = proof(&mut b, conn, seed, nonce);
    assert!(answer.is_empty() && !closed, "{answer:?}");
    let (answer, _) = open(&mut b, conn);
    assert!(opened(&answer), "{answer:?}");

    // The flood goes on: a new connection is asked, and a wrong answer closes it.
    let (conn, seed, difficulty) = flood(&mut b, 5_000);
    let wrong = (0..).find(|n| !approdo_core::pow::verify(&seed, difficulty, *n));
    let (answer, closed) = proof(&mut b, conn, seed, wrong.expect("a wrong nonce"));
    assert_eq!(
        answer,
        vec![RelayFrame::Error {
            code: ErrorCode::RateLimited
        }]
    );
    assert!(closed);

    // A proof for another connection's seed is no use either.
    let (a, seed_a, difficulty_a) = flood(&mut b, 10_000);
    let (c, _, _) = flood(&mut b, 20_000);
    let nonce = approdo_core::pow::solve(&seed_a, difficulty_a).expect("solvable");
    let (answer, closed) = proof(&mut b, c, seed_a, nonce);
    assert!(closed && answer.len() == 1, "{answer:?}");
    // A proof is spent by one session.
    let (_, closed) = proof(&mut b, a, seed_a, nonce);
    assert!(!closed);
    let (answer, _) = open(&mut b, a);
    assert!(opened(&answer));
    b.connect(99_999);
    let (answer, _) = open(&mut b, 99_999);
    assert!(
        asked(&answer).is_some(),
        "still flooded: the next one is asked"
    );
}

#[test]
fn an_unsolicited_proof_is_rate_limited() {
    let mut b = Bench::new(|_| {});
    b.connect(1);
    let (answer, closed) = proof(&mut b, 1, [0; 32], 0);
    assert_eq!(
        answer,
        vec![RelayFrame::Error {
            code: ErrorCode::RateLimited
        }]
    );
    assert!(closed);
}

#[test]
fn the_flood_passing_lifts_the_proof() {
    let mut b = Bench::new(|_| {});
    flood(&mut b, 1);
    b.now += Duration::from_secs(11);
    b.connect(50_000);
    let (answer, _) = open(&mut b, 50_000);
    assert!(opened(&answer), "{answer:?}");
}
