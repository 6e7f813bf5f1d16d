//! A person who writes many messages (long ones too) before an operator answers is
//! connected all the same: the client cuts its backlog into frames the relay accepts, the
//! operator reads every word in order, and past the backlog's bound the person is told
//! instead of losing words silently. (Before: five or more queued messages went out as one
//! `Send` the relay refused, the client resent it forever, and the operator never heard a
//! word.)

mod in_memory;

use approdo_core::client::Event;
use approdo_core::identity::Role;
use approdo_core::limits::{MAX_BACKLOG_MESSAGES, MAX_ENVELOPES_PER_SEND, MAX_TEXT_LEN};
use in_memory::World;

#[test]
fn a_long_backlog_reaches_the_operator_in_order() {
    let mut w = World::new();
    let person = w.person("en", None);
    let session = w.session_of(person);
    let mut written = Vec::new();
    for i in 0..MAX_BACKLOG_MESSAGES {
        // Every other message as long as a message may be.
        let body = if i % 2 == 0 {
            format!("{i:02}{}", "x".repeat(MAX_TEXT_LEN - 2))
        } else {
            format!("message {i}")
        };
        w.client(person).send_text(session, &body).expect("kept");
        written.push(body);
    }
    let refused = w.client(person).send_text(session, "one too many");
    assert!(refused.is_err(), "the backlog is bounded");
    w.pump();
    assert!(
        w.saw(person, |e| matches!(e, Event::BacklogFull { .. })),
        "and the person is told"
    );

    let operator = w.staff(Role::Operator, &["national"], &["en"]);
    w.client(operator).accept(session).expect("accept");
    w.pump();

    assert_eq!(w.refused, vec![], "the relay refused nothing");
    assert_eq!(w.said_to(operator), written, "every word, in order, once");
    const { assert!(MAX_BACKLOG_MESSAGES > MAX_ENVELOPES_PER_SEND) };

    w.client(operator)
        .send_text(session, "I am here")
        .expect("send");
    w.pump();
    assert_eq!(w.said_to(person), vec!["I am here".to_owned()]);
}
