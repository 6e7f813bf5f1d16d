//! Carrying a client's connection to the node its session lives on.
//!
//! A person's phone that reconnects may reach any node (DNS, a load balancer, a new
//! network). When the first frame on a connection resumes a session this node does not
//! hold, the node asks the bus who does ([`RESUME_SUBJECT`], the token's SHA-256, never the
//! token) and, if one answers, carries the connection there: every frame from the client
//! goes to the home node, whose switchboard handles it as one of its own connections, and
//! every frame the home node writes comes back to the client. This node never answers or
//! acknowledges for the client; it only relays bytes, as a WebSocket proxy would.
//!
//! Subjects: `approdo.node.<to>.conn.<from>` carries [`Carried`] messages both ways
//! (postcard). The server's permissions let a node publish only with its own name as
//! `<from>`, and a node accepts `Out` and `Close` for a connection only from the node it
//! carries that connection to.

use approdo_core::identity::SignedCertificate;
use serde::{Deserialize, Serialize};

/// The subject of resume lookups: a request carrying a token's SHA-256 (32 bytes); the
/// node holding that token answers with its name, the others stay silent.
pub const RESUME_SUBJECT: &str = "approdo.resume";

/// How long a lookup waits for the home node's answer. A person whose session is gone
/// (its node restarted) waits this long for the usual "resume failed".
pub const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// Most frames a connection may send while its lookup is under way; more closes it
/// (a page sends its resume and waits for the answer).
pub const MAX_FRAMES_WHILE_LOOKING: usize = 16;

/// Most bytes those frames may hold together (a resume is under 100 bytes): what a
/// connection can make a node hold for it before anyone knows where it belongs.
pub const MAX_BYTES_WHILE_LOOKING: usize = 16 * 1024;

/// One message between the node holding a client's connection (the edge) and the node
/// holding its session (the home). Frames and ends are numbered per connection and
/// direction and acknowledged (`bus::carrier`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Carried {
    /// Edge → home: frames from the client, in order. The first to arrive opens the
    /// connection at the home node.
    Frames {
        /// The connection's number on the edge node.
        conn: u64,
        /// The edge's rate-limit tag for the client's address (never the address).
        tag: [u8; 16],
        /// This message's number in its direction (from 1).
        seq: u64,
        /// The frames as received.
        frames: Vec<Vec<u8>>,
        /// In the first message only, for a staff member logged in on the edge whose
        /// sessions live at the home (`server::visiting`): the certificate the member
        /// presented, which the edge vouches for. The home takes the connection as that
        /// member's (after checking the certificate itself).
        staff: Option<SignedCertificate>,
    },
    /// Edge → home: the client's connection ended.
    Closed {
        /// The connection's number on the edge node.
        conn: u64,
        /// This message's number in its direction.
        seq: u64,
    },
    /// Home → edge: frames for the client, in order.
    Out {
        /// The connection's number on the edge node.
        conn: u64,
        /// This message's number in its direction (from 1).
        seq: u64,
        /// The frames to write.
        frames: Vec<Vec<u8>>,
    },
    /// Home → edge: close the client's connection after what was written.
    Close {
        /// The connection's number on the edge node.
        conn: u64,
        /// This message's number in its direction.
        seq: u64,
        /// The transport close code, when the home node gave one.
        code: Option<u16>,
    },
    /// Home → edge: the edge's messages for `conn` up to `up_to` were taken.
    AckFrames {
        /// The connection's number on the edge node.
        conn: u64,
        /// The highest message taken, in order.
        up_to: u64,
    },
    /// Edge → home: the home's messages for `conn` up to `up_to` were taken.
    AckOut {
        /// The connection's number on the edge node.
        conn: u64,
        /// The highest message taken, in order.
        up_to: u64,
    },
}

/// What the hub asks of the bus task (a bounded channel: a hub that cannot hand work to
/// the bus cuts the connection concerned, as a full outbox does).
#[derive(Debug)]
pub enum BusCommand {
    /// Find the node holding the resume token whose SHA-256 this is, for `conn`'s first
    /// frame; the answer comes back through `Hub::lookup_done`.
    Lookup {
        /// The connection waiting.
        conn: u64,
        /// The token's SHA-256.
        token_hash: [u8; 32],
    },
    /// Publish `message` to node `to`.
    Send {
        /// The node.
        to: String,
        /// What to carry.
        message: Carried,
    },
}

/// How many commands the hub may queue for the bus task.
pub const COMMAND_QUEUE: usize = 4096;

/// The subject carrying [`Carried`] messages from `from` to `to`.
pub fn conn_subject(to: &str, from: &str) -> String {
    format!("approdo.node.{to}.conn.{from}")
}

/// The sending node named by a subject `approdo.node.<me>.conn.<from>`, if it is one.
pub fn sender_of(subject: &str, me: &str) -> Option<String> {
    let from = subject
        .strip_prefix("approdo.node.")?
        .strip_prefix(me)?
        .strip_prefix(".conn.")?;
    super::valid_node_name(from).then(|| from.to_owned())
}

/// The SHA-256 of the resume token a first frame presents (`Resume` or `Rejoin`), if it
/// is one of those.
pub fn resume_token_hash(bytes: &[u8]) -> Option<[u8; 32]> {
    use approdo_core::wire::ClientFrame;
    use sha2::Digest;
    let token = match approdo_core::wire::decode::<ClientFrame>(bytes).ok()? {
        ClientFrame::Resume { token, .. } | ClientFrame::Rejoin { token, .. } => token,
        _ => return None,
    };
    Some(sha2::Sha256::digest(token.0).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use approdo_core::ids::ResumeToken;
    use approdo_core::wire::ClientFrame;

    #[test]
    fn a_sender_is_read_only_from_a_subject_addressed_to_this_node() {
        let s = conn_subject("rome-1", "milan-1");
        assert_eq!(sender_of(&s, "rome-1"), Some("milan-1".to_owned()));
        assert_eq!(sender_of(&s, "milan-1"), None);
        assert_eq!(sender_of("approdo.node.rome-1.conn.a.b", "rome-1"), None);
    }

    #[test]
    fn only_a_resume_or_rejoin_names_a_token() {
        let token = ResumeToken([7; 32]);
        let resume = approdo_core::wire::encode(&ClientFrame::Resume {
            version: approdo_core::PROTOCOL_VERSION,
            token: token.clone(),
            received_up_to: 3,
        })
        .expect("encode");
        let hash = resume_token_hash(&resume).expect("a token");
        use sha2::Digest;
        assert_eq!(hash, <[u8; 32]>::from(sha2::Sha256::digest([7u8; 32])));
        let ping = approdo_core::wire::encode(&ClientFrame::Ping).expect("encode");
        assert_eq!(resume_token_hash(&ping), None);
        assert_eq!(resume_token_hash(b"\xff\xff garbage"), None);
    }
}
