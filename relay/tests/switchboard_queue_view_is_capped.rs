//! With 3,000 sessions waiting, an operator's `Queue` view is capped at
//! `MAX_QUEUE_ENTRIES` entries, oldest first, with the true total. (Before, the view listed
//! every waiting session, passed 64 KiB at about 2,200 and the relay panicked sending it.)
//! An interpreter's invitations are capped the same way.

mod switchboard_harness;

use std::time::Duration;

use approdo_core::PROTOCOL_VERSION;
use approdo_core::client::Client;
use approdo_core::identity::Role;
use approdo_core::limits::MAX_QUEUE_ENTRIES;
use approdo_core::wire::{ClientFrame, RelayFrame};
use switchboard_harness::{Bench, tag};

const WAITING: u64 = 3_000;

#[test]
fn three_thousand_waiting_give_a_capped_queue_with_the_right_total() {
    let mut b = Bench::new(|_| {});
    let mut opened = Vec::new();
    for conn in 1..=WAITING {
        b.connect(conn);
        b.frame(
            conn,
            &ClientFrame::OpenSession {
                version: PROTOCOL_VERSION,
                language: tag("en"),
                region: None,
            },
        );
        // Slower than the rate at which new sessions must prove work.
        b.now += Duration::from_millis(250);
    }
    for (conn, frame, _) in b.outputs() {
        if let Some(RelayFrame::SessionOpened { session, .. }) = frame {
            opened.push((conn, session));
        }
    }
    assert_eq!(opened.len(), WAITING as usize);
    opened.sort_by_key(|(conn, _)| *conn);

    let op = 100_000;
    b.connect(op);
    let mut operator = Client::staff(
        b.org.public(),
        b.credential(1, Role::Operator, &["national"], &["en"]),
    );
    operator.login().expect("login");
    let mut queue = None;
    for _ in 0..4 {
        while let Some(bytes) = operator.poll_transmit() {
            b.sb.handle(op, &bytes, b.now);
        }
        for (conn, frame, _) in b.outputs() {
            if conn != op {
                continue;
            }
            let Some(frame) = frame else { continue };
            if let RelayFrame::Queue { entries, total } = &frame {
                queue = Some((entries.clone(), *total));
            }
            let bytes = approdo_core::wire::encode(&frame).expect("encode");
            operator.handle_bytes(&bytes, 1).expect("valid");
        }
    }
    let (entries, total) = queue.expect("the operator got a queue view");
    assert_eq!(total, WAITING as u32, "total counts every eligible session");
    assert_eq!(entries.len(), MAX_QUEUE_ENTRIES);
    let oldest: Vec<_> = opened
        .iter()
        .take(MAX_QUEUE_ENTRIES)
        .map(|(_, s)| *s)
        .collect();
    let shown: Vec<_> = entries.iter().map(|e| e.session).collect();
    assert_eq!(shown, oldest, "the oldest first");
}

#[test]
fn invitations_are_capped_with_the_right_total() {
    let invited: usize = MAX_QUEUE_ENTRIES + 20;
    // One operator takes every session to invite in it: lift the per-staff session cap.
    let mut b = Bench::new(|c| c.limits.max_sessions_per_staff = invited);
    let op = 1_000_000;
    b.connect(op);
    let mut operator = Client::staff(
        b.org.public(),
        b.credential(1, Role::Operator, &["national"], &["en"]),
    );
    operator.login().expect("login");
    let mut sessions = Vec::new();
    let pump = |b: &mut Bench, operator: &mut Client| -> Vec<(u64, RelayFrame)> {
        let mut seen = Vec::new();
        for _ in 0..4 {
            while let Some(bytes) = operator.poll_transmit() {
                b.sb.handle(op, &bytes, b.now);
            }
            for (conn, frame, _) in b.outputs() {
                let Some(frame) = frame else { continue };
                if conn == op {
                    let bytes = approdo_core::wire::encode(&frame).expect("encode");
                    operator.handle_bytes(&bytes, 1).expect("valid");
                }
                seen.push((conn, frame));
            }
        }
        seen
    };
    for conn in 1..=invited as u64 {
        b.connect(conn);
        b.frame(
            conn,
            &ClientFrame::OpenSession {
                version: PROTOCOL_VERSION,
                language: tag("en"),
                region: None,
            },
        );
        b.now += Duration::from_millis(250);
        for (c, f) in pump(&mut b, &mut operator) {
            if let (true, RelayFrame::SessionOpened { session, .. }) = (c == conn, f) {
                sessions.push(session);
            }
        }
    }
    for s in &sessions {
        operator.accept(*s).expect("accept");
        pump(&mut b, &mut operator);
        operator.invite(*s, tag("ro")).expect("invite");
        pump(&mut b, &mut operator);
        b.now += Duration::from_millis(10);
    }
    let int = 2_000_000;
    b.connect(int);
    let mut interpreter = Client::staff(
        b.org.public(),
        b.credential(2, Role::Interpreter, &["national"], &["ro"]),
    );
    interpreter.login().expect("login");
    let mut view = None;
    for _ in 0..4 {
        while let Some(bytes) = interpreter.poll_transmit() {
            b.sb.handle(int, &bytes, b.now);
        }
        for (conn, frame, _) in b.outputs() {
            let (true, Some(frame)) = (conn == int, frame) else {
                continue;
            };
            if let RelayFrame::Invitations { entries, total } = &frame {
                view = Some((entries.clone(), *total));
            }
            let bytes = approdo_core::wire::encode(&frame).expect("encode");
            interpreter.handle_bytes(&bytes, 1).expect("valid");
        }
    }
    let (entries, total) = view.expect("the interpreter got its invitations");
    assert_eq!(total as usize, invited);
    assert_eq!(entries.len(), MAX_QUEUE_ENTRIES);
    let shown: Vec<_> = entries.iter().map(|e| e.session).collect();
    assert_eq!(
        shown,
        sessions[..MAX_QUEUE_ENTRIES].to_vec(),
        "oldest first"
    );
}
