//! The browser binding of Approdo: one class, `Approdo`, a thin wasm-bindgen layer over
//! [`approdo_core::client::Client`] implementing `web-client/CONTRACT.md`. No protocol
//! logic lives here or in JavaScript; this file only converts arguments, results and
//! errors. The conversions themselves are plain Rust in [`map`].
//!
//! Plaintext the page hands in (message bodies, notes, the passphrase) is taken by value
//! and wiped from WebAssembly memory after use; event JSON is wiped once copied into a
//! JavaScript string. Call `free()` on the object when done, so the staff keys wipe
//! themselves at once rather than whenever the garbage collector gets to it.

pub mod map;

use approdo_core::Error;
use approdo_core::client::Client;
#[cfg(feature = "staff")]
use approdo_core::credential::StaffCredential;
use approdo_core::safety::SafetyCode;
use js_sys::JsString;
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

/// A core error as the `Error` JavaScript sees: its message is the contract's short code.
fn js(e: Error) -> JsError {
    JsError::new(map::error_code(&e))
}

/// A time from JavaScript (seconds since the Unix epoch, as a number) as `u64`.
fn unix_secs(now: f64) -> u64 {
    if now.is_finite() && now > 0.0 {
        // Saturating float-to-integer conversion, after dropping the fraction.
        now.trunc() as u64
    } else {
        0
    }
}

/// One client: the anonymous person or a staff member. See `web-client/CONTRACT.md`.
#[wasm_bindgen]
pub struct Approdo {
    client: Client,
    label: Option<String>,
    languages: Vec<String>,
    desks: Vec<String>,
}

#[wasm_bindgen]
impl Approdo {
    /// A client for the anonymous person, pinning the organisation key (64 hex digits).
    /// Throws `invalid` for a malformed key.
    pub fn person(org_hex: &str) -> Result<Approdo, JsError> {
        let org = map::parse_org(org_hex).map_err(js)?;
        Ok(Approdo {
            client: Client::person(org),
            label: None,
            languages: Vec::new(),
            desks: Vec::new(),
        })
    }

    /// Pin a signed revocation list (the `revocations` of `/config.json`: hex of the list's
    /// encoded body followed by its 64-byte signature), so a relay serving an older list
    /// cannot bring a revoked certificate back. A list older than one already seen changes
    /// nothing. Throws `invalid` for malformed hex, or the core's code for a bad signature.
    #[wasm_bindgen(js_name = addRevocations)]
    pub fn add_revocations(&mut self, signed_hex: &str) -> Result<(), JsError> {
        /// Bytes of an Ed25519 signature, at the end of the list's bytes.
        const SIGNATURE_LEN: usize = 64;
        let bytes = hex::decode(signed_hex.trim()).map_err(|_| JsError::new("invalid"))?;
        let split = bytes
            .len()
            .checked_sub(SIGNATURE_LEN)
            .ok_or_else(|| JsError::new("invalid"))?;
        let (body, signature) = bytes.split_at(split);
        let signature: [u8; SIGNATURE_LEN] =
            signature.try_into().map_err(|_| JsError::new("invalid"))?;
        self.client
            .add_revocations(&approdo_core::identity::SignedRevocationList {
                body: body.to_vec(),
                signature,
            })
            .map_err(js)
    }

    /// A client for a staff member, opening the credential file with its passphrase.
    /// Throws `credential` for a wrong passphrase or a damaged or foreign file. Only in the
    /// desk's build (feature `staff`); the person's page has no use for it.
    #[cfg(feature = "staff")]
    pub fn staff(
        org_hex: &str,
        credential_text: String,
        passphrase: String,
    ) -> Result<Approdo, JsError> {
        let credential_text = Zeroizing::new(credential_text);
        let passphrase = Zeroizing::new(passphrase);
        let org = map::parse_org(org_hex).map_err(js)?;
        let credential =
            StaffCredential::from_file(&credential_text, &passphrase, &org).map_err(js)?;
        let info = &credential.info;
        let label = Some(info.label.clone());
        let languages = info
            .languages
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect();
        let desks = info.desks.iter().map(|t| t.as_str().to_owned()).collect();
        Ok(Approdo {
            client: Client::staff(org, credential),
            label,
            languages,
            desks,
        })
    }

    // ----- queries -------------------------------------------------------------------

    /// `person`, `operator`, `interpreter` or `coordinator`.
    pub fn role(&self) -> String {
        map::role_code(self.client.role()).to_owned()
    }

    /// The staff member's certified label; `undefined` for the person.
    pub fn label(&self) -> Option<String> {
        self.label.clone()
    }

    /// The certified languages (staff); empty for the person.
    pub fn languages(&self) -> Vec<String> {
        self.languages.clone()
    }

    /// The certified desks (staff); empty for the person.
    pub fn desks(&self) -> Vec<String> {
        self.desks.clone()
    }

