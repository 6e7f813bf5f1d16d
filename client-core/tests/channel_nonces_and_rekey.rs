//! A Noise channel refuses forged, replayed and out-of-order messages without losing its
//! place, rekeys at a fixed interval on both ends, and refuses to send rather than let a
//! nonce wrap.

use approdo_core::error::Error;
use approdo_core::identity::{Certificate, OrgSigningKey, RevocationList, Role, StaffSigningKey};
use approdo_core::ids::{ParticipantId, SessionId, Tag};
use approdo_core::limits::MAX_NONCE;
use approdo_core::noise::{
    CertPolicy, Channel, Handshake, HandshakeKind, NoiseStaticKey, prologue,
};

fn staff_pair() -> (Channel, Channel) {
    let org = OrgSigningKey::generate();
    let mk = |serial| {
        let key = NoiseStaticKey::generate();
        let cert = org.certify(&Certificate {
            serial,
            role: Role::Operator,
            label: format!("op-{serial}"),
            desks: vec![Tag::new("national").expect("tag")],
            languages: vec![Tag::new("en").expect("tag")],
            noise_key: key.public(),
            signing_key: StaffSigningKey::generate().public(),
            not_after: u64::MAX,
        });
        (key, cert)
    };
    let (ka, ca) = mk(1);
    let (kb, cb) = mk(2);
    let p = prologue(&SessionId([1; 16]), ParticipantId(2), ParticipantId(3));
    let revoked = RevocationList::default();
    let public = org.public();
    let policy = CertPolicy {
        org: &public,
        revoked: &revoked,
        now_unix: 10,
    };
    let mut a = Handshake::new(HandshakeKind::StaffInitiator, &p, Some((&ka, &ca))).expect("a");
    let mut b = Handshake::new(HandshakeKind::StaffResponder, &p, Some((&kb, &cb))).expect("b");
    let m1 = a.write().expect("m1");
    b.read(&m1, &policy).expect("m1");
    let m2 = b.write().expect("m2");
    a.read(&m2, &policy).expect("m2");
    let m3 = a.write().expect("m3");
    b.read(&m3, &policy).expect("m3");
    let (a, b) = (a.into_channel().expect("a"), b.into_channel().expect("b"));
    assert_eq!(a.handshake_hash(), b.handshake_hash());
    assert_eq!(a.peer_certificate().expect("cert").serial, 2);
    assert_eq!(b.peer_certificate().expect("cert").serial, 1);
    (a, b)
}

#[test]
fn forged_replayed_and_reordered_messages_do_not_desynchronise() {
    let (mut a, mut b) = staff_pair();
    let (n0, c0) = a.encrypt(b"first").expect("enc");
    let (n1, c1) = a.encrypt(b"second").expect("enc");
    assert_eq!(b.decrypt(n1, &c1), Err(Error::Decrypt), "out of order");
    let mut forged = c0.clone();
    forged[3] ^= 0x40;
    assert_eq!(b.decrypt(n0, &forged), Err(Error::Decrypt), "forged");
    assert_eq!(b.decrypt(n0, &[0u8; 5]), Err(Error::Decrypt), "garbage");
    assert_eq!(
        &b.decrypt(n0, &c0).expect("the real one still opens")[..],
        b"first"
    );
    assert_eq!(b.decrypt(n0, &c0), Err(Error::Decrypt), "replay");
    assert_eq!(&b.decrypt(n1, &c1).expect("next")[..], b"second");
}

#[test]
fn both_ends_rekey_at_the_interval() {
    let (mut a, mut b) = staff_pair();
    a.set_rekey_interval_for_tests(4);
    b.set_rekey_interval_for_tests(4);
    for i in 0..20u8 {
        let (n, c) = a.encrypt(&[i; 10]).expect("enc");
        assert_eq!(&b.decrypt(n, &c).expect("dec")[..], &[i; 10]);
        let (n, c) = b.encrypt(&[i; 3]).expect("enc");
        assert_eq!(&a.decrypt(n, &c).expect("dec")[..], &[i; 3]);
    }
    // A receiver that does not rekey cannot read past the boundary: the key really changes.
    let (mut a, mut b) = staff_pair();
    a.set_rekey_interval_for_tests(4);
    for i in 0..4u8 {
        let (n, c) = a.encrypt(&[i]).expect("enc");
        b.decrypt(n, &c).expect("same key before the boundary");
    }
    let (n, c) = a.encrypt(b"after").expect("enc");
    assert_eq!(b.decrypt(n, &c), Err(Error::Decrypt));
}

#[test]
fn nonces_never_wrap() {
    let (mut a, mut b) = staff_pair();
    a.set_nonces_for_tests(MAX_NONCE - 1, 0);
    b.set_nonces_for_tests(0, MAX_NONCE - 1);
    let (n, c) = a.encrypt(b"last").expect("the last nonce is usable");
    assert_eq!(n, MAX_NONCE - 1);
    assert!(b.decrypt(n, &c).is_ok());
    assert_eq!(a.encrypt(b"one more"), Err(Error::NonceExhausted));
    assert_eq!(a.encrypt(b"and again"), Err(Error::NonceExhausted));
}
