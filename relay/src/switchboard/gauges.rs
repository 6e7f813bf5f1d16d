//! The switchboard's figures for the metrics endpoint: counts only, read in one pass under
//! the hub's lock. Nothing here names a session, a participant, a staff member or an
//! address; the only labels are the configured desks and languages.

use approdo_core::identity::Role;
use approdo_core::ids::{DeskId, Language};
use approdo_core::wire::TurnAnswer;

use super::Switchboard;

/// Refusals the switchboard has counted since start, so an operator can tell a flood (or
/// limits set too tight) from a quiet relay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refusals {
    /// Frames answered `RateLimited`: a connection's frame, byte or acknowledgement budget,
    /// an address's byte budget or session rate, or a wrong proof of work.
    pub budget: u64,
    /// Connections refused at admission: the address's connection rate, or
    /// `max_connections` reached.
    pub connection_rate: u64,
}

/// TURN answers given since start, by kind: how often a call could not connect directly
/// (UDP blocked on the way) and needed TURN, and how often TURN was asked for and refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TurnAnswers {
    /// Credentials minted.
    pub credentials: u64,
    /// Refused: the relay has no TURN configured.
    pub unavailable: u64,
    /// Refused: the asker is not in the session's call.
    pub not_in_call: u64,
    /// Refused: the asker had its credentials for this entry into the call already.
    pub too_many: u64,
}

impl TurnAnswers {
    /// Count one answer.
    pub(super) fn count(&mut self, answer: &TurnAnswer) {
        let n = match answer {
            TurnAnswer::Credentials { .. } => &mut self.credentials,
            TurnAnswer::Unavailable => &mut self.unavailable,
            TurnAnswer::NotInCall => &mut self.not_in_call,
            TurnAnswer::TooMany => &mut self.too_many,
        };
        *n = n.saturating_add(1);
    }
}

/// Staff logged in now, by the role in their certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StaffOnline {
    /// Operators.
    pub operators: u64,
    /// Interpreters.
    pub interpreters: u64,
    /// Coordinators.
    pub coordinators: u64,
}

impl StaffOnline {
    /// The count for `role`.
    pub fn of(&self, role: Role) -> u64 {
        match role {
            Role::Operator => self.operators,
            Role::Interpreter => self.interpreters,
            Role::Coordinator => self.coordinators,
        }
    }
}

/// What the switchboard holds now, in counts. See the module documentation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Sessions waiting for an operator, for every configured desk and language (zeros
    /// included, so a series never vanishes), in configuration order.
    pub waiting: Vec<(DeskId, Language, u64)>,
    /// Sessions an operator has accepted and that are not waiting again.
    pub running_sessions: u64,
    /// Participants whose connection dropped and who may still resume.
    pub away_participants: u64,
    /// Staff logged in, by role.
    pub staff_online: StaffOnline,
    /// Participants in a call.
    pub call_participants: u64,
    /// Bytes of events kept (sealed in the store) for away participants.
    pub stored_bytes: u64,
    /// Those events.
    pub stored_events: u64,
    /// The relay-wide cap on `stored_bytes` (`max_stored_bytes`).
    pub stored_bytes_limit: u64,
    /// Refusals since start.
    pub refusals: Refusals,
    /// TURN answers since start.
    pub turn_answers: TurnAnswers,
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl Switchboard {
    /// The figures for the metrics endpoint: one pass over the sessions, none over the
    /// store (sled counts its records by scanning them).
    pub fn gauges(&self) -> Gauges {
        let figures = self.sessions.figures();
        let waiting_at = figures.waiting_at;
        let languages = &self.config.limits.languages;
        let waiting = self
            .config
            .desks
            .iter()
            .flat_map(|d| languages.iter().map(move |l| (&d.id, l)))
            .map(|(d, l)| {
                let n = waiting_at.get(&(d, l)).copied().unwrap_or(0);
                (d.clone(), l.clone(), n)
            })
            .collect();
        let (operators, interpreters) = self.lobby.staff_by_role();
        let operators = count(operators);
        let interpreters = count(interpreters);
        let coordinators = count(self.lobby.staff_online())
            .saturating_sub(operators)
            .saturating_sub(interpreters);
        Gauges {
            waiting,
            running_sessions: figures.running,
            away_participants: figures.away,
            staff_online: StaffOnline {
                operators,
                interpreters,
                coordinators,
            },
            call_participants: count(self.calls.participants()),
            stored_bytes: self.sessions.stored_bytes(),
            stored_events: figures.stored_events,
            stored_bytes_limit: self.config.limits.max_stored_bytes,
            refusals: self.refusals,
            turn_answers: self.calls.turn_answers(),
        }
    }
}
