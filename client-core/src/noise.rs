//! Noise handshakes and channels.
//!
//! * The anonymous person starts `Noise_NX_25519_ChaChaPoly_BLAKE2s` to each staff member;
//!   the staff member's certificate travels encrypted in the payload of message 2, and the
//!   person's client checks it before a word of content is sent.
//! * Two staff members use `Noise_XX_25519_ChaChaPoly_BLAKE2s`, each proving its
//!   certificate (message 2 for the responder, message 3 for the initiator).
//! * The prologue binds the protocol version, the session and both participant numbers.
//!
//! Transport messages carry their nonce explicitly and the receiver accepts only the next
//! one it expects, so a forged or garbled message is dropped without touching the channel
//! state (no desynchronisation, cf. RUSTSEC-2024-0011). Both directions rekey every
//! [`REKEY_INTERVAL`] messages and refuse to send once [`MAX_NONCE`] is reached.

use snow::{Builder, HandshakeState, StatelessTransportState};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::PROTOCOL_VERSION;
use crate::error::{CertificateProblem, Error};
use crate::identity::{Certificate, OrgPublicKey, RevocationList, SignedCertificate};
use crate::ids::{ParticipantId, SessionId};
use crate::limits::{MAX_NOISE_MSG_LEN, MAX_NONCE, NOISE_TAG_LEN, REKEY_INTERVAL};

/// The person → staff pattern.
pub const PATTERN_PERSON: &str = "Noise_NX_25519_ChaChaPoly_BLAKE2s";
/// The staff ↔ staff pattern.
pub const PATTERN_STAFF: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

/// Fixed prefix of every prologue.
const PROLOGUE_LABEL: &[u8] = b"approdo";

/// A staff member's static X25519 key for Noise. Wiped when dropped; no `Clone`; `Debug`
/// shows only the public half.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct NoiseStaticKey {
    secret: [u8; 32],
    #[zeroize(skip)]
    public: [u8; 32],
}

impl std::fmt::Debug for NoiseStaticKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoiseStaticKey")
            .field("public", &hex::encode(self.public))
            .finish_non_exhaustive()
    }
}

impl NoiseStaticKey {
    /// A new random key pair.
    pub fn generate() -> Self {
        let builder = Builder::new(params(PATTERN_STAFF));
        let mut pair = builder.generate_keypair().expect("X25519 key generation");
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&pair.private);
        pair.private.zeroize();
        let mut public = [0u8; 32];
        public.copy_from_slice(&pair.public);
        NoiseStaticKey { secret, public }
    }

    /// Rebuild from the secret stored in a credential file.
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        let public = x25519_public(secret);
        NoiseStaticKey {
            secret: *secret,
            public,
        }
    }

    /// The secret, for writing a credential file.
    pub fn secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret)
    }

    /// The public key that goes into the certificate.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }
}

/// The X25519 public key of a secret (RFC 7748 clamping), as snow computes it.
fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
    curve25519_dalek::MontgomeryPoint::mul_base_clamped(*secret).to_bytes()
}

fn params(pattern: &str) -> snow::params::NoiseParams {
    pattern.parse().expect("a supported Noise pattern")
}

/// The prologue: `"approdo" || version || session id || initiator id || responder id`
/// (ids as big-endian u32). Both ends must build the same bytes or the handshake fails.
pub fn prologue(
    session: &SessionId,
    initiator: ParticipantId,
    responder: ParticipantId,
) -> Vec<u8> {
    let mut p = Vec::with_capacity(PROLOGUE_LABEL.len() + 1 + 16 + 8);
    p.extend_from_slice(PROLOGUE_LABEL);
    p.push(PROTOCOL_VERSION);
    p.extend_from_slice(&session.0);
    p.extend_from_slice(&initiator.0.to_be_bytes());
    p.extend_from_slice(&responder.0.to_be_bytes());
    p
}

/// What the local side needs to judge a peer's certificate.
pub struct CertPolicy<'a> {
    /// The pinned organisation key.
    pub org: &'a OrgPublicKey,
    /// The newest revocation list the client holds.
    pub revoked: &'a RevocationList,
    /// The current time, seconds since the Unix epoch.
    pub now_unix: u64,
}

