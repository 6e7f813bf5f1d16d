//! The observatory keeps only what the organisation defined: territories are configured
//! desks, and each kind of exploitation appears at most once. A record with anything else
//! is refused (and the case stays open), so free text can never reach the one thing that
//! outlives a session.

mod in_memory;

use approdo_core::identity::Role;
use approdo_core::ids::Tag;
use approdo_core::observatory::{
    Activator, AgeBand, Exploitation, Gender, ObservatoryRecord, Outcome,
};
use approdo_core::wire::ErrorCode;
use in_memory::World;

fn record(territory: &str, exploitation: Vec<Exploitation>) -> ObservatoryRecord {
    ObservatoryRecord {
        gender: Gender::Female,
        age: AgeBand::From18To25,
        territory_emerged: Some(Tag::new(territory).expect("tag")),
        territory_exploitation: None,
        exploitation,
        activator: Activator::Person,
        outcome: Outcome::Counselling,
    }
}

#[test]
fn only_configured_territories_and_distinct_kinds_are_filed() {
    let mut w = World::new();
    let people: Vec<_> = (0..3).map(|_| w.person("en", None)).collect();
    let operator = w.staff(Role::Operator, &["national"], &["en"]);
    let sessions: Vec<_> = people.iter().map(|p| w.session_of(*p)).collect();
    for s in &sessions {
        w.client(operator).accept(*s).expect("accept");
        w.pump();
    }
    let bad = [
        record("atlantis", vec![Exploitation::Begging]),
        record(
            "toscana",
            vec![Exploitation::Begging, Exploitation::Begging],
        ),
    ];
    for (session, r) in sessions.iter().zip(bad) {
        w.client(operator).close_case(*session, r).expect("sent");
        w.pump();
    }
    let refused = w
        .refused
        .iter()
        .filter(|(c, e)| *c == operator && *e == ErrorCode::NotAllowed)
        .count();
    assert_eq!(refused, 2);
    assert_eq!(w.sb.observatory().len(), 0, "nothing filed");

    w.client(operator)
        .close_case(sessions[2], record("toscana", vec![Exploitation::Begging]))
        .expect("sent");
    w.pump();
    assert_eq!(w.sb.observatory().len(), 1);
}
