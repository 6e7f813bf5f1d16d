//! The person's client refuses a forged, expired or revoked staff certificate during the
//! handshake, before a word of content leaves the phone, even when the relay itself lets
//! that staff member through (a malicious or outdated relay).

use approdo_core::client::Event;
use approdo_core::error::{CertificateProblem, Error};
use approdo_core::identity::{RevocationList, Role};
use approdo_tests::*;

/// Run one attempt: the person (pinning `person_org`, with `adjust` applied) writes a
/// secret while queued; the operator accepts. Returns why the person refused, after
/// checking that the operator received no content before the person left.
async fn attempt(
    relay: &TestRelay,
    relay_org: &TestOrg,
    person_org: &TestOrg,
    operator_cred: approdo_core::credential::StaffCredential,
    adjust: impl FnOnce(&mut approdo_client::Driver),
) -> Error {
    let mut operator = staff(relay, relay_org, operator_cred).await;
    let mut client = approdo_core::client::Client::person(person_org.key.public());
    client.open_session(tag("en"), None).expect("open");
    let mut driver = approdo_client::Driver::connect(&relay.url(), client)
        .await
        .expect("connect");
    adjust(&mut driver);
    let mut person = Actor::spawn(driver);
    let Event::SessionOpened { session } = person
        .wait_for("opened", |e| matches!(e, Event::SessionOpened { .. }))
        .await
    else {
        unreachable!()
    };
    say(
        &person,
        session,
        "SECRET written before the operator was checked",
    );
    accept(&mut operator, session).await;
    let Event::PeerRejected { reason, .. } = person
        .wait_for("rejection", |e| matches!(e, Event::PeerRejected { .. }))
        .await
    else {
        unreachable!()
    };
    assert!(!person.saw(|e| matches!(e, Event::PeerVerified { .. })));
    // The person leaves; events are ordered, so everything the person sent arrives at the
    // operator before the end.
    person.act(move |c| c.end(session).expect("end"));
    operator
        .wait_for("end", |e| matches!(e, Event::SessionEnded { .. }))
        .await;
    assert!(
        !operator.saw(|e| matches!(e, Event::Message { .. })),
        "no content reached the operator"
    );
    assert!(
        operator.saw(|e| matches!(e, Event::PeerRejected { .. })),
        "the operator was told, uniformly"
    );
    reason
}

#[tokio::test]
async fn forged_expired_and_revoked_certificates_are_refused() {
    // Forged: the relay trusts an impostor organisation; the person pins the real one.
    let real = TestOrg::default();
    let impostor = TestOrg::default();
    let relay = TestRelay::start(&impostor, |_| {}).await;
    let cred = impostor.credential(Role::Operator, &["national"], &["en"]);
    let why = attempt(&relay, &impostor, &real, cred, |_| {}).await;
    assert_eq!(why, Error::Certificate(CertificateProblem::BadSignature));
    relay.stop().await;

    // Expired: the relay let the operator log in while valid; the person checks the time.
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let cred = org.credential_until(
        Role::Operator,
        &["national"],
        &["en"],
        approdo_client::unix_now() + 600,
    );
    let why = attempt(&relay, &org, &org, cred, |d| d.clock_offset_secs = 3600).await;
    assert_eq!(why, Error::Certificate(CertificateProblem::Expired));

    // Revoked: the relay serves an old list; the person holds the newer one.
    let cred = org.credential(Role::Operator, &["national"], &["en"]);
    let newer = org.key.sign_revocations(&RevocationList {
        issued_at: approdo_client::unix_now() + 10,
        serials: vec![cred.info.serial],
    });
    let why = attempt(&relay, &org, &org, cred, move |d| {
        d.client.add_revocations(&newer).expect("pin")
    })
    .await;
    assert_eq!(why, Error::Certificate(CertificateProblem::Revoked));
    relay.stop().await;
}
