//! A relay that announces an interpreter honestly but then drops every envelope from the
//! person to the operator — so the person's roster confirmation never reaches the operator
//! — does not get the operator's words to the interpreter: the operator sends the
//! newcomer no chat content, and once the confirmation time has passed shows
//! `RosterUnconfirmed` (or another alarm, or a restarted channel). The same script with the
//! double behaving honestly is the control.

mod support;

use approdo_core::client::{Alarm, ROSTER_CONFIRM_TIMEOUT_SECS};
use approdo_core::identity::Role;
use support::hostile_relay::{HostileRelay, SeatId};

/// What the operator writes once the interpreter is in.
const AFTER: [&str; 2] = [
    "operator: an interpreter joins us",
    "operator: can you tell me where you are?",
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
        relay.drop_between(person, operator);
    }
    relay.join(interpreter);
    relay.say(operator, AFTER[0]);
    relay.advance(ROSTER_CONFIRM_TIMEOUT_SECS + 1);
    relay.say(operator, AFTER[1]);
    Cast {
        relay,
        person,
        operator,
        interpreter,
    }
}

#[test]
fn a_dropped_roster_confirmation_keeps_the_newcomer_out_and_raises_the_alarm() {
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
            "the interpreter read {leaked:?} though the person never confirmed them"
        ));
    }
    let newcomer = r.pid(c.interpreter);
    let unconfirmed = r
        .alarms(c.operator)
        .iter()
        .any(|a| matches!(a, Alarm::RosterUnconfirmed { peer } if *peer == newcomer));
    if !(unconfirmed || !r.alarms(c.operator).is_empty() || r.restarted(c.operator)) {
        failures.push("the operator showed no alarm after the confirmation time".into());
    }
    if r.dropped == 0 {
        failures.push("the double dropped nothing: the scenario did not happen".into());
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
        if !r.alarms(seat).is_empty() || r.restarted(seat) {
            failures.push(format!(
                "{:?} showed an alarm: {:?}",
                r.pid(seat),
                r.events(seat)
            ));
        }
        if r.agreed(seat).last() != Some(&members) {
            failures.push(format!(
                "{:?} never saw the roster {members:?} agreed",
                r.pid(seat)
            ));
        }
    }
    assert_eq!(r.texts(c.interpreter), AFTER);
    assert_eq!(
        r.texts(c.person),
        ["hello, how can I help?", AFTER[0], AFTER[1]]
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
