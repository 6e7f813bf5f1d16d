//! The index of online staff follows logins and departures exactly: an operator who is
//! cut off (here for a second `StaffProof`) no longer counts as online at its desk, so the
//! national operators take that desk's queue again.

mod switchboard_harness;

use approdo_core::PROTOCOL_VERSION;
use approdo_core::client::Client;
use approdo_core::identity::Role;
use approdo_core::wire::{self, ClientFrame, RelayFrame};
use switchboard_harness::{Bench, tag};

fn login(b: &mut Bench, conn: u64, client: &mut Client) {
    b.connect(conn);
    client.login().expect("login");
    for _ in 0..4 {
        while let Some(bytes) = client.poll_transmit() {
            b.sb.handle(conn, &bytes, b.now);
        }
        for (c, frame, _) in b.outputs() {
            if let (true, Some(f)) = (c == conn, frame) {
                let bytes = wire::encode(&f).expect("encode");
                client.handle_bytes(&bytes, 1).expect("valid");
            }
        }
    }
}

fn last_total(b: &mut Bench, conn: u64) -> Option<u32> {
    b.outputs()
        .into_iter()
        .filter(|(c, _, _)| *c == conn)
        .filter_map(|(_, f, _)| match f {
            Some(RelayFrame::Queue { total, .. }) => Some(total),
            _ => None,
        })
        .next_back()
}

#[test]
fn a_cut_off_operator_no_longer_holds_its_desk() {
    let mut b = Bench::new(|_| {});
    let mut venice = Client::staff(
        b.org.public(),
        b.credential(2, Role::Operator, &["veneto"], &["en"]),
    );
    login(&mut b, 20, &mut venice);
    let mut national = Client::staff(
        b.org.public(),
        b.credential(1, Role::Operator, &["national"], &["en"]),
    );
    login(&mut b, 10, &mut national);

    b.connect(1);
    b.frame(
        1,
        &ClientFrame::OpenSession {
            version: PROTOCOL_VERSION,
            language: tag("en"),
            region: Some(tag("veneto")),
        },
    );
    b.outputs();

    // The Veneto operator misbehaves and is cut off; the shell reports the close.
    b.frame(20, &ClientFrame::StaffProof { signature: [0; 64] });
    let out = b.outputs();
    assert!(Bench::closes(&out, 20));
    b.sb.disconnected(20, b.now);
    assert_eq!(
        last_total(&mut b, 10),
        Some(1),
        "the national operator now sees the Veneto session"
    );
}
