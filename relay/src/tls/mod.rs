//! The relay's TLS certificate, shared by HTTPS and the QUIC endpoint.
//!
//! [`Certificates`] is what rustls asks for a certificate at every handshake
//! ([`rustls::server::ResolvesServerCert`]). It holds the current certificate as an
//! `Arc<CertifiedKey>` behind a lock that is only held to clone or replace that `Arc`: a
//! reload or renewal swaps it at once, connections already open keep the one they
//! handshook with, and the next handshake gets the new one.
//!
//! Two sources:
//! * **files** (a PEM chain and key, e.g. from any ACME client): read at start and again on
//!   [`Certificates::reload`] (SIGHUP); a file that cannot be read or does not match keeps
//!   the certificate in use;
//! * **self-signed** (the demo, and anywhere no public certificate exists): ECDSA P-256,
//!   valid at most 14 days (WebTransport's `serverCertificateHashes` rule), renewed before
//!   expiry by [`Certificates::renew_if_due`]. The pages pin it by hash (see
//!   [`Certificates::web_transport_hashes`]).
//!
//! Key material: the key file's bytes and the DER key handed to rustls are held in
//! [`zeroize::Zeroizing`] buffers and wiped when dropped; so is rcgen's generated key pair
//! (its `zeroize` feature wipes the DER it holds). The signing key rustls builds from it
//! (ring's key pair inside `CertifiedKey`) is not zeroised when a certificate is replaced:
//! neither rustls nor ring offers that, so it stays in freed memory until reused. No key is ever logged; errors name the source,
//! never the bytes.

mod selfsigned;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::ring as provider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

pub use selfsigned::{RENEW_EVERY, SELF_SIGNED_BACKDATE, SELF_SIGNED_VALIDITY};

/// `Strict-Transport-Security` on every HTTPS response: two years, subdomains included.
/// Never sent over plain HTTP (browsers ignore it there, and the demo's loopback pages are
/// plain HTTP on purpose).
pub const HSTS: &str = "max-age=63072000; includeSubDomains";

/// The ALPN the HTTPS listener offers (hyper serves HTTP/1.1 only).
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Largest certificate or key file read (a chain of a few certificates is a few KiB).
const MAX_PEM_FILE: u64 = 1024 * 1024;

/// Where the relay's certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsSource {
    /// A PEM certificate chain (leaf first) and its PEM private key, e.g. written by an
    /// ACME client; re-read on SIGHUP.
    Files {
        /// The chain (`fullchain.pem`).
        cert: PathBuf,
        /// The key (`privkey.pem`): PKCS#8, SEC1 or PKCS#1.
        key: PathBuf,
    },
    /// A self-signed ECDSA P-256 certificate made at start and renewed before expiry, for
    /// the demo and tests. Its names are `localhost`, `127.0.0.1`, `::1` and `hosts`.
    SelfSigned {
        /// Extra DNS names or IP addresses to list (the configured host, if any).
        hosts: Vec<String>,
    },
}

/// What can go wrong with the certificate. Messages name the file, never its content.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read the TLS {what} file: {error}")]
    Read {
        /// `certificate` or `key`.
        what: &'static str,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A file holds no usable PEM section of its kind, or is too large.
    #[error("the TLS {0} file holds no usable PEM {0}")]
    Pem(&'static str),
    /// rustls refused the key, or the key does not match the certificate.
    #[error("the TLS key is not usable with the certificate: {0}")]
    Key(String),
    /// Making a self-signed certificate failed.
    #[error("cannot make the self-signed certificate: {0}")]
    Generate(String),
}

/// One self-signed certificate with what the pages pin.
#[derive(Clone)]
struct Issued {
    key: Arc<CertifiedKey>,
    hash: [u8; 32],
    /// When it was made (its `notBefore` is [`SELF_SIGNED_BACKDATE`] earlier).
    made: SystemTime,
}

/// What the resolver serves now.
struct State {
    current: Arc<CertifiedKey>,
    current_hash: [u8; 32],
    /// Self-signed only: the certificate that replaces `current` at the next renewal,
    /// made in advance so a page loaded before the renewal already pins it.
    next: Option<Issued>,
    /// Self-signed only: when `current` was made.
    current_made: Option<SystemTime>,
}

/// The relay's certificate store (see the module documentation).
pub struct Certificates {
    source: TlsSource,
    state: RwLock<State>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates")
            .field("self_signed", &self.is_self_signed())
            .finish_non_exhaustive()
    }
}

