//! The certificate the QUIC endpoint serves, as the endpoint takes it: a rustls certificate
//! resolver and a way to read the current certificates' SHA-256 hashes (what a browser's
//! `serverCertificateHashes` and the terminal client pin).
//!
//! [`provisional_certificate`] is a stand-in until the relay's certificate store (files
//! reloaded on SIGHUP, a renewed demo certificate) provides both; nothing else here knows
//! where a certificate comes from.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::ResolvesServerCert;
use sha2::Digest;

use crate::RelayError;

/// Longest validity a certificate reached by hash may have (the WebTransport
/// `serverCertificateHashes` rule: at most 14 days between not-before and not-after).
pub const HASHED_CERTIFICATE_VALIDITY: Duration = Duration::from_secs(14 * 24 * 3600);

/// How far the provisional certificate's validity starts before now (clocks differ).
const BACKDATE: Duration = Duration::from_secs(3600);

/// Reads the hashes of the certificates currently served (more than one while a renewed
/// certificate overlaps the old).
pub type CertificateHashes = Arc<dyn Fn() -> Vec<[u8; 32]> + Send + Sync>;

/// What the endpoint serves: the resolver rustls asks in each handshake, and the hashes.
#[derive(Clone)]
pub struct Identity {
    /// Chooses the certificate for each handshake.
    pub resolver: Arc<dyn ResolvesServerCert>,
    /// The current certificates' SHA-256 hashes.
    pub hashes: CertificateHashes,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").finish_non_exhaustive()
    }
}

/// SHA-256 of a DER certificate, as `serverCertificateHashes` takes it.
pub fn certificate_hash(der: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(der).into()
}

/// A fresh self-signed ECDSA P-256 certificate for `names` (DNS names or IP addresses),
/// valid from an hour ago for less than 14 days, never renewed. Provisional: the relay's
/// certificate store replaces it (renewal before expiry, files reloaded on SIGHUP).
pub fn provisional_certificate(names: &[String]) -> Result<Identity, RelayError> {
    let bad = |e: &dyn std::fmt::Display| RelayError::Config(format!("QUIC certificate: {e}"));
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| bad(&e))?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(|e| bad(&e))?;
    let now = SystemTime::now();
    let from = now.checked_sub(BACKDATE).unwrap_or(now);
    let until = from
        .checked_add(HASHED_CERTIFICATE_VALIDITY - Duration::from_secs(60))
        .unwrap_or(now);
    params.not_before = from.into();
    params.not_after = until.into();
    let cert = params.self_signed(&key).map_err(|e| bad(&e))?;
    let der = CertificateDer::from(cert.der().to_vec());
    let hash = certificate_hash(&der);
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signer = rustls::crypto::ring::sign::any_ecdsa_type(&private).map_err(|e| bad(&e))?;
    let certified = rustls::sign::CertifiedKey::new(vec![der], signer);
    Ok(Identity {
        resolver: Arc::new(rustls::sign::SingleCertAndKey::from(certified)),
        hashes: Arc::new(move || vec![hash]),
    })
}
