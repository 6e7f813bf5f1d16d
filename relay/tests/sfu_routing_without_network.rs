//! The SFU's forwarding decisions, without a network: who receives whom in which slot as
//! members come and go, how a receive stream stays continuous when its source changes,
//! and when publishers are asked for key frames.

use approdo_core::ids::{ParticipantId, SessionId};
use approdo_core::limits::CALL_SLOTS;
use approdo_relay::sfu::forward::{
    KEYFRAME_BURST_MS, KEYFRAME_PERIOD_MS, KeyframePlan, StreamRewriter,
};
use approdo_relay::sfu::room::{CallFull, Rooms};

const P: ParticipantId = ParticipantId(1);
const OP: ParticipantId = ParticipantId(2);
const INT: ParticipantId = ParticipantId(3);

fn session(b: u8) -> SessionId {
    SessionId([b; 16])
}

#[test]
fn three_way_call_routes_everyone_to_everyone_else_only() {
    let mut rooms = Rooms::default();
    let s = session(1);
    rooms.join(s, P).expect("join");
    assert!(rooms.fanout(&s, P).is_empty(), "alone: nobody receives");
    rooms.join(s, OP).expect("join");
    rooms.join(s, INT).expect("join");
    for from in [P, OP, INT] {
        let mut to: Vec<_> = rooms.fanout(&s, from).into_iter().map(|(t, _)| t).collect();
        to.sort();
        let mut want: Vec<_> = [P, OP, INT].into_iter().filter(|p| *p != from).collect();
        want.sort();
        assert_eq!(
            to, want,
            "{from:?} reaches each other member once, never itself"
        );
    }
    // A slot at one receiver carries one source only.
    for to in [P, OP, INT] {
        let mut slots: Vec<usize> = [P, OP, INT]
            .into_iter()
            .flat_map(|from| rooms.fanout(&s, from))
            .filter(|(t, _)| *t == to)
            .map(|(_, slot)| slot)
            .collect();
        let n = slots.len();
        slots.dedup();
        assert_eq!(slots.len(), n);
        assert!(slots.iter().all(|s| *s < CALL_SLOTS));
    }
}

#[test]
fn sessions_never_mix() {
    let mut rooms = Rooms::default();
    rooms.join(session(1), P).expect("join");
    rooms.join(session(1), OP).expect("join");
    rooms.join(session(2), ParticipantId(7)).expect("join");
    rooms.join(session(2), ParticipantId(8)).expect("join");
    assert_eq!(rooms.fanout(&session(1), P), vec![(OP, 0)]);
    assert_eq!(
        rooms.fanout(&session(2), ParticipantId(7)),
        vec![(ParticipantId(8), 0)]
    );
    // A participant number of one session means nothing in another.
    assert!(rooms.fanout(&session(2), P).is_empty());
}

#[test]
fn leaving_frees_slots_and_stops_forwarding() {
    let mut rooms = Rooms::default();
    let s = session(3);
    for p in [P, OP, INT] {
        rooms.join(s, p).expect("join");
    }
    let int_slot_at_p = rooms
        .fanout(&s, INT)
        .into_iter()
        .find(|(t, _)| *t == P)
        .map(|(_, slot)| slot)
        .expect("routed");
    rooms.leave(&s, INT);
    assert!(
        rooms.fanout(&s, INT).is_empty(),
        "nothing forwarded from a leaver"
    );
    assert!(
        rooms.fanout(&s, P).iter().all(|(t, _)| *t != INT),
        "nothing forwarded to a leaver"
    );
    // The slot it had at the person goes to whoever comes next.
    let next = ParticipantId(9);
    rooms.join(s, next).expect("join");
    assert!(rooms.fanout(&s, next).contains(&(P, int_slot_at_p)));
    for p in [P, OP, next] {
        rooms.leave(&s, p);
    }
    assert!(rooms.is_empty(), "an empty call is forgotten");
}

#[test]
fn a_call_is_as_large_as_the_slots() {
    let mut rooms = Rooms::default();
    let s = session(4);
    for i in 0..=CALL_SLOTS as u32 {
        rooms.join(s, ParticipantId(i + 1)).expect("fits");
    }
    assert_eq!(
        rooms.join(s, ParticipantId(99)),
        Err(CallFull),
        "one more than the pages can show"
    );
}

#[test]
fn a_stream_stays_continuous_when_its_source_changes() {
    let mut r = StreamRewriter::default();
    // First source: passes through unchanged.
    assert_eq!(r.rewrite(1, 100, 9000, 3000), (100, 9000));
    assert_eq!(r.rewrite(1, 101, 12000, 3000), (101, 12000));
    // A reordered older packet does not pull the stream back.
    assert_eq!(r.rewrite(1, 99, 6000, 3000), (99, 6000));
    // A new source with unrelated numbers carries on from the newest sent.
    assert_eq!(r.rewrite(2, 5, 777, 3000), (102, 15000));
    assert_eq!(r.rewrite(2, 6, 3777, 3000), (103, 18000));
    // Wrapping around 16 bits is still "newer".
    let mut w = StreamRewriter::default();
    assert_eq!(w.rewrite(1, u16::MAX, 0, 960), (u16::MAX, 0));
    assert_eq!(w.rewrite(1, 0, 960, 960), (0, 960));
    assert_eq!(w.rewrite(3, 500, 1, 960), (1, 1920));
}

#[test]
fn keyframes_are_asked_for_after_a_change_and_periodically_only() {
    let mut plan = KeyframePlan::new(0);
    let asks = |plan: &mut KeyframePlan, from: u64, to: u64| -> Vec<u64> {
        (from..to).step_by(100).filter(|t| plan.poll(*t)).collect()
    };
    // Nothing changes: one request per period.
    assert_eq!(
        asks(&mut plan, 0, 2 * KEYFRAME_PERIOD_MS + 100),
        vec![KEYFRAME_PERIOD_MS, 2 * KEYFRAME_PERIOD_MS]
    );
    // A change: a short burst, not a storm.
    let t0 = 2 * KEYFRAME_PERIOD_MS + 1000;
    plan.changed(t0);
    let burst = asks(&mut plan, t0, t0 + 3000);
    assert_eq!(burst.len(), KEYFRAME_BURST_MS.len(), "{burst:?}");
}
