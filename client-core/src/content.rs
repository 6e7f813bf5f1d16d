//! What participants say to each other inside their Noise channels. The relay never sees
//! these types: they are encrypted before they leave a client.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::{DeskId, ParticipantId};
use crate::observatory::Seeker;

/// Plaintexts are padded to a multiple of this many bytes, so the relay learns a message's
/// length only roughly.
pub const PAD_BLOCK: usize = 64;

/// One end-to-end message. `Debug` prints no body and no key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    /// A chat message. `private` marks a staff side-conversation the person does not see.
    Text {
        /// The words.
        body: String,
        /// Sent to one colleague only.
        private: bool,
    },
    /// The sender's view of the handshake hash of the channel between `a` and `b`, so that
    /// everyone can compute the same safety code.
    ChannelHash {
        /// Lower participant number of the pair.
        a: ParticipantId,
        /// Higher participant number of the pair.
        b: ParticipantId,
        /// The handshake hash of their channel.
        hash: [u8; 32],
    },
    /// The person's answer to "who needs help?", sent to each staff member once verified.
    Intake {
        /// Who is asking.
        seeker: Seeker,
    },
    /// An operator's handover note to the operator who takes a transferred case.
    HandoverNote {
        /// The desk the case was transferred to.
        desk: DeskId,
        /// The note (at most 4096 bytes).
        body: String,
    },
    /// The sender's frame key for the call, drawn afresh whenever the call's membership
    /// changes. The receiver binds it to the channel it came on: a participant can only
    /// ever announce its own key.
    MediaKey {
        /// Counts the sender's keys in this session, from 1.
        epoch: u32,
        /// SFrame base key (RFC 9605), 16 bytes for AES-128-GCM.
        key: [u8; 16],
    },
    /// The sender's view of the session's membership, sent to every member over each
    /// channel whenever it changes: who is in (sorted) and the roster digest (members,
    /// roles, certificate serials and every channel's handshake hash). Nobody sends content
    /// to a newcomer until every member has confirmed the same digest including them.
    Roster {
        /// The members the sender sees, itself included, sorted.
        members: Vec<ParticipantId>,
        /// `crate::safety` roster digest.
        digest: [u8; 32],
    },
    /// An operator tells the person the case is being passed to another desk; the person's
    /// client then gives its words only to an operator of that desk.
    Transferred {
        /// The desk taking over.
        desk: DeskId,
    },
    /// The person signals, silently, that they cannot talk freely right now (someone came
    /// in). Padded like any short message, so the relay cannot tell it from one.
    NotSafe,
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Content::Text { private, .. } => f
                .debug_struct("Text")
                .field("private", private)
                .finish_non_exhaustive(),
            Content::ChannelHash { a, b, .. } => f
                .debug_struct("ChannelHash")
                .field("a", a)
                .field("b", b)
                .finish_non_exhaustive(),
            Content::Intake { seeker } => f.debug_struct("Intake").field("seeker", seeker).finish(),
            Content::HandoverNote { desk, .. } => f
                .debug_struct("HandoverNote")
                .field("desk", desk)
                .finish_non_exhaustive(),
            Content::MediaKey { epoch, .. } => f
                .debug_struct("MediaKey")
                .field("epoch", epoch)
                .finish_non_exhaustive(),
            Content::Roster { members, .. } => f
                .debug_struct("Roster")
                .field("members", members)
                .finish_non_exhaustive(),
            Content::Transferred { desk } => {
                f.debug_struct("Transferred").field("desk", desk).finish()
            }
            Content::NotSafe => f.write_str("NotSafe"),
        }
    }
}

/// Encode and pad a message for encryption.
pub fn seal_plaintext(content: &Content) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
    let mut bytes =
        zeroize::Zeroizing::new(postcard::to_allocvec(content).map_err(|_| Error::Malformed)?);
    let padded = bytes.len().div_ceil(PAD_BLOCK).max(1) * PAD_BLOCK;
    bytes.resize(padded, 0);
    Ok(bytes)
}

/// Decode a decrypted message, ignoring the zero padding.
pub fn open_plaintext(bytes: &[u8]) -> Result<Content, Error> {
    let (content, rest) = postcard::take_from_bytes(bytes).map_err(|_| Error::Malformed)?;
    if rest.iter().any(|&b| b != 0) {
        return Err(Error::Malformed);
    }
    Ok(content)
}
