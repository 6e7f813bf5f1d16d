//! The person's silent "I cannot talk now" signal reaches staff end to end, and the relay
//! cannot tell it from a short chat message: same payload kind, same padded size.

mod support;

use approdo_core::client::Event;
use approdo_core::identity::Role;
use approdo_core::wire::Payload;
use support::hostile_relay::HostileRelay;

fn cipher_len(payload: &Payload) -> usize {
    match payload {
        Payload::Cipher { data, .. } => data.len(),
        other => panic!("an encrypted payload, not {other:?}"),
    }
}

#[test]
fn the_signal_reaches_staff_looking_like_a_short_message() {
    let mut relay = HostileRelay::new();
    let person = relay.person();
    let operator = relay.staff(Role::Operator);
    relay.accept(operator);
    let to = relay.pid(operator);
    relay.say(person, "ok");
    let session = relay.session;
    relay
        .client(person)
        .signal_not_safe(session)
        .expect("signal");
    relay.pump();

    let sent = relay.sent_to(person, to);
    let [.., text, signal] = &sent[..] else {
        panic!("two envelopes at least")
    };
    assert_eq!(cipher_len(&text.payload), cipher_len(&signal.payload));
    let from = relay.pid(person);
    assert!(
        relay
            .events(operator)
            .iter()
            .any(|e| *e == Event::NotSafe { session, from }),
        "the operator is told"
    );
    assert!(
        relay.client(operator).signal_not_safe(session).is_err(),
        "only the person signals"
    );
}
