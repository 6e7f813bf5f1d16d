//! The ephemeral store: what the relay keeps for running sessions, crypto-shredded.
//!
//! sled does not erase: a removed or overwritten value stays in its segment files until
//! the segment is reused (spacejam/sled#1512). So every value is sealed with
//! XChaCha20-Poly1305 under a key that belongs to one session and lives only in this
//! process's memory. Ending the session removes its records and wipes the key; what
//! lingers in sled's files can then never be opened. At start-up the whole store
//! directory is deleted and created anew, so a crash leaves nothing behind either.
//!
//! Record keys carry no identifier in clear:
//! `HMAC(process key, session id)[..16] || HMAC(session key, "p" || participant)[..8] ||
//! HMAC(session key, "r" || participant || sequence)[..16]` (HMAC-SHA256, numbers
//! big-endian). The process key is random and lives only in memory, so a session's records
//! still share a prefix the store can scan, but nobody without this process's memory can
//! tell which session (or participant, or sequence) a record belongs to; once the session
//! key is gone, not even that. The session's metadata uses participant `u32::MAX`. The
//! sealed value is `sequence (8, BE) || frame` (the sequence orders `take_events`), and the
//! record key is the AEAD's associated data, so a sealed value cannot be moved to another
//! slot.
//!
//! A clean shutdown ([`EphemeralStore::wipe`]) removes every record and the directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use approdo_core::ids::{ParticipantId, SessionId, fill_random};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::RelayError;

const NONCE_LEN: usize = 24;
const META_SLOT: u32 = u32::MAX;
/// Bytes of the keyed session part of a record key.
const SESSION_PART: usize = 16;
/// Bytes of the keyed participant part of a record key.
const PARTICIPANT_PART: usize = 8;
/// Bytes of the keyed (participant, sequence) part of a record key.
const RECORD_PART: usize = 16;
/// Length of a record key.
const RECORD_KEY_LEN: usize = SESSION_PART + PARTICIPANT_PART + RECORD_PART;
/// Length of the sequence number at the start of a sealed value's plaintext.
const SEQ_LEN: usize = 8;

/// HMAC-SHA256 of `parts` under `key`, truncated into `out`.
fn keyed_hash(key: &[u8; 32], parts: &[&[u8]], out: &mut [u8]) {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        return; // HMAC takes keys of any length; unreachable
    };
    for p in parts {
        mac.update(p);
    }
    let full = mac.finalize().into_bytes();
    let n = out.len().min(full.len());
    out[..n].copy_from_slice(&full[..n]);
}