/// SHA-256 of a DER certificate: what WebTransport's `serverCertificateHashes` compares.
pub fn certificate_hash(der: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(der).into()
}

fn read_limited(
    path: &std::path::Path,
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>, TlsError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|error| TlsError::Read { what, error })?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| TlsError::Read { what, error })?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_PEM_FILE {
        return Err(TlsError::Pem(what));
    }
    Ok(bytes)
}

/// Build what rustls serves from a chain and a key, checking that they belong together.
/// The key is only borrowed: the caller's zeroizing buffer is the one copy of its DER.
fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: &PrivateKeyDer<'static>,
) -> Result<CertifiedKey, TlsError> {
    let signing =
        provider::sign::any_supported_type(key).map_err(|e| TlsError::Key(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| TlsError::Key(e.to_string()))?;
    Ok(certified)
}

/// Read a PEM chain and key from files.
fn load_files(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<(Arc<CertifiedKey>, [u8; 32]), TlsError> {
    let cert_pem = read_limited(cert, "certificate")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::Pem("certificate"))?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::Pem("certificate"));
    };
    let hash = certificate_hash(leaf);
    let key_pem = read_limited(key, "key")?;
    let key =
        Zeroizing::new(PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::Pem("key"))?);
    Ok((Arc::new(certified(chain, &key)?), hash))
}

impl Certificates {
    /// Load the files or make the self-signed certificates. `now` is the wall clock
    /// (certificate validity is wall-clock time).
    pub fn new(source: TlsSource, now: SystemTime) -> Result<Arc<Self>, TlsError> {
        let state = match &source {
            TlsSource::Files { cert, key } => {
                let (current, current_hash) = load_files(cert, key)?;
                State {
                    current,
                    current_hash,
                    next: None,
                    current_made: None,
                }
            }
            TlsSource::SelfSigned { hosts } => {
                let current = selfsigned::issue(hosts, now)?;
                let next = selfsigned::issue(hosts, now)?;
                State {
                    current: current.key,
                    current_hash: current.hash,
                    next: Some(next),
                    current_made: Some(current.made),
                }
            }
        };
        Ok(Arc::new(Certificates {
            source,
            state: RwLock::new(state),
        }))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the certificate is self-signed (pinned by the pages) rather than from files.
    pub fn is_self_signed(&self) -> bool {
        matches!(self.source, TlsSource::SelfSigned { .. })
    }

    /// The hashes a page may pin in WebTransport's `serverCertificateHashes`, current
    /// first. Self-signed: the current certificate and the next one, so a page loaded just
    /// before a renewal still connects after it (until the renewal after that). From files:
    /// none, since a publicly trusted certificate needs no pin and changes at every ACME
    /// renewal. `/config.json` lists exactly these (`webtransport.hashes`).
    pub fn web_transport_hashes(&self) -> Vec<[u8; 32]> {
        let state = self.read();
        match &state.next {
            Some(next) => vec![state.current_hash, next.hash],
            None => Vec::new(),
        }
    }

    /// SHA-256 of the leaf certificate served now (printed at start, for people to check).
    pub fn current_hash(&self) -> [u8; 32] {
        self.read().current_hash
    }

    /// The certificate (chain and key) served now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.read().current.clone()
    }

