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
//! Subjects: `approdo.node.<to>.conn.<from>` carries [`Carried`] messages both ways, a
//! *bundle* of one or more per NATS message ([`Bundler`], [`unbundle`]). The server's permissions let a node publish only with its own name as
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
        #[serde(with = "frame_list")]
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
        #[serde(with = "frame_list")]
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

/// A list of frames as postcard byte strings (a length, then the bytes at once), not as a
/// sequence of numbers visited one by one: the same bytes on the bus, several times less
/// CPU on both nodes for every carried frame.
mod frame_list {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(frames: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(frames.iter().map(|f| serde_bytes::Bytes::new(f)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let frames = Vec::<serde_bytes::ByteBuf>::deserialize(d)?;
        Ok(frames
            .into_iter()
            .map(serde_bytes::ByteBuf::into_vec)
            .collect())
    }
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
    /// Gather the other nodes' observatory counts for coordinator `conn`; the answer
    /// comes back through `Switchboard::observatory_gathered`.
    GatherObservatory {
        /// The coordinator's connection.
        conn: u64,
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

/// Most bytes in one bus message (a bundle). NATS refuses messages over its `max_payload`
/// (1 MiB by default); this leaves room for the headers and a margin.
pub const MAX_BUNDLE_BYTES: usize = 512 * 1024;

/// Most frame bytes one [`Carried`] gathers (`bus::carrier`): with one more frame of at
/// most `MAX_FRAME_LEN` and the message's own fields it stays under [`MAX_BUNDLE_BYTES`],
/// so every message fits a bundle of its own.
pub const MAX_CARRIED_FRAME_BYTES: usize = 256 * 1024;

/// Most [`Carried`] messages read from one bundle; a bundle with more is malformed (a real
/// node stays far below: [`MAX_BUNDLE_BYTES`] over the smallest message).
pub const MAX_CARRIED_PER_BUNDLE: usize = 64 * 1024;

/// Gathers the [`Carried`] messages the bus task has queued for each node into as few bus
/// messages as [`MAX_BUNDLE_BYTES`] allows: one NATS message (one write, one delivery on
/// the other side) for everything that was waiting, instead of one per message. Bundles
/// are back-to-back postcard encodings, read by [`unbundle`].
#[derive(Default)]
pub struct Bundler {
    /// Per destination node, the bundle being filled.
    open: Vec<(String, Vec<u8>)>,
    /// Bundles that are full, in the order they filled.
    full: Vec<(String, Vec<u8>)>,
    /// Bytes in both.
    bytes: usize,
}

impl Bundler {
    /// Add `message` for node `to`.
    pub fn add(&mut self, to: &str, message: &Carried) {
        let Ok(bytes) = postcard::to_allocvec(message) else {
            return;
        };
        let slot = match self.open.iter().position(|(node, _)| node == to) {
            Some(i) => i,
            None => {
                self.open.push((to.to_owned(), Vec::new()));
                self.open.len() - 1
            }
        };
        let bundle = &mut self.open[slot].1;
        if !bundle.is_empty() && bundle.len() + bytes.len() > MAX_BUNDLE_BYTES {
            self.full.push((to.to_owned(), std::mem::take(bundle)));
        }
        bundle.extend_from_slice(&bytes);
        self.bytes += bytes.len();
    }

    /// Whether a bundle for node `to` is being filled (so more for `to` costs no extra
    /// bus message).
    pub fn has_bundle_for(&self, to: &str) -> bool {
        self.open
            .iter()
            .any(|(node, b)| node == to && !b.is_empty())
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// The bytes waiting, all bundles together.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Every bundle filled so far (a node's full ones before its last); the bundler is
    /// empty afterwards.
    pub fn take(&mut self) -> Vec<(String, Vec<u8>)> {
        self.bytes = 0;
        let mut all = std::mem::take(&mut self.full);
        all.extend(self.open.drain(..).filter(|(_, b)| !b.is_empty()));
        all
    }
}

/// The [`Carried`] messages of one bundle, in order; `Err` with those read before a
/// malformed one (the rest of the bundle is dropped, as a lost bus message would be).
pub fn unbundle(mut bytes: &[u8]) -> Result<Vec<Carried>, Vec<Carried>> {
    let mut messages = Vec::new();
    while !bytes.is_empty() {
        if messages.len() >= MAX_CARRIED_PER_BUNDLE {
            return Err(messages);
        }
        match postcard::take_from_bytes::<Carried>(bytes) {
            Ok((message, rest)) => {
                messages.push(message);
                bytes = rest;
            }
            Err(_) => return Err(messages),
        }
    }
    if messages.is_empty() {
        return Err(messages);
    }
    Ok(messages)
}

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

    fn frames(conn: u64, seq: u64, len: usize) -> Carried {
        Carried::Out {
            conn,
            seq,
            frames: vec![vec![7; len]],
        }
    }

    #[test]
    fn a_bundle_gives_back_its_messages_in_order() {
        let mut bundler = Bundler::default();
        let sent = [
            frames(1, 1, 10),
            Carried::AckFrames { conn: 2, up_to: 9 },
            frames(1, 2, 0),
        ];
        for m in &sent {
            bundler.add("rome-1", m);
        }
        let mut bundles = bundler.take();
        assert_eq!(bundles.len(), 1);
        let (to, bytes) = bundles.pop().expect("one");
        assert_eq!(to, "rome-1");
        assert_eq!(unbundle(&bytes), Ok(sent.to_vec()));
        assert!(bundler.take().is_empty());
    }

    #[test]
    fn bundles_are_per_node_and_never_over_the_limit() {
        let mut bundler = Bundler::default();
        for seq in 1..=20 {
            bundler.add("rome-1", &frames(1, seq, 60_000));
            bundler.add(
                "turin-1",
                &Carried::AckOut {
                    conn: 3,
                    up_to: seq,
                },
            );
        }
        assert!(bundler.bytes() > 20 * 60_000);
        let full = bundler.take();
        assert!(bundler.is_empty());
        let mut seqs = Vec::new();
        for (to, bytes) in &full {
            assert!(bytes.len() <= MAX_BUNDLE_BYTES, "{} bytes", bytes.len());
            for m in unbundle(bytes).expect("well formed") {
                match (to.as_str(), m) {
                    ("rome-1", Carried::Out { seq, .. }) => seqs.push(seq),
                    ("turin-1", Carried::AckOut { .. }) => {}
                    other => panic!("misrouted: {other:?}"),
                }
            }
        }
        assert_eq!(
            seqs,
            (1..=20).collect::<Vec<_>>(),
            "every message once, in order"
        );
        assert!(full.iter().filter(|(to, _)| to == "rome-1").count() >= 3);
    }

    #[test]
    fn frames_are_written_as_plain_postcard_lists_of_bytes() {
        let frames = vec![vec![1, 2, 3], vec![], vec![200; 300]];
        let m = Carried::Out {
            conn: 9,
            seq: 4,
            frames: frames.clone(),
        };
        let ours = postcard::to_allocvec(&m).expect("encode");
        // The variant index, the numbers, then the list as any postcard Vec<Vec<u8>>.
        let mut plain = postcard::to_allocvec(&(2u8, 9u64, 4u64)).expect("encode");
        plain.extend(postcard::to_allocvec(&frames).expect("encode"));
        assert_eq!(ours, plain);
        assert_eq!(postcard::from_bytes::<Carried>(&ours).expect("decode"), m);
    }

    #[test]
    fn a_malformed_bundle_keeps_only_what_came_before_the_fault() {
        let good = postcard::to_allocvec(&frames(1, 1, 3)).expect("encode");
        let mut bytes = good.clone();
        bytes.extend_from_slice(&[0xff, 0xff, 0xff]);
        assert_eq!(unbundle(&bytes), Err(vec![frames(1, 1, 3)]));
        assert_eq!(unbundle(&[]), Err(vec![]));
        assert_eq!(unbundle(&good[..good.len() - 1]), Err(vec![]));
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
