//! After a resume the relay may send again events the client already processed (their
//! acknowledgement was lost with the connection). The client processes each once.

use approdo_core::client::{Client, Event};
use approdo_core::identity::OrgSigningKey;
use approdo_core::ids::{ParticipantId, ResumeToken, SessionId, Tag};
use approdo_core::wire::{ClientFrame, Payload, RelayFrame, SessionEvent};

#[test]
fn duplicate_sequence_numbers_are_ignored_and_resends_follow_the_relay() {
    let org = OrgSigningKey::generate();
    let mut c = Client::person(org.public());
    c.open_session(Tag::new("en").expect("tag"), None)
        .expect("open");
    let session = SessionId([5; 16]);
    let revocations = org.sign_revocations(&Default::default());
    c.handle_frame(
        RelayFrame::SessionOpened {
            session,
            you: ParticipantId(1),
            token: ResumeToken([1; 32]),
            revocations,
        },
        0,
    )
    .expect("opened");
    let departed = |seq| RelayFrame::Event {
        session,
        seq,
        event: SessionEvent::Departed {
            id: ParticipantId(7),
        },
    };
    for seq in [1, 2, 1, 2, 3, 2] {
        c.handle_frame(departed(seq), 0).expect("event");
    }
    let mut left = 0;
    while let Some(e) = c.poll_event() {
        if matches!(e, Event::PeerLeft { .. }) {
            left += 1;
        }
    }
    assert_eq!(left, 3, "three distinct events, each once");

    // The client acknowledges what it processed, once.
    let frames: Vec<ClientFrame> = std::iter::from_fn(|| c.poll_frame()).collect();
    assert!(frames.contains(&ClientFrame::Ack { session, up_to: 3 }));

    // Written while nobody else is present: kept in the backlog, nothing sent yet.
    c.send_text(session, "hello").expect("send");
    assert!(std::iter::from_fn(|| c.poll_frame()).all(|f| !matches!(f, ClientFrame::Send { .. })));

    // A payload from a participant we have no channel with cannot be read; it is dropped.
    c.handle_frame(
        RelayFrame::Event {
            session,
            seq: 4,
            event: SessionEvent::Message {
                from: ParticipantId(9),
                payload: Payload::Cipher {
                    nonce: 0,
                    data: vec![0; 40],
                },
            },
        },
        0,
    )
    .expect("event");
    assert!(matches!(c.poll_event(), Some(Event::Undecryptable { .. })));
}
