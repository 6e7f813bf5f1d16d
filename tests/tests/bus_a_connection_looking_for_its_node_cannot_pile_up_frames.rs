//! A connection whose first frame resumes a token this node does not hold waits while the
//! bus is asked which node does. That wait is not a place to store things: a connection
//! that sends more than a resume's worth meanwhile is closed without an answer, while one
//! that waits gets the usual `ResumeFailed` once no node claims the token.

use approdo_core::PROTOCOL_VERSION;
use approdo_core::ids::ResumeToken;
use approdo_core::wire::{ClientFrame, ErrorCode, RelayFrame};
use approdo_tests::nodes::two_nodes;
use approdo_tests::*;

const BINARY: &str = env!("CARGO_BIN_EXE_relay-under-test");

fn resume_unknown() -> ClientFrame {
    ClientFrame::Resume {
        version: PROTOCOL_VERSION,
        token: ResumeToken::random(),
        received_up_to: 0,
    }
}

#[tokio::test]
async fn frames_piled_up_during_a_lookup_close_the_connection_a_patient_one_is_answered() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_nats, _rome, milan) = two_nodes(BINARY, &org, dir.path(), 0.0).await;

    // Patient: the lookup finds no node, and this node answers as it would alone.
    let mut patient = RawConn::open_url(&milan.url).await;
    patient.send(&resume_unknown()).await;
    let answered = patient.recv().await;
    assert!(
        matches!(answered, Some(RelayFrame::Error { code }) if code == ErrorCode::ResumeFailed),
        "{answered:?}"
    );

    // Pushy: 40 pings (more than the 16 frames a lookup may hold) right behind the resume.
    let mut pushy = RawConn::open_url(&milan.url).await;
    pushy.send(&resume_unknown()).await;
    for _ in 0..40 {
        pushy.send(&ClientFrame::Ping).await;
    }
    let answered = pushy.until_closed().await;
    assert!(
        answered.is_empty(),
        "closed without an answer: {answered:?}"
    );
}
