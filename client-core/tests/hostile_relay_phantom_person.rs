//! A relay that announces to staff a second anonymous participant — one it drives itself,
//! able to complete a Noise handshake — gets nothing: no staff client sends it a single
//! envelope (no handshake reply, no ciphertext), every staff client shows
//! `Alarm::SecondPerson`, and the real conversation carries on. The same script with the
//! double behaving honestly is the control: everyone agrees on the roster, no alarm.

mod support;

use approdo_core::client::{Alarm, ROSTER_CONFIRM_TIMEOUT_SECS};
use approdo_core::identity::Role;
use support::hostile_relay::{HostileRelay, SeatId};

struct Cast {
    relay: HostileRelay,
    person: SeatId,
    operator: SeatId,
    interpreter: SeatId,
    phantom: Option<SeatId>,
}

fn conversation(hostile: bool) -> Cast {
    let mut relay = HostileRelay::new();
    let person = relay.person();
    let operator = relay.staff(Role::Operator);
    let interpreter = relay.staff(Role::Interpreter);
    relay.accept(operator);
    relay.say(person, "hello");
    relay.join(interpreter);
    relay.say(operator, "hi, an interpreter is with us");
    let phantom = hostile.then(|| relay.phantom());
    relay.advance(ROSTER_CONFIRM_TIMEOUT_SECS + 1);
    relay.say(person, "are you still there?");
    relay.say(operator, "yes, still here");
    relay.say(interpreter, "translating");
    Cast {
        relay,
        person,
        operator,
        interpreter,
        phantom,
    }
}

#[test]
fn staff_refuse_a_second_anonymous_participant_and_raise_the_alarm() {
    let c = conversation(true);
    let r = &c.relay;
    let phantom = c.phantom.expect("the phantom was announced");
    let ghost = r.pid(phantom);
    let mut failures = Vec::new();
    for (name, staff) in [("operator", c.operator), ("interpreter", c.interpreter)] {
        let sent = r.sent_to(staff, ghost);
        if !sent.is_empty() {
            failures.push(format!(
                "the {name} sent the phantom {} envelope(s): {:?}",
                sent.len(),
                sent.iter().map(|e| kind(&e.payload)).collect::<Vec<_>>()
            ));
        }
        let alarmed = r
            .alarms(staff)
            .iter()
            .any(|a| matches!(a, Alarm::SecondPerson { peer } if *peer == ghost));
        if !alarmed {
            failures.push(format!("the {name} showed no SecondPerson alarm"));
        }
    }
    if !r.texts(phantom).is_empty() {
        failures.push("the phantom read the conversation".into());
    }
    for (name, seat, expected) in [
        ("person", c.person, &["yes, still here", "translating"][..]),
        (
            "operator",
            c.operator,
            &["are you still there?", "translating"][..],
        ),
        (
            "interpreter",
            c.interpreter,
            &["are you still there?", "yes, still here"][..],
        ),
    ] {
        let texts = r.texts(seat);
        for t in expected {
            if !texts.iter().any(|x| x == t) {
                failures.push(format!("the {name} never got {t:?} (got {texts:?})"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn control_an_honest_relay_raises_no_alarm() {
    let c = conversation(false);
    let r = &c.relay;
    let everyone = [c.person, c.operator, c.interpreter];
    let mut members: Vec<_> = everyone.iter().map(|s| r.pid(*s)).collect();
    members.sort();
    let mut failures = Vec::new();
    for seat in everyone {
        if !r.alarms(seat).is_empty() {
            failures.push(format!("{:?} showed {:?}", r.pid(seat), r.alarms(seat)));
        }
        if r.agreed(seat).last() != Some(&members) {
            failures.push(format!(
                "{:?} never saw the roster {members:?} agreed",
                r.pid(seat)
            ));
        }
    }
    assert_eq!(
        r.texts(c.person),
        [
            "hi, an interpreter is with us",
            "yes, still here",
            "translating"
        ]
    );
    assert_eq!(
        r.texts(c.operator),
        ["hello", "are you still there?", "translating"]
    );
    assert_eq!(
        r.texts(c.interpreter),
        [
            "hi, an interpreter is with us",
            "are you still there?",
            "yes, still here"
        ]
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn kind(p: &approdo_core::wire::Payload) -> &'static str {
    match p {
        approdo_core::wire::Payload::Handshake(_) => "Handshake",
        approdo_core::wire::Payload::Cipher { .. } => "Cipher",
        approdo_core::wire::Payload::HandshakeRefused => "HandshakeRefused",
        approdo_core::wire::Payload::Restart => "Restart",
    }
}
