//! TURN credentials go only to a member of the session's live call, at most twice per entry
//! into the call; anyone else is refused (a stranger like for any session frame, a member
//! outside the call with `NotInCall`), and a relay without TURN says `Unavailable`. The
//! username is `<expiry>:<random hex>`: no session id, no participant number.

mod switchboard_harness;

use approdo_core::ids::SessionId;
use approdo_core::wire::{ClientFrame, ErrorCode, RelayFrame, TurnAnswer};
use approdo_relay::turn::Turn;
use switchboard_harness::Bench;

const SECRET: &[u8] = b"a test secret of some length";
const URL: &str = "turn:127.0.0.1:3478?transport=tcp";

/// A person (connection 1) whose session an operator (connection 2) has accepted.
fn accepted_session(b: &mut Bench) -> SessionId {
    let session = b.person_opens(1);
    let mut operator = b.operator_logged_in(2, 1);
    b.accept(2, &mut operator, session);
    session
}

/// What `conn` gets for a `TurnRequest` about `session`.
fn ask(b: &mut Bench, conn: u64, session: SessionId) -> Vec<RelayFrame> {
    b.frame(conn, &ClientFrame::TurnRequest { session });
    let out = b.outputs();
    assert!(!Bench::closes(&out, conn), "a refusal keeps the connection");
    Bench::to(&out, conn)
}

fn answer(frames: &[RelayFrame], session: SessionId) -> TurnAnswer {
    match frames {
        [RelayFrame::Turn { session: s, answer }] if *s == session => answer.clone(),
        other => panic!("one Turn answer for the session, got {other:?}"),
    }
}

fn with_turn() -> Bench {
    Bench::new(|c| {
        c.turn = Some(Turn::new(vec![URL.into()], SECRET, 300).expect("turn"));
    })
}

#[test]
fn only_a_member_in_the_live_call_gets_credentials() {
    let mut b = with_turn();
    let session = accepted_session(&mut b);

    // A stranger (its own connection, in no session) learns nothing about the session.
    b.connect(3);
    assert_eq!(
        ask(&mut b, 3, session),
        vec![RelayFrame::Error {
            code: ErrorCode::UnknownSession
        }]
    );

    // A member not (yet) in the call.
    assert_eq!(
        answer(&ask(&mut b, 1, session), session),
        TurnAnswer::NotInCall
    );

    b.join_call(1, session);
    let unix_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let TurnAnswer::Credentials {
        urls,
        username,
        credential,
        lifetime_secs,
    } = answer(&ask(&mut b, 1, session), session)
    else {
        panic!("credentials for a call member");
    };
    assert_eq!(urls, vec![URL.to_owned()]);
    assert_eq!(lifetime_secs, 300);
    // `<expiry>:<32 hex digits>`, nothing else: no session id, no participant.
    let (expiry, id) = username.split_once(':').expect("expiry:id");
    let expiry: u64 = expiry.parse().expect("unix seconds");
    assert!(
        expiry >= unix_now + 299 && expiry <= unix_now + 302,
        "expires in 300 s"
    );
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|c| c.is_ascii_hexdigit()));
    assert!(!username.contains(&session.to_hex()), "no session id");
    assert!(!username.contains(&session.to_hex()[..8]));
    assert_eq!(
        credential,
        approdo_relay::turn::credential(SECRET, &username)
    );

    // A second one (with a new random id), then no more for this entry into the call.
    let TurnAnswer::Credentials {
        username: again, ..
    } = answer(&ask(&mut b, 1, session), session)
    else {
        panic!("a second set");
    };
    assert_ne!(again, username);
    assert_eq!(
        answer(&ask(&mut b, 1, session), session),
        TurnAnswer::TooMany
    );

    // Out of the call: refused again.
    b.frame(1, &ClientFrame::CallLeave { session });
    b.outputs();
    assert_eq!(
        answer(&ask(&mut b, 1, session), session),
        TurnAnswer::NotInCall
    );

    // A new entry into the call starts the count again.
    b.join_call(1, session);
    assert!(matches!(
        answer(&ask(&mut b, 1, session), session),
        TurnAnswer::Credentials { .. }
    ));
}

#[test]
fn a_relay_without_turn_says_so() {
    let mut b = Bench::new(|_| {});
    let session = accepted_session(&mut b);
    b.join_call(1, session);
    assert_eq!(
        answer(&ask(&mut b, 1, session), session),
        TurnAnswer::Unavailable
    );
}
