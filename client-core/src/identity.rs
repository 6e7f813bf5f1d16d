//! Organisation identity: the organisation's Ed25519 key certifies staff members and
//! revokes them. A person's client pins the organisation's public key and refuses to talk
//! to anyone whose certificate it cannot check against it.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::error::{CertificateProblem, Error};
use crate::ids::{DeskId, Language, fill_random};

/// Domain separation for certificate signatures, so that no other signed object of the
/// organisation can be passed off as a certificate.
const CERT_DOMAIN: &[u8] = b"approdo/v1/staff-certificate";
/// Domain separation for revocation list signatures.
const REVOCATION_DOMAIN: &[u8] = b"approdo/v1/revocation-list";
/// Domain separation for the staff's answer to a relay challenge.
const CHALLENGE_DOMAIN: &[u8] = b"approdo/v1/relay-challenge";

/// What a staff member may do. The person has no role and no certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Answers sessions from the queue, invites interpreters, transfers and closes cases.
    Operator,
    /// Joins sessions by invitation, for the languages in the certificate.
    Interpreter,
    /// Provisions staff and reads the observatory figures; never joins a session.
    Coordinator,
}

impl Role {
    /// Whether this role may take part in a conversation with the person.
    pub fn joins_sessions(self) -> bool {
        matches!(self, Role::Operator | Role::Interpreter)
    }

    /// Lowercase name, for command lines and pages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Interpreter => "interpreter",
            Role::Coordinator => "coordinator",
        }
    }
}

/// The certified facts about one staff member. Signed as a whole by the organisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// Unique per organisation; what a revocation names.
    pub serial: u64,
    /// What the member may do.
    pub role: Role,
    /// A label chosen by the coordinator ("op-anna"), shown to colleagues; never a full name.
    pub label: String,
    /// Desks the member answers for (operators) or serves (interpreters).
    pub desks: Vec<DeskId>,
    /// Languages the member speaks.
    pub languages: Vec<Language>,
    /// The member's static X25519 key for Noise handshakes.
    pub noise_key: [u8; 32],
    /// The member's Ed25519 key, used to answer the relay's login challenge.
    pub signing_key: [u8; 32],
    /// End of validity, in seconds since the Unix epoch.
    pub not_after: u64,
}

/// A certificate with the organisation's signature over its canonical encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCertificate {
    /// The postcard encoding of a [`Certificate`]; kept as bytes so the signature covers
    /// exactly what was signed.
    pub body: Vec<u8>,
    /// Ed25519 signature by the organisation key over `CERT_DOMAIN || body`.
    #[serde(with = "sig_bytes")]
    pub signature: [u8; 64],
}

/// The list of revoked certificate serials, signed by the organisation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationList {
    /// When the list was issued, in seconds since the Unix epoch; a client keeps the newest.
    pub issued_at: u64,
    /// Revoked serials, sorted.
    pub serials: Vec<u64>,
}

/// A revocation list with the organisation's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRevocationList {
    /// The postcard encoding of a [`RevocationList`].
    pub body: Vec<u8>,
    /// Ed25519 signature by the organisation key over `REVOCATION_DOMAIN || body`.
    #[serde(with = "sig_bytes")]
    pub signature: [u8; 64],
}

/// The organisation's public key, pinned in every client and in the relay.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgPublicKey(pub [u8; 32]);

impl std::fmt::Debug for OrgPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OrgPublicKey({})", hex::encode(self.0))
    }
}

/// The organisation's signing key. Kept offline by the coordinator; wiped when dropped.
pub struct OrgSigningKey {
    key: SigningKey,
}

impl std::fmt::Debug for OrgSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgSigningKey")
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

impl OrgSigningKey {
    /// A new random organisation key.
    pub fn generate() -> Self {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        fill_random(seed.as_mut());
        OrgSigningKey {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// Rebuild from the 32-byte seed stored in the organisation key file.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        OrgSigningKey {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The seed, for writing the key file. The caller must wipe it.
    pub fn seed(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.key.to_bytes())
    }

    /// The public half, to pin in clients and the relay.
    pub fn public(&self) -> OrgPublicKey {
        OrgPublicKey(self.key.verifying_key().to_bytes())
    }

    /// Sign a staff certificate.
    pub fn certify(&self, cert: &Certificate) -> SignedCertificate {
        let body = postcard::to_allocvec(cert).expect("a certificate always encodes");
        let signature = self.key.sign(&domain(CERT_DOMAIN, &body)).to_bytes();
        SignedCertificate { body, signature }
    }

    /// Sign a revocation list.
    pub fn sign_revocations(&self, list: &RevocationList) -> SignedRevocationList {
        let mut list = list.clone();
        list.serials.sort_unstable();
        list.serials.dedup();
        let body = postcard::to_allocvec(&list).expect("a revocation list always encodes");
        let signature = self.key.sign(&domain(REVOCATION_DOMAIN, &body)).to_bytes();
        SignedRevocationList { body, signature }
    }
}

impl OrgPublicKey {
    fn verifying(&self) -> Result<VerifyingKey, Error> {
        VerifyingKey::from_bytes(&self.0)
            .map_err(|_| Error::Certificate(CertificateProblem::BadSignature))
    }

    /// Check a certificate's signature and return its content. Does not check expiry or
    /// revocation: use [`OrgPublicKey::check_certificate`] for the full decision.
    pub fn open_certificate(&self, signed: &SignedCertificate) -> Result<Certificate, Error> {
        let sig = Signature::from_bytes(&signed.signature);
        self.verifying()?
            .verify_strict(&domain(CERT_DOMAIN, &signed.body), &sig)
            .map_err(|_| Error::Certificate(CertificateProblem::BadSignature))?;
        postcard::from_bytes(&signed.body)
            .map_err(|_| Error::Certificate(CertificateProblem::BadSignature))
    }

