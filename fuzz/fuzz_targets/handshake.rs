//! The handshake: a staff responder reading an arbitrary first message, and a person
//! reading an arbitrary second message, fail cleanly.
#![no_main]

use approdo_core::identity::{Certificate, OrgSigningKey, RevocationList, Role, StaffSigningKey};
use approdo_core::ids::{ParticipantId, SessionId, Tag};
use approdo_core::noise::{CertPolicy, Handshake, HandshakeKind, NoiseStaticKey, prologue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let org = OrgSigningKey::from_seed(&[3; 32]);
    let key = NoiseStaticKey::from_secret(&[4; 32]);
    let cert = org.certify(&Certificate {
        serial: 1,
        role: Role::Operator,
        label: "op".into(),
        desks: vec![Tag::new("national").expect("tag")],
        languages: vec![Tag::new("en").expect("tag")],
        noise_key: key.public(),
        signing_key: StaffSigningKey::from_seed(&[5; 32]).public(),
        not_after: u64::MAX,
    });
    let public = org.public();
    let revoked = RevocationList::default();
    let policy = CertPolicy { org: &public, revoked: &revoked, now_unix: 1 };
    let p = prologue(&SessionId([1; 16]), ParticipantId(1), ParticipantId(2));

    let mut staff = Handshake::new(HandshakeKind::StaffAnsweringPerson, &p, Some((&key, &cert))).expect("hs");
    if staff.read(data, &policy).is_ok() {
        let _ = staff.write();
    }
    let mut person = Handshake::new(HandshakeKind::PersonInitiator, &p, None).expect("hs");
    let _ = person.write();
    if person.read(data, &policy).is_ok() {
        assert!(person.into_channel().is_ok());
    }
});
