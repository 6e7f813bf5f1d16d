//! TURN credentials for calls through a TURN server (coturn) when UDP is blocked.
//!
//! The relay and coturn share a secret (coturn's `use-auth-secret`, the "TURN REST API"
//! scheme). For a call member whose direct connection failed the relay mints a username
//! `<unix expiry>:<random id>` and the credential `base64(HMAC-SHA1(secret, username))`;
//! coturn recomputes the credential from the username, and refuses it once the expiry has
//! passed. The username names no session, participant or address: coturn sees it together
//! with the browser's address, and a coturn log (which must be off anyway) could otherwise
//! tie an address to a conversation.

use std::path::PathBuf;

use approdo_core::ids::fill_random;
use approdo_core::limits::{MAX_TURN_URL_LEN, MAX_TURN_URLS};
use approdo_core::wire::TurnAnswer;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use zeroize::Zeroizing;

use crate::error::RelayError;

/// The default lifetime of minted credentials: five minutes. coturn checks the expiry
/// only when an allocation is made (a call that has started keeps its allocation, refreshed
/// under the same authentication), and the page uses them within seconds of asking, so a
/// short lifetime costs nothing and leaves little time to use a credential that leaked
/// (from a shared phone's memory, say) to relay traffic through the hotline's server.
pub const DEFAULT_LIFETIME_SECS: u32 = 300;

/// Shortest shared secret accepted, in bytes: it is the whole of the scheme's security.
pub const MIN_SECRET_LEN: usize = 16;

/// The `[turn]` section of the configuration file. Absent: no TURN, and a page whose
/// direct connection fails is told `Unavailable`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnConfigFile {
    /// The URLs handed to browsers, tried in order, e.g.
    /// `turns:turn.example.org:443?transport=tcp` (TLS on 443, which passes most
    /// firewalls) and `turn:turn.example.org:3478?transport=tcp`.
    pub urls: Vec<String>,
    /// A file holding the secret shared with coturn (`static-auth-secret`), one line. Keep
    /// it readable by the relay's and coturn's users only.
    pub secret_file: PathBuf,
    /// Seconds minted credentials stay valid ([`DEFAULT_LIFETIME_SECS`] when left out; at
    /// most an hour).
    #[serde(default = "default_lifetime")]
    pub lifetime_secs: u32,
}

fn default_lifetime() -> u32 {
    DEFAULT_LIFETIME_SECS
}

/// TURN as the relay uses it: URLs, the shared secret (wiped when dropped, never printed)
/// and the lifetime of what it mints.
#[derive(Clone)]
pub struct Turn {
    urls: Vec<String>,
    secret: Zeroizing<Vec<u8>>,
    lifetime_secs: u32,
}

impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Turn")
            .field("urls", &self.urls.len())
            .field("lifetime_secs", &self.lifetime_secs)
            .finish_non_exhaustive()
    }
}

impl Turn {
    /// Check the URLs, the lifetime and the secret (at least [`MIN_SECRET_LEN`] bytes).
    pub fn new(urls: Vec<String>, secret: &[u8], lifetime_secs: u32) -> Result<Turn, RelayError> {
        let bad = |why: &str| Err(RelayError::Config(format!("[turn] {why}")));
        if urls.is_empty() || urls.len() > MAX_TURN_URLS {
            return bad("urls: between 1 and 4 URLs");
        }
        for u in &urls {
            let scheme_ok = u.starts_with("turn:") || u.starts_with("turns:");
            if !scheme_ok
                || u.len() > MAX_TURN_URL_LEN
                || u.chars().any(|c| c.is_control() || c.is_whitespace())
            {
                return bad("urls: turn: or turns: URLs without spaces, at most 256 bytes");
            }
        }
        if lifetime_secs == 0 || lifetime_secs > 3600 {
            return bad("lifetime_secs: between 1 and 3600");
        }
        if secret.len() < MIN_SECRET_LEN {
            return bad("the shared secret must be at least 16 bytes");
        }
        Ok(Turn {
            urls,
            secret: Zeroizing::new(secret.to_vec()),
            lifetime_secs,
        })
    }