/// The key that hides session ids in record keys. Random per process, only in memory.
#[derive(Zeroize, ZeroizeOnDrop)]
struct ProcessKey([u8; 32]);

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
    process_key: ProcessKey,
    wiped: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for EphemeralStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EphemeralStore")
            .field("sessions", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl EphemeralStore {
    fn session_part(&self, session: &SessionId) -> [u8; SESSION_PART] {
        let mut out = [0u8; SESSION_PART];
        keyed_hash(&self.process_key.0, &[b"s", &session.0], &mut out);
        out
    }

    fn slot_prefix(
        &self,
        session: &SessionId,
        sk: &SessionKey,
        slot: u32,
    ) -> [u8; SESSION_PART + PARTICIPANT_PART] {
        let mut k = [0u8; SESSION_PART + PARTICIPANT_PART];
        k[..SESSION_PART].copy_from_slice(&self.session_part(session));
        keyed_hash(&sk.0, &[b"p", &slot.to_be_bytes()], &mut k[SESSION_PART..]);
        k
    }

    fn record_key(
        &self,
        session: &SessionId,
        sk: &SessionKey,
        slot: u32,
        seq: u64,
    ) -> [u8; RECORD_KEY_LEN] {
        let mut k = [0u8; RECORD_KEY_LEN];
        k[..SESSION_PART + PARTICIPANT_PART].copy_from_slice(&self.slot_prefix(session, sk, slot));
        keyed_hash(
            &sk.0,
            &[b"r", &slot.to_be_bytes(), &seq.to_be_bytes()],
            &mut k[SESSION_PART + PARTICIPANT_PART..],
        );
        k
    }
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
        let mut process_key = ProcessKey([0u8; 32]);
        fill_random(&mut process_key.0);
        Ok(EphemeralStore {
            db,
            dir: dir.to_owned(),
            keys: HashMap::new(),
            process_key,
            wiped: false.into(),
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

    fn seal(sk: &SessionKey, key: &[u8], plain: &[u8]) -> Option<Vec<u8>> {
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

    fn open(sk: &SessionKey, key: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        sk.cipher()
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: key })
            .ok()
            .map(Zeroizing::new)
    }

    /// Seal `seq || plain` under the session's key into the record `(slot, seq)`.
    fn put(
        &self,
        session: &SessionId,
        slot: u32,
        seq: u64,
        plain: &[u8],
    ) -> Result<(), RelayError> {
        if self.wiped.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(RelayError::Store("the store is shut down".into()));
        }
        let sk = self
            .keys
            .get(session)
            .ok_or_else(|| RelayError::Store("no key for this session".into()))?;
        let key = self.record_key(session, sk, slot, seq);
        let mut framed = Zeroizing::new(Vec::with_capacity(SEQ_LEN + plain.len()));
        framed.extend_from_slice(&seq.to_be_bytes());
        framed.extend_from_slice(plain);
        let sealed = Self::seal(sk, &key, &framed)
            .ok_or_else(|| RelayError::Store("sealing failed".into()))?;
        self.db.insert(key, sealed)?;
        Ok(())
    }

    /// Keep an event for a participant who is away. Fails if the session has no key.
    pub fn put_event(
        &self,
        session: &SessionId,
        who: ParticipantId,
        seq: u64,
        frame: &[u8],
    ) -> Result<(), RelayError> {
        self.put(session, who.0, seq, frame)
    }

    /// Take (read and remove) every event kept for a participant, in sequence order.
    pub fn take_events(
        &self,
        session: &SessionId,
        who: ParticipantId,
    ) -> Result<Vec<StoredEvent>, RelayError> {
        let Some(sk) = self.keys.get(session) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in self.db.scan_prefix(self.slot_prefix(session, sk, who.0)) {
            let (k, v) = item?;
            if let Some(plain) = Self::open(sk, &k, &v)
                && let Some((seq, frame)) = plain.split_first_chunk::<SEQ_LEN>()
            {
                out.push((u64::from_be_bytes(*seq), Zeroizing::new(frame.to_vec())));
            }
            self.db.remove(k)?;
        }
        // Record keys are keyed hashes, so sled's order is not the sequence order.
        out.sort_by_key(|(seq, _)| *seq);
        Ok(out)
    }

    /// Forget the events kept for a participant who will not come back.
    pub fn drop_events(&self, session: &SessionId, who: ParticipantId) -> Result<(), RelayError> {
        let Some(sk) = self.keys.get(session) else {
            return Ok(());
        };
        for item in self
            .db
            .scan_prefix(self.slot_prefix(session, sk, who.0))
            .keys()
        {
            self.db.remove(item?)?;
        }
        Ok(())
    }

    /// Keep (replace) a session's sealed metadata.
    pub fn put_meta(&self, session: &SessionId, meta: &[u8]) -> Result<(), RelayError> {
        self.put(session, META_SLOT, 0, meta)
    }

    /// End a session: remove every record and wipe its key. Afterwards nothing the
    /// session left in sled's files can be decrypted.
    pub fn end(&mut self, session: &SessionId) -> Result<(), RelayError> {
        let keys: Vec<_> = self
            .db
            .scan_prefix(self.session_part(session))
            .keys()
            .collect::<Result<_, _>>()?;
        for k in keys {
            self.db.remove(k)?;
        }
        // Dropping the key runs its zeroizing destructor.
        self.keys.remove(session);
        Ok(())
    }

    /// Clean shutdown: remove every record, then the store's directory with sled's files
    /// (removed records would otherwise linger in them until the next start). Later writes
    /// fail; the session keys die with the process.
    pub fn wipe(&self) -> Result<(), RelayError> {
        self.wiped.store(true, std::sync::atomic::Ordering::SeqCst);
        self.db.clear()?;
        self.db.flush()?;
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RelayError::Store(format!("cannot wipe the store: {e}"))),
        }
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

/// File system types that keep everything in memory (and, without swap, never on disk).
const RAM_FILE_SYSTEMS: &[&str] = &["tmpfs", "ramfs"];

/// Whether `dir` lies on a RAM file system, from `/proc/self/mountinfo`; `None` when that
/// cannot be told (not Linux, or unreadable). The relay warns at start when it is not: sled
/// does not erase, so on a disk removed records linger until their blocks are reused.
pub fn on_ram_fs(dir: &Path) -> Option<bool> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    // The directory may not exist yet: judge by its nearest existing ancestor.
    let mut probe = dir.to_owned();
    let path = loop {
        if let Ok(p) = probe.canonicalize() {
            break p;
        }
        if !probe.pop() || probe.as_os_str().is_empty() {
            probe = std::env::current_dir().ok()?;
            break probe.canonicalize().ok()?;
        }
    };
    let fs = fs_type_of(&mountinfo, &path)?;
    Some(RAM_FILE_SYSTEMS.contains(&fs.as_str()))
}

