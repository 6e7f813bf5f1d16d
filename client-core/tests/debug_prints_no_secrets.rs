//! `Debug` output ends up in logs, panics and test output: it must never carry a message
//! body, a handover note, a frame key or a payload's content.

use approdo_core::client::Event;
use approdo_core::content::Content;
use approdo_core::ids::{DeskId, ParticipantId, SessionId};
use zeroize::Zeroizing;

const CANARY: &str = "canary-7f3a-do-not-print";
const KEY: [u8; 16] = [0xab; 16];

fn assert_clean(what: &str, printed: &str) {
    assert!(
        !printed.contains(CANARY),
        "{what} printed a body: {printed}"
    );
    assert!(
        !printed.contains("171") && !printed.to_lowercase().contains("abab"),
        "{what} printed key bytes: {printed}"
    );
}

#[test]
fn events_and_contents_print_no_bodies_or_keys() {
    let session = SessionId([1; 16]);
    let desk = DeskId::new("toscana").expect("tag");
    let events = [
        Event::Message {
            session,
            from: ParticipantId(2),
            body: Zeroizing::new(CANARY.to_owned()),
            private: false,
        },
        Event::HandoverNote {
            session,
            from: ParticipantId(2),
            desk: desk.clone(),
            body: Zeroizing::new(CANARY.to_owned()),
        },
        Event::MediaKey {
            session,
            participant: ParticipantId(3),
            epoch: 4,
            own: true,
            key: Zeroizing::new(KEY),
        },
    ];
    for e in &events {
        let printed = format!("{e:?} {e:#?}");
        assert_clean("an event", &printed);
        assert!(printed.contains("session"), "still useful: {printed}");
    }
    let contents = [
        Content::Text {
            body: CANARY.to_owned(),
            private: true,
        },
        Content::HandoverNote {
            desk,
            body: CANARY.to_owned(),
        },
        Content::MediaKey { epoch: 1, key: KEY },
    ];
    for c in &contents {
        assert_clean("a content", &format!("{c:?} {c:#?}"));
    }
}
