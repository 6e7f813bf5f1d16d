//! The ephemeral store: what the relay keeps for running sessions, crypto-shredded.
//!
//! sled does not erase: a removed or overwritten value stays in its segment files until
//! the segment is reused (spacejam/sled#1512). So every value is sealed with
//! XChaCha20-Poly1305 under a key that belongs to one session and lives only in this
//! process's memory. Ending the session removes its records and wipes the key; what
//! lingers in sled's files can then never be opened. At start-up the whole store
//! directory is deleted and created anew, so a crash leaves nothing behind either.
//!
//! Record keys are `session id (16) || participant (4, BE) || sequence (8, BE)`; the
//! session's metadata uses participant `u32::MAX`. The record key is the AEAD's associated
//! data, so a sealed value cannot be moved to another slot.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use approdo_core::ids::{ParticipantId, SessionId, fill_random};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::RelayError;

const NONCE_LEN: usize = 24;
const META_SLOT: u32 = u32::MAX;

/// A per-session store key. Lives only in memory; wiped when dropped; no `Clone`.
#[derive(Zeroize, ZeroizeOnDrop)]
struct SessionKey([u8; 32]);

impl SessionKey {
    fn random() -> Self {
        let mut k = SessionKey([0u8; 32]);
        fill_random(&mut k.0);
        k
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }
}

/// An event read back from the store: its sequence number and the frame, wiped on drop.
pub type StoredEvent = (u64, Zeroizing<Vec<u8>>);

/// The store. Not `Clone`: one owner (the switchboard) decides what lives and dies.
pub struct EphemeralStore {
    db: sled::Db,
    dir: PathBuf,
    keys: HashMap<SessionId, SessionKey>,
}

impl std::fmt::Debug for EphemeralStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EphemeralStore")
            .field("sessions", &self.keys.len())
            .finish_non_exhaustive()
    }
}

fn record_key(session: &SessionId, slot: u32, seq: u64) -> [u8; 28] {
    let mut k = [0u8; 28];
    k[..16].copy_from_slice(&session.0);
    k[16..20].copy_from_slice(&slot.to_be_bytes());
    k[20..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn slot_prefix(session: &SessionId, slot: u32) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..16].copy_from_slice(&session.0);
    k[16..].copy_from_slice(&slot.to_be_bytes());
    k
}

impl EphemeralStore {
    /// Open the store at `dir`, first deleting whatever a previous run (or a crash) left.
    pub fn open_wiped(dir: &Path) -> Result<Self, RelayError> {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(RelayError::Store(format!("cannot wipe the store: {e}"))),
        }
        std::fs::create_dir_all(dir)?;
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(Some(1000))
            .open()?;
        Ok(EphemeralStore {
            db,
            dir: dir.to_owned(),
            keys: HashMap::new(),
        })
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Create the key of a new session.
    pub fn begin(&mut self, session: SessionId) {
        self.keys.entry(session).or_insert_with(SessionKey::random);
    }

