//! Staff across nodes, the switchboard's side (several nodes only). A staff member logged
//! in on one node (the edge) who takes a session living on another (its home) reaches it
//! through a connection the edge carries there (`server::visiting`): the edge decides
//! where a frame goes ([`Switchboard::remote_home`]) and vouches for the login
//! ([`Switchboard::vouch`]); the home node takes the carried connection as that staff
//! member's ([`Switchboard::vouched_staff`]) and does everything else itself, as for its
//! own staff.
//!
//! Why the home may trust the edge: bus subjects are authenticated per node (NKeys) and a
//! node may publish only under its own name, so a carried connection comes from a node of
//! the deployment, which checked the member's challenge answer. The home still checks the
//! certificate itself (the organisation's signature, expiry, its revocation list): a node
//! cannot make up a member, only carry one who logged in on it.

use std::time::Instant;

use approdo_core::identity::SignedCertificate;
use approdo_core::wire::ClientFrame;

use super::{ConnId, ConnState, Switchboard, unix_now};
use crate::ratelimit::AddressTag;

impl Switchboard {
    /// Where a logged-in staff member's `frame` must go when the session it names lives on
    /// another node: for `Accept`, the node where the session waits; for `Join`, the node
    /// holding an invitation in one of the member's languages; by the other nodes' latest
    /// snapshots. `None`: this node handles it (its own session, or nobody has it, and
    /// this node's answer is the usual error). Other session frames follow the session
    /// once taken (the edge keeps that route).
    pub fn remote_home(&self, conn: ConnId, frame: &ClientFrame) -> Option<String> {
        let c = self.conns.get(&conn)?;
        let ConnState::Staff {
            cert,
            signed: Some(_),
        } = &c.state
        else {
            return None;
        };
        let (session, join) = match frame {
            ClientFrame::Accept { session } => (session, false),
            ClientFrame::Join { session } => (session, true),
            _ => return None,
        };
        if self.sessions.desk(session).is_some() {
            return None;
        }
        let home = if join {
            self.lobby
                .remote_home_of_invitation(session, &cert.languages)
        } else {
            self.lobby.remote_home_of_waiting(session)
        };
        home.map(str::to_owned)
    }

    /// What the edge hands another node to vouch for a logged-in staff connection: its
    /// address tag and the certificate it presented. `None` for anyone else, and for a
    /// connection vouched for by another node (never passed on further).
    pub fn vouch(&self, conn: ConnId) -> Option<(AddressTag, SignedCertificate)> {
        let c = self.conns.get(&conn)?;
        match &c.state {
            ConnState::Staff {
                signed: Some(signed),
                ..
            } => Some((c.addr, (**signed).clone())),
            _ => None,
        }
    }

    /// Take the fresh connection `conn`, carried here by another node, as the staff member
    /// of `signed`, whom that node saw log in. The certificate is checked again here
    /// (signature, expiry, revocation); false, and the connection stays fresh, when it
    /// fails. The member does not join this node's staff index: the edge's snapshots
    /// count them. `edge` and `edge_conn` name the carrying node and its number for the
    /// connection: this node's snapshots report what it holds under them (`abroad`).
    pub fn vouched_staff(
        &mut self,
        conn: ConnId,
        signed: &SignedCertificate,
        edge: &str,
        edge_conn: u64,
        now: Instant,
    ) -> bool {
        self.advance(now);
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        if !matches!(c.state, ConnState::Fresh) {
            return false;
        }
        let Ok(cert) = self
            .config
            .org
            .check_certificate(signed, &self.revoked, unix_now())
        else {
            return false;
        };
        c.state = ConnState::Staff {
            cert: Box::new(cert),
            signed: None,
        };
        self.visitors
            .insert(conn, super::abroad::Origin::new(edge, edge_conn));
        true
    }

    /// Whether `conn` is staff who logged in here (not vouched for by another node).
    pub fn is_local_staff(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| {
            matches!(
                c.state,
                ConnState::Staff {
                    signed: Some(_),
                    ..
                }
            )
        })
    }
}
