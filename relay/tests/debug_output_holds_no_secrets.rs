//! `{:?}` of the relay's types that hold keys, tokens or content prints none of it: no
//! canary, no passphrase, no SDP, and no run of bytes or hex long enough to be a key.

use std::time::Instant;

use approdo_core::ids::{ParticipantId, SessionId};
use approdo_relay::ratelimit::{AddressLimiter, ConnectionCounter};
use approdo_relay::store::EphemeralStore;

const CANARY: &str = "CANARY-debug-4f1c";

/// Fails on a canary, or on anything that looks like key material: 16 or more numbers in a
/// row (a byte array) or 32 or more hex digits in a row.
fn assert_clean(what: &str, debug: &str) {
    assert!(!debug.contains(CANARY), "{what}: canary in {debug}");
    let mut numbers = 0;
    for token in debug.split([',', '[', ']', ' ']) {
        if !token.is_empty() && token.chars().all(|c| c.is_ascii_digit()) {
            numbers += 1;
            assert!(numbers < 16, "{what}: a byte array in {debug}");
        } else if !token.is_empty() {
            numbers = 0;
        }
    }
    let mut hex = 0;
    for c in debug.chars() {
        hex = if c.is_ascii_hexdigit() { hex + 1 } else { 0 };
        assert!(hex < 32, "{what}: a hex run in {debug}");
    }
}

#[test]
fn relay_types_print_no_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = EphemeralStore::open_wiped(&dir.path().join("s")).expect("open");
    let session = SessionId::random();
    store.begin(session);
    store
        .put_event(&session, ParticipantId(1), 1, CANARY.as_bytes())
        .expect("put");
    assert_clean("store", &format!("{store:?}"));

    let now = Instant::now();
    let mut limiter = AddressLimiter::new(10.0, now);
    let tag = limiter.tag("192.0.2.1".parse().expect("ip"), now);
    assert!(limiter.allow(tag, now));
    let limiter = format!("{limiter:?}");
    assert_clean("address limiter", &limiter);
    assert!(!limiter.contains("192.0.2.1"), "an address in {limiter}");
    let mut counter = ConnectionCounter::new(4, now);
    assert!(
        counter
            .open("192.0.2.1".parse().expect("ip"), now)
            .is_some()
    );
    let counter = format!("{counter:?}");
    assert_clean("connection counter", &counter);
    assert!(!counter.contains("192.0.2.1"), "an address in {counter}");

    let reply = approdo_relay::sfu::Reply::Answer {
        conn: 1,
        session,
        participant: ParticipantId(2),
        call: 3,
        sdp: format!("v=0 {CANARY} a=fingerprint:sha-256 AB:CD"),
    };
    assert_clean("sfu reply", &format!("{reply:?}"));

    let org = approdo_core::identity::OrgSigningKey::generate();
    let config = approdo_relay::admin::demo_config(&org, dir.path().join("relay"));
    let relay = approdo_relay::Relay::new(config).expect("relay");
    assert_clean("relay", &format!("{relay:?}"));
    assert_clean("inspector", &format!("{:?}", relay.inspector()));

    let staff = approdo_relay::admin::DemoStaff {
        spec: approdo_relay::admin::StaffSpec {
            role: approdo_core::identity::Role::Operator,
            label: "op".into(),
            desks: vec![],
            languages: vec![],
            valid_days: 1,
        },
        path: "op.cred".into(),
        passphrase: CANARY.into(),
    };
    assert_clean("demo staff", &format!("{staff:?}"));

    use approdo_relay::switchboard::{CallCommand, Output};
    let frame = Output::Frame(7, axum::body::Bytes::from(CANARY.as_bytes().to_vec()));
    assert_clean("switchboard output", &format!("{frame:?}"));
    let join = Output::Call(CallCommand::Join {
        conn: 7,
        session,
        participant: ParticipantId(2),
        call: 1,
        offer: format!("v=0 {CANARY} a=candidate:1 1 udp 1 192.0.2.9 5000 typ host"),
    });
    let join = format!("{join:?}");
    assert_clean("call command", &join);
    assert!(!join.contains("192.0.2.9"), "an address in {join}");
}