    /// Read the secret file named in the configuration (its one line, without the line
    /// break) and check everything.
    pub fn load(file: &TurnConfigFile) -> Result<Turn, RelayError> {
        let text = Zeroizing::new(std::fs::read(&file.secret_file).map_err(|e| {
            RelayError::Config(format!("[turn] secret_file cannot be read: {}", e.kind()))
        })?);
        let end = text
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        Turn::new(file.urls.clone(), &text[..end], file.lifetime_secs)
    }

    /// Seconds minted credentials stay valid.
    pub fn lifetime_secs(&self) -> u32 {
        self.lifetime_secs
    }

    /// Fresh credentials valid from `unix_now` for the configured lifetime, under a new
    /// random id.
    pub fn mint(&self, unix_now: u64) -> TurnAnswer {
        let mut id = [0u8; 16];
        fill_random(&mut id);
        let expiry = unix_now.saturating_add(u64::from(self.lifetime_secs));
        let username = username(expiry, &id);
        TurnAnswer::Credentials {
            urls: self.urls.clone(),
            credential: credential(&self.secret, &username),
            username,
            lifetime_secs: self.lifetime_secs,
        }
    }
}

/// The TURN REST username: the expiry as Unix seconds, a colon, the random id in hex.
pub fn username(expiry: u64, id: &[u8; 16]) -> String {
    format!("{expiry}:{}", hex::encode(id))
}

/// The TURN REST password coturn expects: `base64(HMAC-SHA1(secret, username))`, padded
/// standard base64.
pub fn credential(secret: &[u8], username: &str) -> String {
    // HMAC takes keys of any length; the error branch cannot happen.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(username.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector in docs/protocol.md §11 (`turn-username`, `turn-credential`), computed
    /// independently with Python's `hmac` module:
    /// `base64.b64encode(hmac.new(secret, username, hashlib.sha1).digest())`.
    #[test]
    fn the_credential_matches_an_independent_computation() {
        let id: [u8; 16] = std::array::from_fn(|i| i as u8);
        let user = username(1_798_761_600, &id);
        assert_eq!(user, "1798761600:000102030405060708090a0b0c0d0e0f");
        assert_eq!(
            credential(b"approdo-turn-test-secret", &user),
            "VVovvNGlzmA5RnC7huS2jAq8sRk="
        );
    }

    #[test]
    fn minted_credentials_expire_after_the_lifetime_and_differ_each_time() {
        let turn = Turn::new(
            vec!["turn:127.0.0.1:3478?transport=tcp".into()],
            b"0123456789abcdef",
            300,
        )
        .expect("valid");
        let (
            TurnAnswer::Credentials { username: a, .. },
            TurnAnswer::Credentials {
                username: b,
                credential,
                ..
            },
        ) = (turn.mint(1000), turn.mint(1000))
        else {
            panic!("credentials")
        };
        assert!(a.starts_with("1300:") && b.starts_with("1300:"), "{a}");
        assert_ne!(a, b, "a new random id each time");
        assert_eq!(credential, super::credential(b"0123456789abcdef", &b));
        assert!(!format!("{turn:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn bad_configurations_are_refused() {
        let url = || vec!["turns:turn.example.org:443?transport=tcp".to_owned()];
        assert!(Turn::new(url(), b"short", 300).is_err());
        assert!(Turn::new(url(), b"0123456789abcdef", 0).is_err());
        assert!(Turn::new(url(), b"0123456789abcdef", 7200).is_err());
        assert!(Turn::new(vec![], b"0123456789abcdef", 300).is_err());
        assert!(Turn::new(vec!["stun:x".into()], b"0123456789abcdef", 300).is_err());
        assert!(Turn::new(vec!["turn:a b".into()], b"0123456789abcdef", 300).is_err());
        assert!(Turn::new(url(), b"0123456789abcdef", 300).is_ok());
    }
}
