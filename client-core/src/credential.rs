//! Staff credentials: the member's two private keys and the organisation's certificate,
//! sealed in a file under a passphrase (Argon2id, then XChaCha20-Poly1305).
//!
//! The same code opens the file in the native client and in the browser, where the opened
//! credential lives in memory only and is never written to browser storage.

use crate::identity::{Certificate, SignedCertificate, StaffSigningKey};
use crate::noise::NoiseStaticKey;

#[cfg(feature = "credential-files")]
pub use files::CREDENTIAL_FORMAT;

/// An opened staff credential: everything a staff client needs to log in and to answer
/// handshakes. No `Clone`; the keys wipe themselves when dropped.
pub struct StaffCredential {
    /// The static key for Noise.
    pub noise: NoiseStaticKey,
    /// The key that answers the relay's login challenge.
    pub signing: StaffSigningKey,
    /// The organisation's signed certificate.
    pub certificate: SignedCertificate,
    /// The certificate's content (checked against the organisation key when opened).
    pub info: Certificate,
}

impl std::fmt::Debug for StaffCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffCredential")
            .field("serial", &self.info.serial)
            .field("role", &self.info.role)
            .finish_non_exhaustive()
    }
}

/// Reading and writing credential files (feature `credential-files`).
#[cfg(feature = "credential-files")]
mod files {
    use argon2::{Algorithm, Argon2, Params, Version};
    use base64::{Engine, engine::general_purpose::STANDARD as B64};
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};
    use serde::{Deserialize, Serialize};
    use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

    use crate::error::Error;
    use crate::identity::{OrgPublicKey, SignedCertificate, StaffSigningKey};
    use crate::ids::fill_random;
    use crate::noise::NoiseStaticKey;

    use super::StaffCredential;

    /// The format tag written into, and required in, every credential file.
    pub const CREDENTIAL_FORMAT: &str = "approdo-credential/1";

    /// Argon2id memory cost in KiB (19 MiB, the OWASP minimum for Argon2id).
    const KDF_MEMORY_KIB: u32 = 19 * 1024;
    /// Argon2id passes.
    const KDF_PASSES: u32 = 2;

    #[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
    struct SecretPart {
        noise_secret: [u8; 32],
        signing_seed: [u8; 32],
        #[zeroize(skip)]
        certificate: SignedCertificate,
    }

    /// The file as stored: nothing readable without the passphrase.
    #[derive(Serialize, Deserialize)]
    struct CredentialFile {
        format: String,
        kdf: String,
        memory_kib: u32,
        passes: u32,
        salt: String,
        nonce: String,
        sealed: String,
    }

    fn derive_key(
        passphrase: &str,
        salt: &[u8],
        memory_kib: u32,
        passes: u32,
    ) -> Result<Zeroizing<[u8; 32]>, Error> {
        let params = Params::new(memory_kib, passes, 1, Some(32)).map_err(|_| Error::Credential)?;
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
            .map_err(|_| Error::Credential)?;
        Ok(key)
    }

    fn aad(memory_kib: u32, passes: u32) -> Vec<u8> {
        format!("{CREDENTIAL_FORMAT}|argon2id|{memory_kib}|{passes}").into_bytes()
    }

    impl StaffCredential {
        /// Seal this credential under `passphrase`, as the text of a credential file.
        pub fn to_file(&self, passphrase: &str) -> Result<String, Error> {
            let secret = SecretPart {
                noise_secret: *self.noise.secret(),
                signing_seed: *self.signing.seed(),
                certificate: self.certificate.clone(),
            };
            let plain =
                Zeroizing::new(postcard::to_allocvec(&secret).map_err(|_| Error::Malformed)?);
            let mut salt = [0u8; 16];
            fill_random(&mut salt);
            let mut nonce = [0u8; 24];
            fill_random(&mut nonce);
            let key = derive_key(passphrase, &salt, KDF_MEMORY_KIB, KDF_PASSES)?;
            let cipher = XChaCha20Poly1305::new(key.as_ref().into());
            let sealed = cipher
                .encrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: &plain,
                        aad: &aad(KDF_MEMORY_KIB, KDF_PASSES),
                    },
                )
                .map_err(|_| Error::Credential)?;
            let file = CredentialFile {
                format: CREDENTIAL_FORMAT.into(),
                kdf: "argon2id".into(),
                memory_kib: KDF_MEMORY_KIB,
                passes: KDF_PASSES,
                salt: B64.encode(salt),
                nonce: B64.encode(nonce),
                sealed: B64.encode(sealed),
            };
            serde_json::to_string_pretty(&file).map_err(|_| Error::Malformed)
        }

        /// Open a credential file with its passphrase and check the certificate inside against
        /// the organisation key and the keys inside. Every failure is the same
        /// [`Error::Credential`], so a wrong passphrase and a damaged file look alike.
        pub fn from_file(text: &str, passphrase: &str, org: &OrgPublicKey) -> Result<Self, Error> {
            let file: CredentialFile = serde_json::from_str(text).map_err(|_| Error::Credential)?;
            if file.format != CREDENTIAL_FORMAT || file.kdf != "argon2id" {
                return Err(Error::Credential);
            }
            // Bound the work a hostile file can ask of us (and of a phone's memory).
            if !(8 * 1024..=256 * 1024).contains(&file.memory_kib)
                || !(1..=10).contains(&file.passes)
            {
                return Err(Error::Credential);
            }
            let salt = B64.decode(&file.salt).map_err(|_| Error::Credential)?;
            let nonce = B64.decode(&file.nonce).map_err(|_| Error::Credential)?;
            let sealed = B64.decode(&file.sealed).map_err(|_| Error::Credential)?;
            if nonce.len() != 24 || salt.len() < 16 {
                return Err(Error::Credential);
            }
            let key = derive_key(passphrase, &salt, file.memory_kib, file.passes)?;
            let cipher = XChaCha20Poly1305::new(key.as_ref().into());
            let plain = Zeroizing::new(
                cipher
                    .decrypt(
                        XNonce::from_slice(&nonce),
                        Payload {
                            msg: &sealed,
                            aad: &aad(file.memory_kib, file.passes),
                        },
                    )
                    .map_err(|_| Error::Credential)?,
            );
            let secret: SecretPart = postcard::from_bytes(&plain).map_err(|_| Error::Credential)?;
            let credential = StaffCredential {
                noise: NoiseStaticKey::from_secret(&secret.noise_secret),
                signing: StaffSigningKey::from_seed(&secret.signing_seed),
                certificate: secret.certificate.clone(),
                info: org
                    .open_certificate(&secret.certificate)
                    .map_err(|_| Error::Credential)?,
            };
            if credential.info.noise_key != credential.noise.public()
                || credential.info.signing_key != credential.signing.public()
            {
                return Err(Error::Credential);
            }
            Ok(credential)
        }
    }
}