/// Which side of which pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeKind {
    /// The person, starting NX.
    PersonInitiator,
    /// A staff member answering a person's NX.
    StaffAnsweringPerson,
    /// A staff member starting XX to a colleague.
    StaffInitiator,
    /// A staff member answering a colleague's XX.
    StaffResponder,
}

/// A handshake in progress. Consumed by [`Handshake::into_channel`] once finished.
pub struct Handshake {
    state: HandshakeState,
    kind: HandshakeKind,
    /// Index of the next handshake message (0-based, across both sides).
    index: usize,
    local_cert: Option<SignedCertificate>,
    peer_cert: Option<Certificate>,
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("kind", &self.kind)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl Handshake {
    /// Start a handshake. Staff kinds need their static key and certificate; the person
    /// passes neither.
    pub fn new(
        kind: HandshakeKind,
        prologue: &[u8],
        local: Option<(&NoiseStaticKey, &SignedCertificate)>,
    ) -> Result<Self, Error> {
        let pattern = match kind {
            HandshakeKind::PersonInitiator | HandshakeKind::StaffAnsweringPerson => PATTERN_PERSON,
            HandshakeKind::StaffInitiator | HandshakeKind::StaffResponder => PATTERN_STAFF,
        };
        let mut builder = Builder::new(params(pattern)).prologue(prologue)?;
        let local_cert = match (kind, local) {
            (HandshakeKind::PersonInitiator, _) => None,
            (_, Some((key, cert))) => {
                builder = builder.local_private_key(&key.secret)?;
                Some(cert.clone())
            }
            (_, None) => return Err(Error::State("staff handshake without a credential")),
        };
        let state = match kind {
            HandshakeKind::PersonInitiator | HandshakeKind::StaffInitiator => {
                builder.build_initiator()?
            }
            _ => builder.build_responder()?,
        };
        Ok(Handshake {
            state,
            kind,
            index: 0,
            local_cert,
            peer_cert: None,
        })
    }

    /// Whether the next message is ours to write.
    pub fn is_my_turn(&self) -> bool {
        self.state.is_my_turn() && !self.state.is_handshake_finished()
    }

    /// Whether both sides have everything.
    pub fn is_finished(&self) -> bool {
        self.state.is_handshake_finished()
    }

    /// Write our next handshake message. It carries our certificate exactly when it
    /// carries our static key (NX message 2, XX messages 2 and 3).
    pub fn write(&mut self) -> Result<Vec<u8>, Error> {
        let sends_static = matches!(
            (self.kind, self.index),
            (HandshakeKind::StaffAnsweringPerson, 1)
                | (HandshakeKind::StaffResponder, 1)
                | (HandshakeKind::StaffInitiator, 2)
        );
        let payload = if sends_static {
            let cert = self
                .local_cert
                .as_ref()
                .ok_or(Error::State("no certificate"))?;
            postcard::to_allocvec(cert).map_err(|_| Error::Malformed)?
        } else {
            Vec::new()
        };
        let mut out = vec![0u8; MAX_NOISE_MSG_LEN];
        let n = self.state.write_message(&payload, &mut out)?;
        out.truncate(n);
        self.index += 1;
        Ok(out)
    }

    /// Read the peer's next handshake message. When it reveals the peer's static key, the
    /// payload must be a certificate, valid under `policy`, for exactly that key.
    pub fn read(&mut self, message: &[u8], policy: &CertPolicy<'_>) -> Result<(), Error> {
        if message.len() > MAX_NOISE_MSG_LEN {
            return Err(Error::FrameTooLarge);
        }
        let had_static = self.state.get_remote_static().is_some();
        let mut payload = Zeroizing::new(vec![0u8; MAX_NOISE_MSG_LEN]);
        let n = self.state.read_message(message, &mut payload)?;
        self.index += 1;
        let revealed = !had_static && self.state.get_remote_static().is_some();
        if revealed {
            let signed: SignedCertificate =
                postcard::from_bytes(&payload[..n]).map_err(|_| Error::Handshake)?;
            let cert = policy
                .org
                .check_certificate(&signed, policy.revoked, policy.now_unix)?;
            if !cert.role.joins_sessions() {
                return Err(Error::Certificate(CertificateProblem::WrongRole));
            }
            let remote = self.state.get_remote_static().ok_or(Error::Handshake)?;
            if remote != cert.noise_key {
                return Err(Error::Certificate(CertificateProblem::KeyMismatch));
            }
            self.peer_cert = Some(cert);
        } else if n != 0 {
            // No message of our patterns carries a payload except a certificate.
            return Err(Error::Handshake);
        }
        Ok(())
    }

    /// Finish: the transport channel, the handshake hash and the peer's certificate (none
    /// when the peer is the anonymous person).
    pub fn into_channel(self) -> Result<Channel, Error> {
        if !self.state.is_handshake_finished() {
            return Err(Error::State("handshake not finished"));
        }
        let mut handshake_hash = [0u8; 32];
        handshake_hash.copy_from_slice(self.state.get_handshake_hash());
        let peer_cert = self.peer_cert;
        let transport = self.state.into_stateless_transport_mode()?;
        Ok(Channel {
            transport,
            send_nonce: 0,
            recv_nonce: 0,
            handshake_hash,
            peer_cert,
            rekey_interval: REKEY_INTERVAL,
        })
    }
}

/// An established, one-to-one encrypted channel.
pub struct Channel {
    transport: StatelessTransportState,
    send_nonce: u64,
    recv_nonce: u64,
    handshake_hash: [u8; 32],
    peer_cert: Option<Certificate>,
    rekey_interval: u64,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("send_nonce", &self.send_nonce)
            .field("recv_nonce", &self.recv_nonce)
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// The handshake hash (channel binding), input to the safety code.
    pub fn handshake_hash(&self) -> &[u8; 32] {
        &self.handshake_hash
    }

