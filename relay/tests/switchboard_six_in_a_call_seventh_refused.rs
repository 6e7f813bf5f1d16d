//! A session holds six participants and its call all six of them; a seventh is refused
//! with `SessionFull` before anything changes: an invitation, a transfer, an acceptance or
//! a join beyond six leaves the open invitations and the queue as they were.

mod switchboard_harness;

use approdo_core::client::{Client, Event};
use approdo_core::identity::Role;
use approdo_core::ids::{ParticipantId, SessionId};
use approdo_core::limits::{CALL_SLOTS, MAX_PARTICIPANTS};
use approdo_core::wire::ErrorCode;
use switchboard_harness::{Bench, Wired, honest_pair, tag};

/// Log in an interpreter speaking `languages` on connection `conn`.
fn interpreter(b: &mut Bench, w: &mut Wired, conn: u64, languages: &[&str]) {
    let mut c = Client::staff(
        b.org.public(),
        b.credential(conn, Role::Interpreter, &["national"], languages),
    );
    c.login().expect("login");
    b.connect(conn);
    w.clients.insert(conn, c);
    w.pump(b);
}

/// The relay errors sent to `conn` since last asked.
fn errors(w: &mut Wired, conn: u64) -> Vec<ErrorCode> {
    let (mine, rest): (Vec<_>, Vec<_>) = w.errors.drain(..).partition(|(c, _)| *c == conn);
    w.errors = rest;
    mine.into_iter().map(|(_, e)| e).collect()
}

/// The call members a client was last told of.
fn call_members(w: &mut Wired, conn: u64) -> Option<Vec<ParticipantId>> {
    let c = w.client(conn);
    std::iter::from_fn(|| c.poll_event())
        .filter_map(|e| match e {
            Event::CallMembers { members, .. } => Some(members),
            _ => None,
        })
        .last()
}

fn invite(b: &mut Bench, w: &mut Wired, session: SessionId, language: &str) {
    w.client(2).invite(session, tag(language)).expect("invite");
    w.pump(b);
}

#[test]
fn six_share_a_call_and_a_seventh_is_refused_without_side_effects() {
    assert_eq!(
        CALL_SLOTS + 1,
        MAX_PARTICIPANTS,
        "every participant fits in the call"
    );
    let mut b = Bench::new(|_| {});
    let mut w = Wired::new();
    let session = honest_pair(&mut b, &mut w);

    // Four interpreters join on four invitations: six participants.
    let languages = ["ro", "ar", "zh", "uk"];
    for (i, language) in languages.iter().enumerate() {
        let conn = 3 + i as u64;
        interpreter(&mut b, &mut w, conn, &[language]);
        invite(&mut b, &mut w, session, language);
        w.client(conn).join(session).expect("join");
        w.pump(&mut b);
        assert_eq!(errors(&mut w, conn), vec![], "interpreter {language} joins");
    }
    // A fifth interpreter, invited while there is still room for nobody.
    interpreter(&mut b, &mut w, 7, &["sq"]);
    invite(&mut b, &mut w, session, "sq");
    assert_eq!(
        errors(&mut w, 2),
        vec![ErrorCode::SessionFull],
        "the invitation of a seventh is refused"
    );
    w.client(7).join(session).expect("join");
    w.pump(&mut b);
    assert_eq!(
        errors(&mut w, 7),
        vec![ErrorCode::SessionFull],
        "a seventh cannot join"
    );
    // A transfer would bring in a seventh (the new operator arrives before the old one
    // leaves): refused, and the session does not go back to the queue.
    w.client(2)
        .transfer(session, tag("toscana"), "note")
        .expect("transfer");
    w.pump(&mut b);
    assert_eq!(errors(&mut w, 2), vec![ErrorCode::SessionFull]);
    let mut tuscan = Client::staff(
        b.org.public(),
        b.credential(8, Role::Operator, &["toscana"], &["en"]),
    );
    tuscan.login().expect("login");
    b.connect(8);
    w.clients.insert(8, tuscan);
    w.pump(&mut b);
    w.client(8).accept(session).expect("accept");
    w.pump(&mut b);
    assert_eq!(
        errors(&mut w, 8),
        vec![ErrorCode::NotAllowed],
        "the refused transfer left the session at the national desk, out of the queue"
    );

    // All six enter the call; none is refused.
    for conn in 1..=6 {
        w.client(conn).join_call(session, "v=0").expect("join call");
        w.pump(&mut b);
        assert_eq!(errors(&mut w, conn), vec![], "call member {conn} admitted");
    }
    for conn in 1..=6 {
        let members = call_members(&mut w, conn).expect("told the members");
        assert_eq!(members.len(), 6, "{conn} sees six in the call");
    }

    // Someone leaves; the seventh's invitation was never consumed, so a new one works
    // and the seventh comes in (a join refused for room used up nothing).
    w.client(6).leave(session).expect("leave");
    w.pump(&mut b);
    w.client(7).join(session).expect("join");
    w.pump(&mut b);
    assert_eq!(
        errors(&mut w, 7),
        vec![ErrorCode::NotAllowed],
        "no invitation was left open by the refused one"
    );
    invite(&mut b, &mut w, session, "sq");
    assert_eq!(errors(&mut w, 2), vec![]);
    w.client(7).join(session).expect("join");
    w.pump(&mut b);
    assert_eq!(
        errors(&mut w, 7),
        vec![],
        "with room again, the newcomer joins"
    );
    w.client(7).join_call(session, "v=0").expect("join call");
    w.pump(&mut b);
    assert_eq!(errors(&mut w, 7), vec![]);
    let members = call_members(&mut w, 7).expect("told the members");
    assert_eq!(
        members.len(),
        6,
        "five stayed in the call, and the newcomer"
    );
}

#[test]
fn a_refused_join_leaves_the_invitation_open() {
    let mut b = Bench::new(|_| {});
    let mut w = Wired::new();
    let session = honest_pair(&mut b, &mut w);
    // Three interpreters in (five participants), and two invitations open at once.
    for (i, language) in ["ro", "ar", "zh"].iter().enumerate() {
        let conn = 3 + i as u64;
        interpreter(&mut b, &mut w, conn, &[language]);
        invite(&mut b, &mut w, session, language);
        w.client(conn).join(session).expect("join");
        w.pump(&mut b);
    }
    interpreter(&mut b, &mut w, 6, &["uk"]);
    interpreter(&mut b, &mut w, 7, &["sq"]);
    invite(&mut b, &mut w, session, "uk");
    invite(&mut b, &mut w, session, "sq");
    assert_eq!(
        errors(&mut w, 2),
        vec![],
        "room for one more: both invitations open"
    );
    w.client(6).join(session).expect("join");
    w.pump(&mut b);
    assert_eq!(errors(&mut w, 6), vec![]);
    w.client(7).join(session).expect("join");
    w.pump(&mut b);
    assert_eq!(errors(&mut w, 7), vec![ErrorCode::SessionFull]);
    // Once someone leaves, the same invitation still stands.
    w.client(3).leave(session).expect("leave");
    w.pump(&mut b);
    w.client(7).join(session).expect("join");
    w.pump(&mut b);
    assert_eq!(
        errors(&mut w, 7),
        vec![],
        "the invitation outlived the refusal"
    );
}
