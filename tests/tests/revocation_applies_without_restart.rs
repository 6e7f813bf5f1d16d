//! A credential revoked while the relay runs is cut off at once, without a restart (which
//! would end every session): the staff member's connection gets the uniform refusal, the
//! person sees them leave, the session goes back to the queue for a colleague, and an
//! older list cannot roll the revocation back.

use approdo_core::client::Event;
use approdo_core::identity::{RevocationList, Role};
use approdo_core::wire::ErrorCode;
use approdo_tests::*;

#[tokio::test]
async fn a_revocation_takes_effect_on_running_sessions() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let credential = org.credential(Role::Operator, &["national"], &["en"]);
    let revoked_serial = credential.info.serial;
    let mut operator = staff(&relay, &org, credential).await;
    let (mut person, session) = person(&relay, &org, "en").await;
    accept(&mut operator, session).await;
    verified(&mut person, Some(Role::Operator)).await;

    let newer = org.key.sign_revocations(&RevocationList {
        issued_at: approdo_client::unix_now() + 5,
        serials: vec![revoked_serial],
    });
    assert_eq!(
        relay.inspector.apply_revocations(newer).expect("applied"),
        1,
        "one connection cut off"
    );
    operator
        .wait_for("refusal", |e| {
            matches!(
                e,
                Event::RelayError {
                    code: ErrorCode::AuthFailed
                }
            )
        })
        .await;
    person
        .wait_for("operator left", |e| matches!(e, Event::PeerLeft { .. }))
        .await;

    let older = org.key.sign_revocations(&RevocationList {
        issued_at: 1,
        serials: vec![],
    });
    assert!(
        relay.inspector.apply_revocations(older).is_err(),
        "no rollback"
    );

    let mut colleague = staff(
        &relay,
        &org,
        org.credential(Role::Operator, &["national"], &["en"]),
    )
    .await;
    accept(&mut colleague, session).await;
    verified(&mut colleague, None).await;
    say(&person, session, "are you still there?");
    assert_eq!(message(&mut colleague).await.1, "are you still there?");
    relay.stop().await;
}
