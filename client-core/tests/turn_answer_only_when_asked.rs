//! The page gets TURN credentials only in answer to its own request: a `Turn` frame nobody
//! asked for is dropped, and credentials outside the protocol's limits (no URL, a URL that
//! is not TURN) reach the page as `Unavailable`, never as servers to try.

use approdo_core::client::{Client, Event};
use approdo_core::identity::{OrgSigningKey, RevocationList};
use approdo_core::ids::{ParticipantId, ResumeToken, SessionId, Tag};
use approdo_core::wire::{ClientFrame, RelayFrame, TurnAnswer};

const S: SessionId = SessionId([0x11; 16]);

fn person_in_session() -> Client {
    let org = OrgSigningKey::from_seed(&[3; 32]);
    let mut c = Client::person(org.public());
    c.open_session(Tag::new("en").expect("tag"), None)
        .expect("open");
    c.handle_frame(
        RelayFrame::SessionOpened {
            session: S,
            you: ParticipantId(1),
            token: ResumeToken([7; 32]),
            revocations: org.sign_revocations(&RevocationList {
                issued_at: 1,
                serials: vec![],
            }),
        },
        1,
    )
    .expect("opened");
    while c.poll_frame().is_some() {}
    while c.poll_event().is_some() {}
    c
}

fn credentials(urls: Vec<String>) -> RelayFrame {
    RelayFrame::Turn {
        session: S,
        answer: TurnAnswer::Credentials {
            urls,
            username: "1798761600:000102030405060708090a0b0c0d0e0f".into(),
            credential: "VVovvNGlzmA5RnC7huS2jAq8sRk=".into(),
            lifetime_secs: 300,
        },
    }
}

fn turn_events(c: &mut Client) -> Vec<TurnAnswer> {
    std::iter::from_fn(|| c.poll_event())
        .filter_map(|e| match e {
            Event::Turn { answer, .. } => Some(answer),
            _ => None,
        })
        .collect()
}

#[test]
fn unasked_credentials_are_dropped() {
    let mut c = person_in_session();
    c.handle_frame(
        credentials(vec!["turn:127.0.0.1:3478?transport=tcp".into()]),
        1,
    )
    .expect("handled");
    assert_eq!(turn_events(&mut c), vec![]);
}

#[test]
fn one_request_one_answer() {
    let mut c = person_in_session();
    c.request_turn(S).expect("asked");
    let asked: Vec<ClientFrame> = std::iter::from_fn(|| c.poll_frame()).collect();
    assert_eq!(asked, vec![ClientFrame::TurnRequest { session: S }]);
    let url = "turn:127.0.0.1:3478?transport=tcp".to_owned();
    c.handle_frame(credentials(vec![url.clone()]), 1)
        .expect("handled");
    c.handle_frame(credentials(vec![url.clone()]), 1)
        .expect("handled");
    let got = turn_events(&mut c);
    assert_eq!(got.len(), 1, "the second, unasked, is dropped");
    assert!(matches!(&got[0], TurnAnswer::Credentials { urls, .. } if *urls == vec![url]));
}

#[test]
fn credentials_outside_the_limits_are_unavailable() {
    for urls in [
        vec![],
        vec!["stun:127.0.0.1:3478".to_owned()],
        vec!["https://example.org/".to_owned()],
        vec!["turn:x".to_owned(); 5],
        vec![format!("turn:{}", "a".repeat(300))],
    ] {
        let mut c = person_in_session();
        c.request_turn(S).expect("asked");
        c.handle_frame(credentials(urls), 1).expect("handled");
        assert_eq!(turn_events(&mut c), vec![TurnAnswer::Unavailable]);
    }
}