    /// The sessions this client takes part in, as lowercase hex.
    pub fn sessions(&self) -> Vec<String> {
        self.client.sessions().iter().map(|s| s.to_hex()).collect()
    }

    /// The safety code (`"1234 5678 9012 3456"`), only once it is ready.
    #[wasm_bindgen(js_name = safetyCode)]
    pub fn safety_code(&self, session: &str) -> Result<Option<String>, JsError> {
        let session = map::parse_session(session).map_err(js)?;
        Ok(match self.client.safety_code(&session) {
            Some(SafetyCode::Ready(code)) => Some(code),
            _ => None,
        })
    }

    // ----- actions -------------------------------------------------------------------

    /// The person asks for a conversation in `language`, optionally at a regional desk.
    #[wasm_bindgen(js_name = openSession)]
    pub fn open_session(&mut self, language: &str, region: Option<String>) -> Result<(), JsError> {
        let language = map::parse_tag(language).map_err(js)?;
        let region = region
            .as_deref()
            .map(map::parse_tag)
            .transpose()
            .map_err(js)?;
        self.client.open_session(language, region).map_err(js)
    }

    /// The person's page was reloaded: take the session back (hex id, hex token kept in the
    /// tab) with fresh end-to-end channels.
    pub fn rejoin(&mut self, session: &str, token: &str) -> Result<(), JsError> {
        let session = map::parse_session(session).map_err(js)?;
        let mut bytes = Zeroizing::new([0u8; approdo_core::limits::RESUME_TOKEN_LEN]);
        hex::decode_to_slice(token, &mut bytes[..]).map_err(|_| JsError::new("invalid"))?;
        let token = approdo_core::ids::ResumeToken(*bytes);
        self.client.rejoin(session, token).map_err(js)
    }

    /// The session's current resume token as hex, for the page to keep in the tab while it
    /// reloads (and nowhere else).
    #[wasm_bindgen(js_name = resumeToken)]
    pub fn resume_token(&self, session: &str) -> Result<Option<String>, JsError> {
        let session = map::parse_session(session).map_err(js)?;
        Ok(self.client.resume_token(&session).map(|t| hex::encode(t.0)))
    }

    /// The person signals, silently, that they cannot talk freely now.
    #[wasm_bindgen(js_name = signalNotSafe)]
    pub fn signal_not_safe(&mut self, session: &str) -> Result<(), JsError> {
        let session = map::parse_session(session).map_err(js)?;
        self.client.signal_not_safe(session).map_err(js)
    }

    /// The person's page tells the core which desk is the national one (the first of
    /// `/config.json`): its operators may receive the person's first words and intake.
    #[wasm_bindgen(js_name = setNationalDesk)]
    pub fn set_national_desk(&mut self, desk: &str) -> Result<(), JsError> {
        let desk = map::parse_tag(desk).map_err(js)?;
        self.client.set_national_desk(desk);
        Ok(())
    }

    /// Time passes (call about once a second): roster confirmations that never came
    /// become alarms.
    #[wasm_bindgen(js_name = handleTimeout)]
    pub fn handle_timeout(&mut self, now_unix_secs: f64) {
        self.client.handle_timeout(unix_secs(now_unix_secs));
    }

    /// The person says who is asking: `myself` or a worker's activator code.
    #[wasm_bindgen(js_name = setIntake)]
    pub fn set_intake(&mut self, seeker: &str) -> Result<(), JsError> {
        let seeker = map::parse_seeker(seeker).map_err(js)?;
        self.client.set_intake(seeker).map_err(js)
    }

    /// A staff member starts the login.
    pub fn login(&mut self) -> Result<(), JsError> {
        self.client.login().map_err(js)
    }

    /// Call on a new connection that replaces a dropped one.
    pub fn reconnected(&mut self) -> Result<(), JsError> {
        self.client.reconnected().map_err(js)
    }

    /// Queue a keep-alive (every 20 s when idle).
    pub fn ping(&mut self) {
        self.client.ping();
    }

    /// Send a message to everyone in the session.
    #[wasm_bindgen(js_name = sendText)]
    pub fn send_text(&mut self, session: &str, body: String) -> Result<(), JsError> {
        let body = Zeroizing::new(body);
        let session = map::parse_session(session).map_err(js)?;
        self.client.send_text(session, &body).map_err(js)
    }

    /// Send a message to one colleague only (staff).
    #[wasm_bindgen(js_name = sendPrivate)]
    pub fn send_private(&mut self, session: &str, to: u32, body: String) -> Result<(), JsError> {
        let body = Zeroizing::new(body);
        let session = map::parse_session(session).map_err(js)?;
        self.client
            .send_private(session, approdo_core::ids::ParticipantId(to), &body)
            .map_err(js)
    }