    fn seal(&self, session: &SessionId, key: &[u8], plain: &[u8]) -> Option<Vec<u8>> {
        let sk = self.keys.get(session)?;
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        let ct = sk
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: key,
                },
            )
            .ok()?;
        let mut v = Vec::with_capacity(NONCE_LEN + ct.len());
        v.extend_from_slice(&nonce);
        v.extend_from_slice(&ct);
        Some(v)
    }

    fn open(&self, session: &SessionId, key: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let sk = self.keys.get(session)?;
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        sk.cipher()
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: key })
            .ok()
            .map(Zeroizing::new)
    }

    /// Keep an event for a participant who is away. Fails if the session has no key.
    pub fn put_event(
        &self,
        session: &SessionId,
        who: ParticipantId,
        seq: u64,
        frame: &[u8],
    ) -> Result<(), RelayError> {
        let key = record_key(session, who.0, seq);
        let sealed = self
            .seal(session, &key, frame)
            .ok_or_else(|| RelayError::Store("no key for this session".into()))?;
        self.db.insert(key, sealed)?;
        Ok(())
    }

    /// Take (read and remove) every event kept for a participant, in order.
    pub fn take_events(
        &self,
        session: &SessionId,
        who: ParticipantId,
    ) -> Result<Vec<StoredEvent>, RelayError> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix(slot_prefix(session, who.0)) {
            let (k, v) = item?;
            let seq = u64::from_be_bytes(k[20..28].try_into().expect("28-byte keys"));
            if let Some(plain) = self.open(session, &k, &v) {
                out.push((seq, plain));
            }
            self.db.remove(k)?;
        }
        Ok(out)
    }

    /// Forget the events kept for a participant who will not come back.
    pub fn drop_events(&self, session: &SessionId, who: ParticipantId) -> Result<(), RelayError> {
        for item in self.db.scan_prefix(slot_prefix(session, who.0)).keys() {
            self.db.remove(item?)?;
        }
        Ok(())
    }

    /// Keep (replace) a session's sealed metadata.
    pub fn put_meta(&self, session: &SessionId, meta: &[u8]) -> Result<(), RelayError> {
        let key = record_key(session, META_SLOT, 0);
        let sealed = self
            .seal(session, &key, meta)
            .ok_or_else(|| RelayError::Store("no key for this session".into()))?;
        self.db.insert(key, sealed)?;
        Ok(())
    }

    /// End a session: remove every record and wipe its key. Afterwards nothing the
    /// session left in sled's files can be decrypted.
    pub fn end(&mut self, session: &SessionId) -> Result<(), RelayError> {
        let keys: Vec<_> = self
            .db
            .scan_prefix(session.0)
            .keys()
            .collect::<Result<_, _>>()?;
        for k in keys {
            self.db.remove(k)?;
        }
        // Dropping the key runs its zeroizing destructor.
        self.keys.remove(session);
        Ok(())
    }

    /// Whether a session still has a key.
    pub fn has_key(&self, session: &SessionId) -> bool {
        self.keys.contains_key(session)
    }

    /// Records currently held (all sessions).
    pub fn record_count(&self) -> usize {
        self.db.len()
    }

    /// The raw sealed values, exactly as sled holds them: for tests that prove nothing
    /// readable is stored.
    pub fn raw_values(&self) -> Vec<Vec<u8>> {
        self.db
            .iter()
            .values()
            .filter_map(|v| v.ok().map(|v| v.to_vec()))
            .collect()
    }

    /// Write everything to disk now (tests inspect the files; sled flushes every second).
    pub fn flush(&self) -> Result<(), RelayError> {
        self.db.flush()?;
        Ok(())
    }
}

/// Count the records in a store directory left by a relay that is not running (for the
/// crash test and for operators checking a disk).
pub fn count_records_offline(dir: &Path) -> Result<usize, RelayError> {
    let db = sled::Config::new().path(dir).open()?;
    Ok(db.len())
}

/// The raw values in a store directory left by a relay that is not running.
pub fn raw_values_offline(dir: &Path) -> Result<Vec<Vec<u8>>, RelayError> {
    let db = sled::Config::new().path(dir).open()?;
    Ok(db
        .iter()
        .values()
        .filter_map(|v| v.ok().map(|v| v.to_vec()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_records_round_trip_and_vanish_with_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = EphemeralStore::open_wiped(&dir.path().join("s")).expect("open");
        let s = SessionId::random();
        store.begin(s);
        store
            .put_event(&s, ParticipantId(1), 1, b"canary-canary")
            .expect("put");
        store
            .put_event(&s, ParticipantId(1), 2, b"second")
            .expect("put");
        assert!(
            store
                .raw_values()
                .iter()
                .all(|v| !v.windows(6).any(|w| w == b"canary"))
        );
        let back = store.take_events(&s, ParticipantId(1)).expect("take");
        assert_eq!(back.len(), 2);
        assert_eq!(&back[0].1[..], b"canary-canary");
        store.put_event(&s, ParticipantId(2), 1, b"x").expect("put");
        store.end(&s).expect("end");
        assert_eq!(store.record_count(), 0);
        assert!(!store.has_key(&s));
        assert!(store.put_event(&s, ParticipantId(2), 2, b"x").is_err());
    }
}