    /// The whole decision on a certificate: signed by this organisation, not expired at
    /// `now_unix`, not revoked, and for a role that may join a conversation.
    pub fn check_certificate(
        &self,
        signed: &SignedCertificate,
        revoked: &RevocationList,
        now_unix: u64,
    ) -> Result<Certificate, Error> {
        let cert = self.open_certificate(signed)?;
        if now_unix > cert.not_after {
            return Err(Error::Certificate(CertificateProblem::Expired));
        }
        if revoked.serials.binary_search(&cert.serial).is_ok() {
            return Err(Error::Certificate(CertificateProblem::Revoked));
        }
        Ok(cert)
    }

    /// Check a revocation list's signature and return it.
    pub fn open_revocations(&self, signed: &SignedRevocationList) -> Result<RevocationList, Error> {
        let sig = Signature::from_bytes(&signed.signature);
        self.verifying()?
            .verify_strict(&domain(REVOCATION_DOMAIN, &signed.body), &sig)
            .map_err(|_| Error::Certificate(CertificateProblem::BadSignature))?;
        let mut list: RevocationList =
            postcard::from_bytes(&signed.body).map_err(|_| Error::Malformed)?;
        list.serials.sort_unstable();
        Ok(list)
    }
}

/// A staff member's Ed25519 login key. Wiped when dropped; no `Clone`.
pub struct StaffSigningKey {
    key: SigningKey,
}

impl std::fmt::Debug for StaffSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffSigningKey").finish_non_exhaustive()
    }
}

impl StaffSigningKey {
    /// A new random key.
    pub fn generate() -> Self {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        fill_random(seed.as_mut());
        Self::from_seed(&seed)
    }

    /// Rebuild from a seed read from a credential file.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        StaffSigningKey {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The seed, for writing a credential file.
    pub fn seed(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.key.to_bytes())
    }

    /// The public key that goes into the certificate.
    pub fn public(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Answer the relay's login challenge.
    pub fn answer_challenge(&self, challenge: &[u8]) -> [u8; 64] {
        self.key
            .sign(&domain(CHALLENGE_DOMAIN, challenge))
            .to_bytes()
    }
}

/// The relay's check of a login answer against the key in the staff certificate.
pub fn verify_challenge_answer(
    signing_key: &[u8; 32],
    challenge: &[u8],
    answer: &[u8; 64],
) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(signing_key) else {
        return false;
    };
    key.verify_strict(
        &domain(CHALLENGE_DOMAIN, challenge),
        &Signature::from_bytes(answer),
    )
    .is_ok()
}

fn domain(tag: &[u8], body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(tag.len() + 1 + body.len());
    m.extend_from_slice(tag);
    m.push(0);
    m.extend_from_slice(body);
    m
}

/// serde for `[u8; 64]` signatures, which serde does not derive for arrays longer than 32.
pub mod sig_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Write the signature as a byte string.
    pub fn serialize<S: Serializer>(v: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    /// Read a 64-byte signature.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let v: &[u8] = <&[u8]>::deserialize(d)?;
        v.try_into()
            .map_err(|_| serde::de::Error::invalid_length(v.len(), &"64 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(serial: u64) -> Certificate {
        Certificate {
            serial,
            role: Role::Operator,
            label: "op".into(),
            desks: vec![DeskId::new("national").expect("tag")],
            languages: vec![Language::new("en").expect("tag")],
            noise_key: [1; 32],
            signing_key: StaffSigningKey::generate().public(),
            not_after: 1_000,
        }
    }

    #[test]
    fn certificate_checks() {
        let org = OrgSigningKey::generate();
        let signed = org.certify(&cert(7));
        let none = RevocationList::default();
        assert_eq!(
            org.public()
                .check_certificate(&signed, &none, 999)
                .expect("valid")
                .serial,
            7
        );
        assert_eq!(
            org.public().check_certificate(&signed, &none, 1_001),
            Err(Error::Certificate(CertificateProblem::Expired))
        );
        let revoked = org
            .public()
            .open_revocations(&org.sign_revocations(&RevocationList {
                issued_at: 1,
                serials: vec![9, 7],
            }));
        assert_eq!(
            org.public()
                .check_certificate(&signed, &revoked.expect("signed"), 10),
            Err(Error::Certificate(CertificateProblem::Revoked))
        );
        let other = OrgSigningKey::generate();
        assert_eq!(
            other.public().check_certificate(&signed, &none, 10),
            Err(Error::Certificate(CertificateProblem::BadSignature))
        );
        let mut tampered = signed.clone();
        tampered.body[0] ^= 1;
        assert!(
            org.public()
                .check_certificate(&tampered, &none, 10)
                .is_err()
        );
    }

    #[test]
    fn challenge_answers_verify_only_for_the_key_and_challenge() {
        let k = StaffSigningKey::generate();
        let a = k.answer_challenge(b"nonce-1");
        assert!(verify_challenge_answer(&k.public(), b"nonce-1", &a));
        assert!(!verify_challenge_answer(&k.public(), b"nonce-2", &a));
        assert!(!verify_challenge_answer(
            &StaffSigningKey::generate().public(),
            b"nonce-1",
            &a
        ));
    }

    #[test]
    fn debug_prints_no_secret() {
        let k = StaffSigningKey::generate();
        let seed = hex::encode(*k.seed());
        assert!(!format!("{k:?}").contains(&seed));
        let o = OrgSigningKey::generate();
        assert!(!format!("{o:?}").contains(&hex::encode(*o.seed())));
    }
}
