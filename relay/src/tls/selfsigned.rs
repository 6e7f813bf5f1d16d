//! Self-signed certificates the pages can pin by hash.
//!
//! WebTransport's `serverCertificateHashes` accepts only an ECDSA P-256 (or similar)
//! certificate whose validity period is at most 14 days. Each one made here is valid
//! [`SELF_SIGNED_VALIDITY`] from [`SELF_SIGNED_BACKDATE`] before it was made (a client
//! clock a little behind still accepts it), and a new one is made every [`RENEW_EVERY`]:
//! made in advance as the "next" certificate, served from one renewal to the next, so the
//! one served is replaced when it reaches about two thirds of its life.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroizing;

use super::{Issued, TlsError};

/// Validity period of a self-signed certificate, `notAfter − notBefore`: under the 14 days
/// WebTransport allows for pinned certificates.
pub const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(13 * 24 * 3600);

/// How far `notBefore` lies before the moment a certificate is made.
pub const SELF_SIGNED_BACKDATE: Duration = Duration::from_secs(3600);

/// How often a new self-signed certificate is made. The served one was made one period
/// earlier and is replaced after another, at two periods' age: two thirds of
/// [`SELF_SIGNED_VALIDITY`].
pub const RENEW_EVERY: Duration = Duration::from_secs(SELF_SIGNED_VALIDITY.as_secs() / 3);

/// The names every self-signed certificate lists: the loopback addresses the demo serves.
const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Make one certificate for `LOOPBACK_NAMES` and `hosts`, made at `now`.
pub(super) fn issue(hosts: &[String], now: SystemTime) -> Result<Issued, TlsError> {
    let generate = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let mut names: Vec<String> = LOOPBACK_NAMES.iter().map(|s| (*s).to_owned()).collect();
    for host in hosts {
        if !names.contains(host) {
            names.push(host.clone());
        }
    }
    let mut params = CertificateParams::new(names).map_err(generate)?;
    let not_before = now.checked_sub(SELF_SIGNED_BACKDATE).unwrap_or(now);
    let not_after = not_before
        .checked_add(SELF_SIGNED_VALIDITY)
        .ok_or_else(|| TlsError::Generate("the clock is out of range".into()))?;
    params.not_before = time::OffsetDateTime::from(not_before);
    params.not_after = time::OffsetDateTime::from(not_after);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Approdo relay (self-signed)");
    params.distinguished_name = dn;
    // rcgen keeps the key's DER inside `KeyPair`, wiped by its `Zeroize` (no drop of its
    // own): `Zeroizing` wipes it when this function returns.
    let key_pair =
        Zeroizing::new(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate)?);
    let cert = params.self_signed(&*key_pair).map_err(generate)?;
    let der = cert.der().clone();
    let hash = super::certificate_hash(&der);
    let key = Zeroizing::new(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        key_pair.serialize_der(),
    )));
    let certified = super::certified(vec![der], &key)?;
    Ok(Issued {
        key: Arc::new(certified),
        hash,
        made: now,
    })
}
