//! Staff actions need a verified staff login: without one, or with a forged, expired or
//! revoked certificate, the relay answers with one uniform refusal, and other sessions go on.

use approdo_core::PROTOCOL_VERSION;
use approdo_core::identity::{Role, StaffSigningKey};
use approdo_core::wire::{ClientFrame, ErrorCode, RelayFrame};
use approdo_tests::*;

/// Log in on a raw connection with a certificate and a key; return what follows the proof.
async fn login_answer(
    relay: &TestRelay,
    cred: &approdo_core::credential::StaffCredential,
    key: &StaffSigningKey,
) -> Vec<RelayFrame> {
    let mut c = RawConn::open(relay).await;
    c.send(&ClientFrame::StaffHello {
        version: PROTOCOL_VERSION,
        certificate: cred.certificate.clone(),
    })
    .await;
    let Some(RelayFrame::Challenge { nonce }) = c.recv().await else {
        panic!("every hello gets a challenge")
    };
    c.send(&ClientFrame::StaffProof {
        signature: key.answer_challenge(&nonce),
    })
    .await;
    c.until_closed().await
}

#[tokio::test]
async fn staff_actions_need_a_valid_login_and_failures_look_alike() {
    let org = TestOrg::default();
    let revoked = org.credential(Role::Operator, &["national"], &["en"]);
    let revoked_serial = revoked.info.serial;
    let relay = TestRelay::start(&org, |c| {
        c.revocations = org
            .key
            .sign_revocations(&approdo_core::identity::RevocationList {
                issued_at: approdo_client::unix_now(),
                serials: vec![revoked_serial],
            });
    })
    .await;
    let mut others = Conversation::open(&relay, &org, "en").await;

    // No login at all: accepting, inviting or ending someone's session is refused.
    let mut c = RawConn::open(&relay).await;
    c.send(&ClientFrame::Accept {
        session: others.session,
    })
    .await;
    assert_eq!(
        c.recv().await,
        Some(RelayFrame::Error {
            code: ErrorCode::NotAllowed
        })
    );
    c.send(&ClientFrame::End {
        session: others.session,
    })
    .await;
    assert_eq!(
        c.recv().await,
        Some(RelayFrame::Error {
            code: ErrorCode::UnknownSession
        })
    );
    c.send(&ClientFrame::Invite {
        session: others.session,
        language: tag("en"),
    })
    .await;
    assert_eq!(
        c.recv().await,
        Some(RelayFrame::Error {
            code: ErrorCode::UnknownSession
        })
    );

    // A person cannot act as staff on their own session either.
    let (person, session) = person(&relay, &org, "en").await;
    let err = person.query(move |c| c.accept(session)).await;
    assert!(err.is_err(), "the client itself refuses");
    let mut p = RawConn::open(&relay).await;
    p.send(&ClientFrame::OpenSession {
        version: PROTOCOL_VERSION,
        language: tag("en"),
        region: None,
    })
    .await;
    let Some(RelayFrame::SessionOpened { session: own, .. }) = p.recv().await else {
        panic!("opened")
    };
    p.send(&ClientFrame::Accept { session: own }).await;
    let answer = loop {
        match p.recv().await {
            Some(RelayFrame::QueueStatus { .. }) => continue,
            other => break other,
        }
    };
    assert_eq!(
        answer,
        Some(RelayFrame::Error {
            code: ErrorCode::NotAllowed
        })
    );

    // Forged, expired, revoked, or the wrong key: one and the same answer.
    let impostor = TestOrg::default();
    let forged = impostor.credential(Role::Operator, &["national"], &["en"]);
    let expired = org.credential_until(Role::Operator, &["national"], &["en"], 1_000);
    let valid = org.credential(Role::Operator, &["national"], &["en"]);
    let refusal = vec![RelayFrame::Error {
        code: ErrorCode::AuthFailed,
    }];
    assert_eq!(
        login_answer(&relay, &forged, &forged.signing).await,
        refusal
    );
    assert_eq!(
        login_answer(&relay, &expired, &expired.signing).await,
        refusal
    );
    assert_eq!(
        login_answer(&relay, &revoked, &revoked.signing).await,
        refusal
    );
    assert_eq!(
        login_answer(&relay, &valid, &StaffSigningKey::generate()).await,
        refusal
    );

    others.still_talking("after the refusals").await;
    relay.stop().await;
}
