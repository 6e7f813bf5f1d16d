//! Small identifier types used on the wire.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::limits::{MAX_TAG_LEN, RESUME_TOKEN_LEN, SESSION_ID_LEN};

/// A random, unguessable session identifier. Bound into every Noise prologue of the
/// session so that a handshake cannot be replayed into another session.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SessionId(pub [u8; SESSION_ID_LEN]);

impl SessionId {
    /// A fresh random id.
    pub fn random() -> Self {
        let mut id = [0u8; SESSION_ID_LEN];
        fill_random(&mut id);
        SessionId(id)
    }

    /// Lowercase hex, for URLs and logs (a session id is not secret: it grants nothing).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse the form produced by [`SessionId::to_hex`].
    pub fn from_hex(s: &str) -> Result<Self, Error> {
        let mut id = [0u8; SESSION_ID_LEN];
        hex::decode_to_slice(s, &mut id).map_err(|_| Error::Invalid("session id"))?;
        Ok(SessionId(id))
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionId({})", &self.to_hex()[..8])
    }
}

/// A participant's number inside one session, assigned by the relay in joining order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ParticipantId(pub u32);

/// A resume token: proof that a reconnecting client is the participant who dropped.
/// It has no `Debug` that prints it, and it is wiped when dropped.
#[derive(
    Clone, PartialEq, Eq, Serialize, Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop,
)]
pub struct ResumeToken(pub [u8; RESUME_TOKEN_LEN]);

impl ResumeToken {
    /// A fresh random token.
    pub fn random() -> Self {
        let mut t = [0u8; RESUME_TOKEN_LEN];
        fill_random(&mut t);
        ResumeToken(t)
    }
}

impl std::fmt::Debug for ResumeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResumeToken(..)")
    }
}

/// A short tag (desk id or language code): lowercase ASCII letters, digits and `-`, at most
/// [`MAX_TAG_LEN`] bytes. Validated on decode so nothing odd reaches a log or a page.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tag(String);

impl Tag {
    /// Validate and wrap a tag.
    pub fn new(s: impl Into<String>) -> Result<Self, Error> {
        let s = s.into();
        let ok = !s.is_empty()
            && s.len() <= MAX_TAG_LEN
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Tag(s))
        } else {
            Err(Error::Invalid("tag"))
        }
    }

    /// The tag as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Tag {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        Tag::new(s)
    }
}

impl From<Tag> for String {
    fn from(t: Tag) -> String {
        t.0
    }
}

impl std::fmt::Debug for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A language, as a tag such as `en`, `it`, `pcm` (Nigerian Pidgin) or `ur`.
pub type Language = Tag;
/// A desk (the national switchboard or a regional project), as configured on the relay.
pub type DeskId = Tag;

/// Fill `buf` from the operating system's (or the browser's) random source.
///
/// Randomness is the one input the core takes from its platform itself: routing it through
/// every call would add nothing, and `getrandom` is the same source snow uses.
pub fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the platform random source is unavailable");
}
