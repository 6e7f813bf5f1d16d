//! A staff view goes out when it changed, or on the periodic refresh: activity that leaves
//! an operator's queue as it was (another desk's session, pings, a connection coming and
//! going) sends it nothing, so a busy relay does not resend every view on every change.

mod switchboard_harness;

use std::time::Duration;

use approdo_core::PROTOCOL_VERSION;
use approdo_core::client::Client;
use approdo_core::identity::Role;
use approdo_core::wire::{self, ClientFrame, RelayFrame};
use switchboard_harness::{Bench, tag};

fn queue_views(b: &mut Bench, conn: u64) -> Vec<(usize, u32)> {
    b.outputs()
        .into_iter()
        .filter(|(c, _, _)| *c == conn)
        .filter_map(|(_, f, _)| match f {
            Some(RelayFrame::Queue { entries, total }) => Some((entries.len(), total)),
            _ => None,
        })
        .collect()
}

fn open(b: &mut Bench, conn: u64, region: Option<&str>) {
    b.connect(conn);
    b.frame(
        conn,
        &ClientFrame::OpenSession {
            version: PROTOCOL_VERSION,
            language: tag("en"),
            region: region.map(tag),
        },
    );
}

#[test]
fn unchanged_views_are_not_resent_until_the_refresh() {
    let mut b = Bench::new(|_| {});
    // Operators online at both desks, so Veneto's queue is not the national one's.
    let venice = 20;
    b.connect(venice);
    let mut v = Client::staff(
        b.org.public(),
        b.credential(2, Role::Operator, &["veneto"], &["en"]),
    );
    let op = 10;
    b.connect(op);
    let mut operator = Client::staff(
        b.org.public(),
        b.credential(1, Role::Operator, &["national"], &["en"]),
    );
    operator.login().expect("login");
    v.login().expect("login");
    for _ in 0..4 {
        for (conn, c) in [(op, &mut operator), (venice, &mut v)] {
            while let Some(bytes) = c.poll_transmit() {
                b.sb.handle(conn, &bytes, b.now);
            }
        }
        for (conn, frame, _) in b.outputs() {
            let Some(frame) = frame else { continue };
            let bytes = wire::encode(&frame).expect("encode");
            match conn {
                10 => operator.handle_bytes(&bytes, 1).expect("valid"),
                20 => v.handle_bytes(&bytes, 1).expect("valid"),
                _ => {}
            }
        }
    }

    open(&mut b, 1, None);
    assert_eq!(queue_views(&mut b, op), vec![(1, 1)], "a change is sent");

    open(&mut b, 2, Some("veneto"));
    assert!(queue_views(&mut b, op).is_empty(), "another desk's session");
    b.connect(3);
    b.frame(3, &ClientFrame::Ping);
    b.sb.disconnected(3, b.now);
    b.frame(op, &ClientFrame::Ping);
    assert!(queue_views(&mut b, op).is_empty(), "nothing changed for it");

    b.now += Duration::from_secs(11);
    b.sb.tick(b.now);
    assert_eq!(
        queue_views(&mut b, op),
        vec![(1, 1)],
        "the periodic refresh"
    );
}