    /// An operator accepts a waiting session.
    pub fn accept(&mut self, session: &str) -> Result<(), JsError> {
        let session = map::parse_session(session).map_err(js)?;
        self.client.accept(session).map_err(js)
    }

    /// An operator asks for an interpreter of `language`.
    pub fn invite(&mut self, session: &str, language: &str) -> Result<(), JsError> {
        let session = map::parse_session(session).map_err(js)?;
        let language = map::parse_tag(language).map_err(js)?;
        self.client.invite(session, language).map_err(js)
    }

    /// An interpreter takes an invitation.
    pub fn join(&mut self, session: &str) -> Result<(), JsError> {
        let session = map::parse_session(session).map_err(js)?;
        self.client.join(session).map_err(js)
    }

    /// Leave a session that goes on without us (for the person: end it).
    pub fn leave(&mut self, session: &str) -> Result<(), JsError> {
        let session = map::parse_session(session).map_err(js)?;
        self.client.leave(session).map_err(js)
    }

    /// End the session for everyone.
    pub fn end(&mut self, session: &str) -> Result<(), JsError> {
        let session = map::parse_session(session).map_err(js)?;
        self.client.end(session).map_err(js)
    }

    /// An operator transfers the case to `desk`, with a note for the next operator.
    pub fn transfer(&mut self, session: &str, desk: &str, note: String) -> Result<(), JsError> {
        let note = Zeroizing::new(note);
        let session = map::parse_session(session).map_err(js)?;
        let desk = map::parse_tag(desk).map_err(js)?;
        self.client.transfer(session, desk, &note).map_err(js)
    }

    /// An operator closes the case with its observatory record (JSON, see the contract).
    #[wasm_bindgen(js_name = closeCase)]
    pub fn close_case(&mut self, session: &str, record: &str) -> Result<(), JsError> {
        let session = map::parse_session(session).map_err(js)?;
        let record = map::parse_record(record).map_err(js)?;
        self.client.close_case(session, record).map_err(js)
    }

    /// Enter the session's call with the page's SDP offer (all candidates gathered).
    #[wasm_bindgen(js_name = joinCall)]
    pub fn join_call(&mut self, session: &str, offer_sdp: &str) -> Result<(), JsError> {
        let session = map::parse_session(session).map_err(js)?;
        self.client.join_call(session, offer_sdp).map_err(js)
    }

    /// Stop or resume receiving the others' video (a weak connection keeps its audio).
    #[wasm_bindgen(js_name = receiveVideo)]
    pub fn receive_video(&mut self, session: &str, receive: bool) -> Result<(), JsError> {
        let session = map::parse_session(session).map_err(js)?;
        self.client.receive_video(session, receive).map_err(js)
    }

    /// The direct connection to the relay's SFU failed: ask for short-lived TURN
    /// credentials (answered by a `turn` event) to retry the call through TURN.
    #[wasm_bindgen(js_name = requestTurn)]
    pub fn request_turn(&mut self, session: &str) -> Result<(), JsError> {
        let session = map::parse_session(session).map_err(js)?;
        self.client.request_turn(session).map_err(js)
    }

    /// Leave the session's call; the chat goes on.
    #[wasm_bindgen(js_name = leaveCall)]
    pub fn leave_call(&mut self, session: &str) -> Result<(), JsError> {
        let session = map::parse_session(session).map_err(js)?;
        self.client.leave_call(session).map_err(js)
    }

    /// A coordinator asks for the observatory records.
    #[wasm_bindgen(js_name = queryObservatory)]
    pub fn query_observatory(&mut self) -> Result<(), JsError> {
        self.client.query_observatory().map_err(js)
    }

    // ----- I/O -----------------------------------------------------------------------

    /// Process one binary WebSocket message from the relay.
    pub fn handle(&mut self, bytes: &[u8], now_unix_secs: f64) -> Result<(), JsError> {
        self.client
            .handle_bytes(bytes, unix_secs(now_unix_secs))
            .map_err(js)
    }

    /// The next binary message to send, or `undefined`.
    #[wasm_bindgen(js_name = pollTransmit)]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.client.poll_transmit()
    }

    /// The next event as JSON text, or `undefined`.
    #[wasm_bindgen(js_name = pollEvent)]
    pub fn poll_event(&mut self) -> Option<JsString> {
        let event = self.client.poll_event()?;
        let text = map::event_to_json(&event);
        Some(JsString::from(text.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_from_javascript() {
        assert_eq!(unix_secs(1_763_812_345.9), 1_763_812_345);
        assert_eq!(unix_secs(-5.0), 0);
        assert_eq!(unix_secs(f64::NAN), 0);
        assert_eq!(unix_secs(f64::INFINITY), 0);
        assert_eq!(unix_secs(1e30), u64::MAX);
    }
}
