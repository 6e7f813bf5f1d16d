//! `CallJoin` is `NotAllowed` while no operator is in the session, so sessions waiting in
//! the queue cannot hold the SFU's UDP ports; once an operator has accepted, it is taken.

mod switchboard_harness;

use approdo_core::wire::{ClientFrame, ErrorCode, RelayFrame};
use approdo_relay::switchboard::{CallCommand, Output};
use switchboard_harness::Bench;

fn call_join(b: &mut Bench, conn: u64, session: approdo_core::ids::SessionId) -> Vec<Output> {
    b.frame(
        conn,
        &ClientFrame::CallJoin {
            session,
            offer: "v=0".into(),
        },
    );
    b.sb.take_outputs()
}

#[test]
fn a_waiting_session_cannot_join_a_call() {
    let mut b = Bench::new(|_| {});
    let session = b.person_opens(1);
    let out = call_join(&mut b, 1, session);
    assert!(
        !out.iter().any(|o| matches!(o, Output::Call(_))),
        "no call work for a waiting session"
    );
    let refusal = approdo_core::wire::encode(&RelayFrame::Error {
        code: ErrorCode::NotAllowed,
    })
    .expect("encode");
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Frame(1, bytes) if bytes[..] == refusal[..]))
    );
    assert!(!out.iter().any(|o| matches!(o, Output::Close(1))));

    // Once an operator is in, the same request is carried out.
    let mut operator = b.operator_logged_in(2, 1);
    b.accept(2, &mut operator, session);
    let out = call_join(&mut b, 1, session);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Call(CallCommand::Join { conn: 1, .. })))
    );
}