#[cfg(all(test, feature = "credential-files"))]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::identity::{OrgSigningKey, Role};
    use crate::ids::Tag;

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let org = OrgSigningKey::generate();
        let noise = NoiseStaticKey::generate();
        let signing = StaffSigningKey::generate();
        let info = Certificate {
            serial: 1,
            role: Role::Interpreter,
            label: "int-1".into(),
            desks: vec![Tag::new("national").expect("tag")],
            languages: vec![Tag::new("ro").expect("tag")],
            noise_key: noise.public(),
            signing_key: signing.public(),
            not_after: u64::MAX,
        };
        let certificate = org.certify(&info);
        let cred = StaffCredential {
            noise,
            signing,
            certificate,
            info,
        };
        let file = cred.to_file("correct horse").expect("seal");
        assert!(!file.contains("int-1"), "the label is sealed too");
        let back = StaffCredential::from_file(&file, "correct horse", &org.public()).expect("open");
        assert_eq!(back.noise.public(), cred.noise.public());
        assert_eq!(back.info, cred.info);
        assert_eq!(
            StaffCredential::from_file(&file, "wrong", &org.public()).err(),
            Some(Error::Credential)
        );
        assert_eq!(
            StaffCredential::from_file(&file, "correct horse", &OrgSigningKey::generate().public())
                .err(),
            Some(Error::Credential)
        );
    }
}
