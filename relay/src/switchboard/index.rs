//! Online staff indexed by desk and language, kept up to date at login, disconnect and
//! revocation, so that queue work (eligibility, "does anyone speak this", the views) costs
//! nothing proportional to the number of connections.

use std::collections::{BTreeSet, HashMap};

use approdo_core::identity::{Certificate, Role};
use approdo_core::ids::{DeskId, Language};

use super::ConnId;

/// See the module documentation.
#[derive(Default)]
pub(super) struct StaffIndex {
    /// Logged-in operators by each desk of their certificate.
    operators_at: HashMap<DeskId, BTreeSet<ConnId>>,
    /// Logged-in operators and interpreters by each language of their certificate.
    speakers: HashMap<Language, BTreeSet<ConnId>>,
    /// Logged-in operators by each language of their certificate (a subset of `speakers`).
    operator_speakers: HashMap<Language, BTreeSet<ConnId>>,
    /// Logged-in operators.
    operators: BTreeSet<ConnId>,
    /// Logged-in interpreters.
    interpreters: BTreeSet<ConnId>,
    /// Every logged-in staff connection.
    online: usize,
}

impl StaffIndex {
    /// A staff connection logged in.
    pub(super) fn add(&mut self, conn: ConnId, cert: &Certificate) {
        self.online = self.online.saturating_add(1);
        if cert.role == Role::Operator {
            self.operators.insert(conn);
            for d in &cert.desks {
                self.operators_at.entry(d.clone()).or_default().insert(conn);
            }
        }
        if cert.role == Role::Interpreter {
            self.interpreters.insert(conn);
        }
        if cert.role.joins_sessions() {
            for l in &cert.languages {
                self.speakers.entry(l.clone()).or_default().insert(conn);
            }
        }
        if cert.role == Role::Operator {
            for l in &cert.languages {
                self.operator_speakers
                    .entry(l.clone())
                    .or_default()
                    .insert(conn);
            }
        }
    }

    /// A staff connection is gone (closed or revoked).
    pub(super) fn remove(&mut self, conn: ConnId, cert: &Certificate) {
        self.online = self.online.saturating_sub(1);
        self.operators.remove(&conn);
        self.interpreters.remove(&conn);
        for d in &cert.desks {
            if let Some(set) = self.operators_at.get_mut(d) {
                set.remove(&conn);
                if set.is_empty() {
                    self.operators_at.remove(d);
                }
            }
        }
        for l in &cert.languages {
            for index in [&mut self.speakers, &mut self.operator_speakers] {
                if let Some(set) = index.get_mut(l) {
                    set.remove(&conn);
                    if set.is_empty() {
                        index.remove(l);
                    }
                }
            }
        }
    }

    /// Operators online at `desk`.
    pub(super) fn operators_at(&self, desk: &DeskId) -> usize {
        self.operators_at.get(desk).map_or(0, BTreeSet::len)
    }

    /// Whether an operator or interpreter online speaks `language`.
    pub(super) fn speaks(&self, language: &Language) -> bool {
        self.speakers.get(language).is_some_and(|s| !s.is_empty())
    }

    /// Whether an operator online speaks `language` (interpreters not counted).
    pub(super) fn operator_speaks(&self, language: &Language) -> bool {
        self.operator_speakers
            .get(language)
            .is_some_and(|s| !s.is_empty())
    }

    /// Logged-in operators' connections.
    pub(super) fn operators(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.operators.iter().copied()
    }

    /// Logged-in interpreters' connections.
    pub(super) fn interpreters(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.interpreters.iter().copied()
    }

    /// Staff connections logged in.
    pub(super) fn online(&self) -> usize {
        self.online
    }

    /// Operators and interpreters logged in (the rest of [`StaffIndex::online`] are
    /// coordinators).
    pub(super) fn by_role(&self) -> (usize, usize) {
        (self.operators.len(), self.interpreters.len())
    }
}
