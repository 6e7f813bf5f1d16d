//! One staff connection takes part in at most `max_sessions_per_staff` sessions at once: a
//! single credential (lost, stolen or scripted) cannot pin down a whole queue, and the
//! people past the cap stay in the queue for colleagues.

mod in_memory;

use approdo_core::identity::Role;
use approdo_core::wire::ErrorCode;
use approdo_relay::Limits;
use in_memory::World;

#[test]
fn an_operator_holds_at_most_the_configured_number_of_sessions() {
    let cap = Limits::default().max_sessions_per_staff;
    let mut w = World::new();
    let people: Vec<_> = (0..=cap).map(|_| w.person("en", None)).collect();
    let operator = w.staff(Role::Operator, &["national"], &["en"]);
    for (i, p) in people.iter().enumerate() {
        let session = w.session_of(*p);
        w.client(operator).accept(session).expect("accept");
        w.pump();
        let refused = w
            .refused
            .iter()
            .filter(|(c, e)| *c == operator && *e == ErrorCode::NotAllowed)
            .count();
        assert_eq!(refused, usize::from(i >= cap), "accept number {}", i + 1);
    }
    assert_eq!(w.client(operator).sessions().len(), cap);

    // Leaving one makes room for the person still waiting.
    let first = w.session_of(people[0]);
    w.client(operator).leave(first).expect("leave");
    w.pump();
    let last = w.session_of(people[cap]);
    w.client(operator).accept(last).expect("accept");
    w.pump();
    assert!(w.client(operator).sessions().contains(&last));
}
