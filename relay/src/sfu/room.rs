//! Who receives whom in each session's call: plain bookkeeping, no network.
//!
//! Every member's page offers [`CALL_SLOTS`] receive slots. When someone joins, each
//! member already there gives them a free slot, and they get one slot per member. A slot
//! keeps its source until that source leaves, so a receiver's streams do not move about.

use std::collections::{BTreeMap, HashMap};

use approdo_core::ids::{ParticipantId, SessionId};
use approdo_core::limits::CALL_SLOTS;

/// The slots of one member: which participant each carries.
pub type Slots = [Option<ParticipantId>; CALL_SLOTS];

/// The call is as large as the pages' slots allow.
#[derive(Debug, PartialEq, Eq)]
pub struct CallFull;

/// Every session's call. See the module documentation.
#[derive(Debug, Default)]
pub struct Rooms {
    rooms: HashMap<SessionId, BTreeMap<ParticipantId, Slots>>,
}

impl Rooms {
    /// `pid` enters the call of `session`.
    pub fn join(&mut self, session: SessionId, pid: ParticipantId) -> Result<(), CallFull> {
        let room = self.rooms.entry(session).or_default();
        if room.contains_key(&pid) {
            return Ok(());
        }
        if room.len() > CALL_SLOTS {
            return Err(CallFull);
        }
        let mut mine: Slots = [None; CALL_SLOTS];
        for (next, (other, slots)) in room.iter_mut().enumerate() {
            // Both ends have a free slot: at most CALL_SLOTS others are in the room.
            if let Some(free) = slots.iter_mut().find(|s| s.is_none()) {
                *free = Some(pid);
            }
            mine[next] = Some(*other);
        }
        room.insert(pid, mine);
        Ok(())
    }

    /// `pid` leaves; its slots at the others become free.
    pub fn leave(&mut self, session: &SessionId, pid: ParticipantId) {
        let Some(room) = self.rooms.get_mut(session) else {
            return;
        };
        room.remove(&pid);
        for slots in room.values_mut() {
            for s in slots.iter_mut().filter(|s| **s == Some(pid)) {
                *s = None;
            }
        }
        if room.is_empty() {
            self.rooms.remove(session);
        }
    }

    /// Where `from`'s media goes: each other member and the slot that carries `from` there.
    pub fn fanout(&self, session: &SessionId, from: ParticipantId) -> Vec<(ParticipantId, usize)> {
        let Some(room) = self.rooms.get(session) else {
            return Vec::new();
        };
        room.iter()
            .filter(|(to, _)| **to != from)
            .filter_map(|(to, slots)| {
                let slot = slots.iter().position(|s| *s == Some(from))?;
                Some((*to, slot))
            })
            .collect()
    }

    /// The members of a session's call.
    pub fn members(&self, session: &SessionId) -> Vec<ParticipantId> {
        self.rooms
            .get(session)
            .map(|r| r.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Sessions with a call in progress.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// No call in progress.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }
}
