//! Online staff indexed by desk and language, kept up to date at login, disconnect and
//! revocation, so that queue work (eligibility, "does anyone speak this", the views) costs
//! nothing proportional to the number of connections. It keeps each member's role, desks
//! and languages (never keys or labels), so the [`super::lobby::Lobby`] that owns it needs
//! no access to the connection table.

use std::collections::{BTreeSet, HashMap};

use approdo_core::identity::{Certificate, Role};
use approdo_core::ids::{DeskId, Language};

use super::ConnId;

/// What queue work needs to know of a logged-in staff member: copied from the certificate
/// at login, so presence can be told (and, later, published) without the certificate.
pub(super) struct Profile {
    /// What the member may do.
    pub(super) role: Role,
    /// Desks of the certificate.
    pub(super) desks: Vec<DeskId>,
    /// Languages of the certificate.
    pub(super) languages: Vec<Language>,
}

/// See the module documentation.
#[derive(Default)]
pub(super) struct StaffIndex {
    /// Every logged-in staff connection, with what queue work needs of its certificate.
    profiles: HashMap<ConnId, Profile>,
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
}

impl StaffIndex {
    /// A staff connection logged in (once per connection: a logged-in connection never
    /// logs in again).
    pub(super) fn add(&mut self, conn: ConnId, cert: &Certificate) {
        self.profiles.insert(
            conn,
            Profile {
                role: cert.role,
                desks: cert.desks.clone(),
                languages: cert.languages.clone(),
            },
        );
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

    /// A staff connection is gone (closed or revoked). Nothing for a connection that was
    /// not logged in.
    pub(super) fn remove(&mut self, conn: ConnId) {
        let Some(cert) = self.profiles.remove(&conn) else {
            return;
        };
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
        self.profiles.len()
    }

    /// What queue work needs of a logged-in staff connection's certificate.
    pub(super) fn profile(&self, conn: ConnId) -> Option<&Profile> {
        self.profiles.get(&conn)
    }

    /// Operators and interpreters logged in (the rest of [`StaffIndex::online`] are
    /// coordinators).
    pub(super) fn by_role(&self) -> (usize, usize) {
        (self.operators.len(), self.interpreters.len())
    }

    /// Counts of who is online, for this node's lobby snapshot: operators per desk and the
    /// languages spoken, never who.
    pub(super) fn summary(&self) -> super::remote::StaffSummary {
        let count = |set: &BTreeSet<ConnId>| u32::try_from(set.len()).unwrap_or(u32::MAX);
        super::remote::StaffSummary {
            operators_at: sorted(
                self.operators_at
                    .iter()
                    .map(|(d, set)| (d.clone(), count(set)))
                    .collect(),
            ),
            speakers: sorted(self.speakers.keys().cloned().collect()),
            operator_speakers: sorted(self.operator_speakers.keys().cloned().collect()),
        }
    }
}

/// `v`, sorted: a summary reads the same whatever order its maps gave.
fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}