/// The file system type of the mount holding `path` (the longest mount point that is a
/// prefix of it, the last one listed when mounts are stacked).
fn fs_type_of(mountinfo: &str, path: &Path) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for line in mountinfo.lines() {
        // Fields: id parent major:minor root mount-point options [optional...] - type ...
        let mut fields = line.split(' ');
        let Some(mount_point) = fields.nth(4) else {
            continue;
        };
        let Some(fs_type) = line
            .split_once(" - ")
            .and_then(|(_, rest)| rest.split(' ').next())
        else {
            continue;
        };
        let mount_point = unescape_mount_path(mount_point);
        let mount = Path::new(&mount_point);
        if path.starts_with(mount) {
            let depth = mount.components().count();
            if best.as_ref().is_none_or(|(d, _)| depth >= *d) {
                best = Some((depth, fs_type.to_owned()));
            }
        }
    }
    best.map(|(_, t)| t)
}

/// mountinfo escapes space, tab, newline and backslash as three octal digits.
fn unescape_mount_path(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && let Some(code) = b
                .get(i + 1..i + 4)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        {
            out.push(code);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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

    #[test]
    fn record_keys_and_values_hold_no_identifier_in_clear() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = EphemeralStore::open_wiped(&dir.path().join("s")).expect("open");
        let s = SessionId([0xA5; 16]);
        store.begin(s);
        for seq in [3u64, 1, 2] {
            store
                .put_event(&s, ParticipantId(0x0102_0304), seq, b"frame")
                .expect("put");
        }
        store.put_meta(&s, b"meta").expect("meta");
        for item in store.db.iter() {
            let (k, v) = item.expect("record");
            for bytes in [&k[..], &v[..]] {
                assert!(!bytes.windows(4).any(|w| w == [0xA5; 4]), "session id");
                assert!(!bytes.windows(4).any(|w| w == [1, 2, 3, 4]), "participant");
            }
        }
        let back = store
            .take_events(&s, ParticipantId(0x0102_0304))
            .expect("take");
        let seqs: Vec<u64> = back.iter().map(|(q, _)| *q).collect();
        assert_eq!(seqs, vec![1, 2, 3], "in sequence order");
        store.end(&s).expect("end");
        assert_eq!(store.record_count(), 0);
    }

    #[test]
    fn wipe_leaves_no_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s");
        let mut store = EphemeralStore::open_wiped(&path).expect("open");
        let s = SessionId::random();
        store.begin(s);
        store.put_event(&s, ParticipantId(1), 1, b"x").expect("put");
        store.flush().expect("flush");
        store.wipe().expect("wipe");
        assert!(!path.exists());
        assert!(store.put_event(&s, ParticipantId(1), 2, b"x").is_err());
    }

    #[test]
    fn mountinfo_tells_ram_file_systems() {
        let info = "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    30 22 0:25 / /run rw,nosuid shared:5 - tmpfs tmpfs rw\n\
                    31 30 0:26 / /run/my\\040store rw - ramfs ramfs rw\n";
        assert_eq!(
            fs_type_of(info, Path::new("/run/approdo/store")).as_deref(),
            Some("tmpfs")
        );
        assert_eq!(
            fs_type_of(info, Path::new("/var/lib/approdo")).as_deref(),
            Some("ext4")
        );
        assert_eq!(
            fs_type_of(info, Path::new("/run/my store/x")).as_deref(),
            Some("ramfs")
        );
        assert_eq!(
            fs_type_of(info, Path::new("/runner")).as_deref(),
            Some("ext4"),
            "a path prefix is not a mount prefix"
        );
    }
}
