//! One lost message used to break that direction of a channel for the rest of the session
//! (only the next nonce is accepted). Now the receiver notices the gap, the pair runs a
//! new handshake on its own, both sides are told, and the conversation carries on under
//! new keys with a new safety code that both ends agree on.

mod in_memory;

use approdo_core::client::Event;
use approdo_core::identity::Role;
use approdo_core::safety::SafetyCode;
use approdo_core::wire::{Payload, RelayFrame, SessionEvent};
use in_memory::World;

#[test]
fn a_lost_message_restarts_the_channel_and_the_chat_goes_on() {
    let mut w = World::new();
    let person = w.person("en", None);
    let session = w.session_of(person);
    let operator = w.staff(Role::Operator, &["national"], &["en"]);
    w.client(operator).accept(session).expect("accept");
    w.pump();
    w.client(person).send_text(session, "hello").expect("send");
    w.pump();
    assert_eq!(w.said_to(operator), vec!["hello".to_owned()]);
    let code_before = w.client(person).safety_code(&session);
    assert!(matches!(code_before, Some(SafetyCode::Ready(_))));

    // The relay loses the person's next message to the operator.
    let mut lost = false;
    w.lose = Some(Box::new(move |conn, frame| {
        let hit = conn == operator
            && !lost
            && matches!(
                frame,
                RelayFrame::Event {
                    event: SessionEvent::Message {
                        payload: Payload::Cipher { .. },
                        ..
                    },
                    ..
                }
            );
        lost |= hit;
        hit
    }));
    w.client(person)
        .send_text(session, "lost on the way")
        .expect("send");
    w.pump();
    w.client(person)
        .send_text(session, "shows the gap")
        .expect("send");
    w.pump();

    for side in [person, operator] {
        assert!(
            w.saw(side, |e| matches!(e, Event::ChannelRestarted { .. })),
            "both sides are told"
        );
    }
    assert!(w.saw(operator, |e| matches!(e, Event::Undecryptable { .. })));

    w.client(person)
        .send_text(session, "after the restart")
        .expect("send");
    w.pump();
    w.client(operator)
        .send_text(session, "I read you")
        .expect("send");
    w.pump();
    assert_eq!(
        w.said_to(operator),
        vec!["hello".to_owned(), "after the restart".to_owned()]
    );
    assert_eq!(w.said_to(person), vec!["I read you".to_owned()]);
    let code_after = w.client(person).safety_code(&session);
    assert!(matches!(code_after, Some(SafetyCode::Ready(_))));
    assert_ne!(code_after, code_before, "new keys, new code");
    assert_eq!(code_after, w.client(operator).safety_code(&session));
    assert!(w.refused.is_empty());
}
