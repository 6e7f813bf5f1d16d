//! Named wire limits. Every size the protocol enforces lives here, so that the relay, the
//! clients and the docs agree on one number.

/// Largest encoded frame, in bytes, on any transport. This is the Noise message limit: a
/// frame is rejected before it is decoded (and before anything is allocated for it) when it
/// is longer.
pub const MAX_FRAME_LEN: usize = 65_535;

/// Largest Noise message (handshake or transport) carried inside a frame.
pub const MAX_NOISE_MSG_LEN: usize = 65_535;

/// Overhead of the ChaCha20-Poly1305 tag on every Noise transport message.
pub const NOISE_TAG_LEN: usize = 16;

/// Longest chat message body, in bytes of UTF-8. Leaves room for framing and for one copy
/// per recipient in a session of [`MAX_PARTICIPANTS`].
pub const MAX_TEXT_LEN: usize = 4_096;

/// Most participants in one session: the person, an operator, interpreters, a colleague.
pub const MAX_PARTICIPANTS: usize = 6;

/// Longest identifier string (desk id, language tag).
pub const MAX_TAG_LEN: usize = 32;

/// Size of the random session identifier.
pub const SESSION_ID_LEN: usize = 16;

/// Size of a resume token.
pub const RESUME_TOKEN_LEN: usize = 32;

/// Size of a relay challenge nonce for staff authentication.
pub const CHALLENGE_LEN: usize = 32;

/// Transport messages between two rekeys of a Noise channel (per direction). Both ends
/// rekey at the same nonce, so no message is needed to agree on it.
pub const REKEY_INTERVAL: u64 = 1 << 16;

/// The highest nonce a channel will use. `u64::MAX` is reserved by the Noise spec for
/// `REKEY`, and the channel refuses to send rather than let a nonce wrap.
pub const MAX_NONCE: u64 = u64::MAX - 1;

/// The longest SDP offer or answer a call frame may carry. Chromium's offer for two send
/// and [`CALL_SLOTS`] × 2 receive transceivers is about 10 KB (12 media sections).
pub const MAX_SDP_LEN: usize = 16 * 1024;

/// How many other participants one member of a call receives: each page offers this many
/// receive slots (an audio and a video transceiver each), so a call holds at most
/// `CALL_SLOTS + 1` people, as many as a session ([`MAX_PARTICIPANTS`]): the person, the
/// operators of a transfer in progress, two interpreters.
pub const CALL_SLOTS: usize = MAX_PARTICIPANTS - 1;

/// Most envelopes one `Send` may carry. Several may go to the same recipient (a backlog
/// delivered at once): they are delivered in order.
pub const MAX_ENVELOPES_PER_SEND: usize = 6;

/// Largest payload of one envelope (the Noise message: ciphertext and tag, or a handshake
/// message), in bytes. A padded chat message or handover note fits with room to spare, and
/// so does a handshake message carrying a certificate. With [`MAX_ENVELOPES_PER_SEND`] such
/// envelopes a `Send` stays well below [`MAX_FRAME_LEN`], and the `Event` the relay makes of
/// any one envelope always fits a frame.
pub const MAX_PAYLOAD_LEN: usize = 8_192;

/// Most entries in one `Queue` or `Invitations` view; the frame also carries the total.
pub const MAX_QUEUE_ENTRIES: usize = 50;

/// Most messages the person's client keeps while nobody has answered yet. Beyond this the
/// page says so and the person waits before writing more.
pub const MAX_BACKLOG_MESSAGES: usize = 32;

/// The highest proof-of-work difficulty (leading zero bits) a relay may ask for; a client
/// refuses more. 2^16 BLAKE2s hashes on average: well under a second in a phone's browser.
pub const MAX_POW_DIFFICULTY: u8 = 16;

/// How many [`crate::wire::ClientFrame::TurnRequest`]s the relay answers with credentials
/// per entry into a call: one when the direct connection fails, and one spare for a page
/// that waited past their lifetime before using them. More would only mint credentials
/// nobody needs; a new entry (`CallJoin`) starts the count again.
pub const MAX_TURN_REQUESTS_PER_CALL: u8 = 2;

/// Most TURN URLs one answer carries (TLS on 443, TCP on 3478, and a few alternatives).
pub const MAX_TURN_URLS: usize = 4;

/// Longest TURN URL the relay's configuration may hold, in bytes.
pub const MAX_TURN_URL_LEN: usize = 256;