    /// Re-read the files (SIGHUP). On any error the certificate in use stays and the error
    /// is returned for the caller to log. A self-signed store has nothing to re-read:
    /// returns `Ok(false)`. `Ok(true)`: a new certificate is served from now on.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let TlsSource::Files { cert, key } = &self.source else {
            return Ok(false);
        };
        let (current, current_hash) = load_files(cert, key)?;
        let mut state = self.write();
        state.current = current;
        state.current_hash = current_hash;
        Ok(true)
    }

    /// Self-signed: promote the next certificate to current and make a new next one, now.
    /// `Ok(false)` for certificates from files (nothing to renew here).
    pub fn renew(&self, now: SystemTime) -> Result<bool, TlsError> {
        let TlsSource::SelfSigned { hosts } = &self.source else {
            return Ok(false);
        };
        // Made before taking the lock: signing takes a moment, handshakes must not wait.
        let fresh = selfsigned::issue(hosts, now)?;
        let mut state = self.write();
        if let Some(next) = state.next.replace(fresh) {
            state.current = next.key;
            state.current_hash = next.hash;
            state.current_made = Some(next.made);
        }
        Ok(true)
    }

    /// Self-signed: renew when the next certificate has waited [`RENEW_EVERY`] (so the
    /// served one is replaced at about two thirds of its life), or when the served one is
    /// past that age however it happened (a suspended machine). Wall-clock based, so a
    /// check every hour is enough. Returns whether it renewed.
    pub fn renew_if_due(&self, now: SystemTime) -> Result<bool, TlsError> {
        let due = {
            let state = self.read();
            let aged =
                |made: SystemTime| now.duration_since(made).is_ok_and(|age| age >= RENEW_EVERY);
            state.next.as_ref().is_some_and(|n| aged(n.made))
                || state
                    .current_made
                    .is_some_and(|m| now.duration_since(m).is_ok_and(|a| a >= 2 * RENEW_EVERY))
        };
        if due { self.renew(now) } else { Ok(false) }
    }

    /// A rustls server configuration that takes its certificate from this store, for
    /// TLS 1.2 and 1.3 with the ring provider and the given ALPN protocols. HTTPS uses
    /// `[ALPN_HTTP1]`; the QUIC endpoint builds its own with
    /// [`Certificates::tls13_server_config`].
    pub fn server_config(
        self: &Arc<Self>,
        alpn: &[&[u8]],
    ) -> Result<rustls::ServerConfig, TlsError> {
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| TlsError::Key(e.to_string()))?
                .with_no_client_auth()
                .with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }

    /// A TLS 1.3-only server configuration on the same certificate, for QUIC (which
    /// requires 1.3). 0-RTT stays off (`max_early_data_size` 0: replayable).
    pub fn tls13_server_config(
        self: &Arc<Self>,
        alpn: &[&[u8]],
    ) -> Result<rustls::ServerConfig, TlsError> {
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .map_err(|e| TlsError::Key(e.to_string()))?
                .with_no_client_auth()
                .with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config.max_early_data_size = 0;
        Ok(config)
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// How long a self-signed store may sleep between [`Certificates::renew_if_due`] checks.
pub const RENEW_CHECK: Duration = Duration::from_secs(3600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_renewal_promotes_the_next_certificate_when_due() {
        let start = SystemTime::now();
        let store =
            Certificates::new(TlsSource::SelfSigned { hosts: vec![] }, start).expect("self-signed");
        let first = store.web_transport_hashes();
        assert_eq!(first.len(), 2);
        assert_eq!(first[0], store.current_hash());
        assert_eq!(first[0], certificate_hash(&store.current().cert[0]));

        let almost = start + RENEW_EVERY - Duration::from_secs(1);
        assert!(!store.renew_if_due(almost).expect("checked"), "not yet due");
        assert_eq!(store.web_transport_hashes(), first);

        assert!(store.renew_if_due(start + RENEW_EVERY).expect("renewed"));
        let second = store.web_transport_hashes();
        assert_eq!(second[0], first[1], "the next one is served now");
        assert_ne!(second[1], first[1]);
        assert_eq!(store.current_hash(), second[0]);
    }

    #[test]
    fn the_served_certificate_is_replaced_at_two_thirds_of_its_life() {
        assert!(SELF_SIGNED_VALIDITY <= Duration::from_secs(14 * 24 * 3600));
        // Served from one renewal (age RENEW_EVERY) to the next (age 2 × RENEW_EVERY).
        assert!(2 * RENEW_EVERY <= SELF_SIGNED_VALIDITY * 2 / 3 + Duration::from_secs(1));
    }

    #[test]
    fn files_have_no_pinned_hashes_and_nothing_to_renew() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&c, cert.pem()).expect("write");
        std::fs::write(&k, key.serialize_pem()).expect("write");
        let store = Certificates::new(TlsSource::Files { cert: c, key: k }, SystemTime::now())
            .expect("loaded");
        assert!(store.web_transport_hashes().is_empty());
        assert_eq!(store.current_hash(), certificate_hash(cert.der()));
        assert!(!store.renew(SystemTime::now()).expect("nothing to renew"));
        assert!(store.reload().expect("reloaded"));
    }
}
