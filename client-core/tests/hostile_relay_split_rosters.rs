//! A relay that shows members different rosters — it adds an interpreter and tells the
//! operator but never the person — does not get the conversation to the interpreter:
//! nothing the person or the operator writes after the arrival ever reaches the
//! interpreter, and both the person and the operator see a membership alarm
//! (`RosterMismatch`, `UnknownMember`, or `RosterUnconfirmed` once the confirmation time
//! has passed). The same script with the double behaving honestly is the control.

mod support;

use approdo_core::client::ROSTER_CONFIRM_TIMEOUT_SECS;
use approdo_core::identity::Role;
use support::hostile_relay::{HostileRelay, SeatId};

/// What the person and the operator write once the interpreter is in.
const AFTER: [&str; 4] = [
    "person: my employer keeps my passport",
    "operator: you can keep it to yourself if you prefer",
    "person: later words",
    "operator: later words",
];

struct Cast {
    relay: HostileRelay,
    person: SeatId,
    operator: SeatId,
    interpreter: SeatId,
}

fn conversation(hostile: bool) -> Cast {
    let mut relay = HostileRelay::new();
    let person = relay.person();
    let operator = relay.staff(Role::Operator);
    let interpreter = relay.staff(Role::Interpreter);
    relay.accept(operator);
    relay.say(person, "hello");
    relay.say(operator, "hello, how can I help?");
    if hostile {
        relay.hide(person, interpreter);
    }
    relay.join(interpreter);
    relay.say(person, AFTER[0]);
    relay.say(operator, AFTER[1]);
    relay.advance(ROSTER_CONFIRM_TIMEOUT_SECS + 1);
    relay.say(person, AFTER[2]);
    relay.say(operator, AFTER[3]);
    Cast {
        relay,
        person,
        operator,
        interpreter,
    }
}

#[test]
fn members_shown_different_rosters_keep_the_newcomer_out_and_raise_the_alarm() {
    let c = conversation(true);
    let r = &c.relay;
    let mut failures = Vec::new();
    let leaked: Vec<String> = r
        .texts(c.interpreter)
        .into_iter()
        .filter(|t| AFTER.contains(&t.as_str()))
        .collect();
    if !leaked.is_empty() {
        failures.push(format!(
            "the interpreter the person was never told about read {leaked:?}"
        ));
    }
    for (name, seat) in [("person", c.person), ("operator", c.operator)] {
        if r.alarms(seat).is_empty() {
            failures.push(format!("the {name} showed no membership alarm"));
        }
    }
    // The person and the operator still talk to each other.
    if !r.texts(c.operator).iter().any(|t| t == AFTER[2]) {
        failures.push("the operator lost the person's words".into());
    }
    if !r.texts(c.person).iter().any(|t| t == AFTER[3]) {
        failures.push("the person lost the operator's words".into());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn control_an_honest_relay_brings_the_interpreter_in_without_alarm() {
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
    assert_eq!(r.texts(c.interpreter), AFTER);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
