//! The person's first words (written while nobody answered) and the intake go only to an
//! operator of the desk the person asked for (or a national one), never to whoever the
//! relay lets in first: an interpreter without an invitation, or an operator of another
//! region, reads none of them.

mod support;

use approdo_core::client::Event;
use approdo_core::identity::Role;
use approdo_core::observatory::Seeker;
use support::hostile_relay::HostileRelay;

fn intakes(relay: &HostileRelay, seat: usize) -> usize {
    relay
        .events(seat)
        .iter()
        .filter(|e| matches!(e, Event::Intake { .. }))
        .count()
}

#[test]
fn the_backlog_waits_for_an_operator_of_the_intended_desk() {
    let mut relay = HostileRelay::new();
    let person = relay.person_in(Some("toscana"));
    relay
        .client(person)
        .set_intake(Seeker::Myself)
        .expect("intake");
    let early = ["please help", "I am in Prato", "they took my passport"];
    for text in early {
        relay.say(person, text);
    }

    // The relay lets in an interpreter nobody invited, then an operator of another region.
    let interpreter = relay.staff_at(Role::Interpreter, "toscana");
    relay.join(interpreter);
    let veneto = relay.staff_at(Role::Operator, "veneto");
    relay.accept(veneto);
    relay.say(person, "is someone there?");
    for seat in [interpreter, veneto] {
        let read = relay.texts(seat);
        assert!(
            early.iter().all(|t| !read.contains(&t.to_string())),
            "whoever came first read none of the first words: {read:?}"
        );
        assert_eq!(intakes(&relay, seat), 0, "nor the intake");
    }
    assert!(
        relay
            .texts(veneto)
            .contains(&"is someone there?".to_owned())
    );

    // An operator of the desk the person asked for gets everything, in order, once.
    let toscana = relay.staff_at(Role::Operator, "toscana");
    relay.accept(toscana);
    let read = relay.texts(toscana);
    let first: Vec<&str> = read.iter().map(String::as_str).take(3).collect();
    assert_eq!(first, early, "the first words, in order: {read:?}");
    assert_eq!(intakes(&relay, toscana), 1);
    assert!(relay.alarms(person).is_empty());
}
