//! The one error type of the core. Variants are deliberately coarse where an attacker
//! could learn something from the difference (a bad certificate and a bad signature look
//! alike to the network).

/// Everything that can go wrong in the protocol core.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// A frame was longer than [`crate::limits::MAX_FRAME_LEN`]; it was not decoded.
    #[error("frame too large")]
    FrameTooLarge,
    /// A frame or payload could not be decoded.
    #[error("malformed input")]
    Malformed,
    /// A Noise handshake failed (bad message, wrong key, wrong prologue).
    #[error("handshake failed")]
    Handshake,
    /// A transport message did not decrypt; the channel state is unchanged.
    #[error("decryption failed")]
    Decrypt,
    /// The channel has used every nonce it may; it must be replaced by a new handshake.
    #[error("nonce space exhausted")]
    NonceExhausted,
    /// A peer's certificate is forged, expired, revoked, for the wrong role or for another key.
    #[error("certificate rejected: {0}")]
    Certificate(CertificateProblem),
    /// The request does not fit the current state (unknown session, channel not ready, …).
    #[error("invalid state: {0}")]
    State(&'static str),
    /// A value is out of the allowed range (too long a text, bad language tag, …).
    #[error("invalid input: {0}")]
    Invalid(&'static str),
    /// A credential file could not be opened: wrong passphrase or damaged file.
    #[error("credential could not be opened")]
    Credential,
}

/// Why a certificate was refused. Shown to the local user, never sent to the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateProblem {
    /// The signature is not the organisation's.
    BadSignature,
    /// The certificate's validity has ended.
    Expired,
    /// The organisation revoked it.
    Revoked,
    /// The certified role may not do what it tried to do.
    WrongRole,
    /// The certificate names another Noise key than the one used in the handshake.
    KeyMismatch,
}

impl std::fmt::Display for CertificateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::BadSignature => "not signed by the organisation",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::WrongRole => "wrong role",
            Self::KeyMismatch => "key mismatch",
        })
    }
}

impl From<postcard::Error> for Error {
    fn from(_: postcard::Error) -> Self {
        Error::Malformed
    }
}

impl From<snow::Error> for Error {
    fn from(e: snow::Error) -> Self {
        match e {
            snow::Error::Decrypt => Error::Decrypt,
            _ => Error::Handshake,
        }
    }
}