    /// The nonce the next message from the peer must carry: a higher one means messages
    /// went missing, a lower one is a replay.
    pub fn next_recv_nonce(&self) -> u64 {
        self.recv_nonce
    }

    /// The peer's verified certificate, or `None` for the anonymous person.
    pub fn peer_certificate(&self) -> Option<&Certificate> {
        self.peer_cert.as_ref()
    }

    /// Encrypt one message; returns its nonce and ciphertext.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<(u64, Vec<u8>), Error> {
        if plaintext.len() + NOISE_TAG_LEN > MAX_NOISE_MSG_LEN {
            return Err(Error::Invalid("message too long"));
        }
        if self.send_nonce >= MAX_NONCE {
            return Err(Error::NonceExhausted);
        }
        let nonce = self.send_nonce;
        let mut out = vec![0u8; plaintext.len() + NOISE_TAG_LEN];
        let n = self.transport.write_message(nonce, plaintext, &mut out)?;
        out.truncate(n);
        self.send_nonce += 1;
        if self.send_nonce.is_multiple_of(self.rekey_interval) {
            self.transport.rekey_outgoing();
        }
        Ok((nonce, out))
    }

    /// Decrypt the next message. Anything but the next expected nonce with a valid tag is
    /// refused and leaves the channel exactly as it was.
    pub fn decrypt(&mut self, nonce: u64, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        if nonce != self.recv_nonce || nonce >= MAX_NONCE {
            return Err(Error::Decrypt);
        }
        if ciphertext.len() < NOISE_TAG_LEN || ciphertext.len() > MAX_NOISE_MSG_LEN {
            return Err(Error::Decrypt);
        }
        let mut out = Zeroizing::new(vec![0u8; ciphertext.len()]);
        let n = self
            .transport
            .read_message(nonce, ciphertext, &mut out)
            .map_err(|_| Error::Decrypt)?;
        out.truncate(n);
        self.recv_nonce += 1;
        if self.recv_nonce.is_multiple_of(self.rekey_interval) {
            self.transport.rekey_incoming();
        }
        Ok(out)
    }

    /// Test hook: change the rekey interval (both ends must agree).
    #[doc(hidden)]
    pub fn set_rekey_interval_for_tests(&mut self, interval: u64) {
        self.rekey_interval = interval.max(1);
    }

    /// Test hook: jump the nonces, to exercise exhaustion without 2^64 messages.
    #[doc(hidden)]
    pub fn set_nonces_for_tests(&mut self, send: u64, recv: u64) {
        self.send_nonce = send;
        self.recv_nonce = recv;
    }
}
