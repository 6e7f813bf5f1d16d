//! The observatory store: anonymous case records, the only data that outlives a session.
//!
//! Kept apart from the ephemeral session store and never wiped. A record holds the
//! observatory's fixed indicators and the month it was filed in, nothing else. Neither its
//! content nor its place may link it to a session: records live in one file per month,
//! `records-YYYY-MM.bin`, which every filing rewrites whole (to a temporary file, synced,
//! then renamed over the old one) with the month's records in canonical order — sorted by
//! their encoded bytes. The files therefore hold no trace of the order or time of filing:
//! the same records filed in any order give byte-identical files.
//!
//! File format: a sequence of records, each `length (u32, big-endian) || postcard
//! (StoredRecord)`, in ascending byte order of the encodings; duplicates are kept.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use approdo_core::observatory::{ObservatoryRecord, StoredRecord};

use crate::error::RelayError;

mod tables;
pub mod tally;
pub use tables::{MAX_MONTHS, aggregate, aggregate_counted};

/// Most records returned to one query.
pub const MAX_RECORDS_RETURNED: usize = 10_000;

/// Largest encoded record accepted when reading a month file (a record is ~100 bytes; a
/// larger length means the file is damaged).
const MAX_RECORD_LEN: usize = 64 * 1024;

/// Bytes of a record's length prefix.
const LEN_PREFIX: usize = 4;

const FILE_PREFIX: &str = "records-";
const FILE_SUFFIX: &str = ".bin";
const TEMP_SUFFIX: &str = ".tmp";

/// The observatory.
pub struct Observatory {
    dir: PathBuf,
    count: AtomicUsize,
}

impl std::fmt::Debug for Observatory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observatory")
            .field("records", &self.len())
            .finish()
    }
}

/// `YYYY-MM` for a Unix time (proleptic Gregorian calendar, UTC).
pub fn month_of(unix_secs: u64) -> String {
    // Days since 1970-01-01 to civil date (Howard Hinnant's algorithm).
    let days = (unix_secs / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}")
}

impl Observatory {
    /// Open (or create) the observatory at `dir`. Never wiped. Records left by an older
    /// relay in a sled database there are moved into month files.
    pub fn open(dir: &Path) -> Result<Self, RelayError> {
        std::fs::create_dir_all(dir)?;
        let obs = Observatory {
            dir: dir.to_owned(),
            count: AtomicUsize::new(0),
        };
        obs.migrate_sled()?;
        let mut count = 0;
        for month in obs.months()? {
            count += read_month_file(&obs.month_path(&month))?.len();
        }
        obs.count.store(count, Ordering::SeqCst);
        Ok(obs)
    }

    fn month_path(&self, month: &str) -> PathBuf {
        self.dir.join(format!("{FILE_PREFIX}{month}{FILE_SUFFIX}"))
    }

    /// The months that have a file, oldest first. Leftover temporary files (a crash during
    /// a rewrite; the old file is intact) are removed.
    fn months(&self) -> Result<Vec<String>, RelayError> {
        let mut months = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(TEMP_SUFFIX) {
                let _ = std::fs::remove_file(self.dir.join(name));
                continue;
            }
            if let Some(month) = name
                .strip_prefix(FILE_PREFIX)
                .and_then(|n| n.strip_suffix(FILE_SUFFIX))
                .filter(|m| is_month(m))
            {
                months.push(month.to_owned());
            }
        }
        months.sort();
        Ok(months)
    }

    /// File a record for the month of `now_unix`, and write it to disk before returning.
    pub fn file(&self, record: &ObservatoryRecord, now_unix: u64) -> Result<(), RelayError> {
        let stored = StoredRecord {
            month: month_of(now_unix),
            record: record.clone(),
        };
        let encoded =
            postcard::to_allocvec(&stored).map_err(|e| RelayError::Store(e.to_string()))?;
        let path = self.month_path(&stored.month);
        let mut records = read_month_file(&path)?;
        records.push(encoded);
        write_month_file(&path, records)?;
        self.count.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Every record (at most [`MAX_RECORDS_RETURNED`]), by month, in canonical order.
    pub fn records(&self) -> Vec<StoredRecord> {
        let mut out = Vec::new();
        for month in self.months().unwrap_or_default() {
            let Ok(encoded) = read_month_file(&self.month_path(&month)) else {
                continue;
            };
            out.extend(
                encoded
                    .iter()
                    .filter_map(|e| postcard::from_bytes::<StoredRecord>(e).ok()),
            );
            if out.len() >= MAX_RECORDS_RETURNED {
                out.truncate(MAX_RECORDS_RETURNED);
                break;
            }
        }
        out
    }

    /// Every record of the `max_months` most recent months that have records, oldest
    /// month first: what the coordinator's tables count (never sent as such).
    pub fn recent_records(&self, max_months: usize) -> Vec<StoredRecord> {
        let months = self.months().unwrap_or_default();
        let first = months.len().saturating_sub(max_months);
        months[first..]
            .iter()
            .filter_map(|m| read_month_file(&self.month_path(m)).ok())
            .flatten()
            .filter_map(|e| postcard::from_bytes::<StoredRecord>(&e).ok())
            .collect()
    }

    /// Where it lives.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many records there are.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An observatory directory from before month files was a sled database, whose
    /// log-structured files keep records in filing order: move its records into month
    /// files, then delete its files.
    fn migrate_sled(&self) -> Result<(), RelayError> {
        if !self.dir.join("conf").exists() || !self.dir.join("db").exists() {
            return Ok(());
        }
        let mut by_month: std::collections::BTreeMap<String, Vec<Vec<u8>>> = Default::default();
        {
            let db = sled::Config::new().path(&self.dir).open()?;
            for value in db.iter().values() {
                let value = value?;
                if let Ok(stored) = postcard::from_bytes::<StoredRecord>(&value)
                    && is_month(&stored.month)
                {
                    by_month
                        .entry(stored.month)
                        .or_default()
                        .push(value.to_vec());
                }
            }
        }
        for (month, mut records) in by_month {
            let path = self.month_path(&month);
            records.extend(read_month_file(&path)?);
            write_month_file(&path, records)?;
        }
        for name in ["conf", "db", "blobs", "snap"] {
            let p = self.dir.join(name);
            let _ = std::fs::remove_file(&p);
            let _ = std::fs::remove_dir_all(&p);
        }
        for entry in std::fs::read_dir(&self.dir)?.flatten() {
            if entry.file_name().to_string_lossy().starts_with("snap.") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        tracing::info!("observatory moved from its sled database into month files");
        Ok(())
    }
}

/// Whether `m` is `YYYY-MM` (the only names month files take).
fn is_month(m: &str) -> bool {
    let b = m.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || c.is_ascii_digit())
}

/// The encoded records of a month file (none when it does not exist).
fn read_month_file(path: &Path) -> Result<Vec<Vec<u8>>, RelayError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let damaged = || RelayError::Store(format!("damaged observatory file {}", path.display()));
    let mut records = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<LEN_PREFIX>().ok_or_else(damaged)?;
        let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| damaged())?;
        if len > MAX_RECORD_LEN || len > tail.len() {
            return Err(damaged());
        }
        let (record, tail) = tail.split_at(len);
        records.push(record.to_vec());
        rest = tail;
    }
    Ok(records)
}

/// Write a month file in canonical order, atomically: a temporary file, synced, renamed
/// over the old one, and the directory synced.
fn write_month_file(path: &Path, mut records: Vec<Vec<u8>>) -> Result<(), RelayError> {
    use std::io::Write;
    records.sort();
    let mut bytes = Vec::new();
    for r in &records {
        let len =
            u32::try_from(r.len()).map_err(|_| RelayError::Store("record too large".into()))?;
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(r);
    }
    let mut temp = path.as_os_str().to_owned();
    temp.push(TEMP_SUFFIX);
    let temp = PathBuf::from(temp);
    {
        let mut f = std::fs::File::create(&temp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&temp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Read the records of an observatory directory while no relay holds it.
pub fn records_offline(dir: &Path) -> Result<Vec<StoredRecord>, RelayError> {
    Ok(Observatory::open(dir)?.records())
}

#[cfg(test)]
mod tests {
    use super::*;
    use approdo_core::observatory::{Activator, AgeBand, Exploitation, Gender, Outcome};

    #[test]
    fn months() {
        assert_eq!(month_of(0), "1970-01");
        assert_eq!(month_of(951_782_400), "2000-02"); // 2000-02-29
        assert_eq!(month_of(1_795_000_000), "2026-11");
    }

    fn record(gender: Gender, age: AgeBand) -> ObservatoryRecord {
        ObservatoryRecord {
            gender,
            age,
            territory_emerged: None,
            territory_exploitation: None,
            exploitation: vec![Exploitation::LabourConstruction],
            activator: Activator::Person,
            outcome: Outcome::Counselling,
        }
    }

    #[test]
    fn filing_order_leaves_no_trace() {
        let a = record(Gender::Female, AgeBand::From18To25);
        let b = record(Gender::Male, AgeBand::Under18);
        let c = record(Gender::Female, AgeBand::Under18);
        let month = 1_795_000_000;
        let mut files = Vec::new();
        for order in [[&a, &b, &c], [&c, &a, &b], [&b, &c, &a]] {
            let dir = tempfile::tempdir().expect("tempdir");
            let obs = Observatory::open(dir.path()).expect("open");
            for (i, r) in order.iter().enumerate() {
                // Different seconds of the same month.
                obs.file(r, month + i as u64 * 3600).expect("file");
            }
            assert_eq!(obs.len(), 3);
            let mut names: Vec<_> = std::fs::read_dir(dir.path())
                .expect("dir")
                .flatten()
                .map(|e| e.file_name())
                .collect();
            names.sort();
            assert_eq!(names, vec!["records-2026-11.bin"]);
            files.push(std::fs::read(dir.path().join("records-2026-11.bin")).expect("read"));
            let reopened = Observatory::open(dir.path()).expect("reopen");
            assert_eq!(reopened.len(), 3);
            assert_eq!(reopened.records().len(), 3);
        }
        assert_eq!(files[0], files[1]);
        assert_eq!(files[1], files[2]);
    }

    #[test]
    fn a_damaged_file_is_refused_not_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("records-2026-11.bin");
        std::fs::write(&path, [0, 0, 0, 200, 1, 2]).expect("write");
        assert!(Observatory::open(dir.path()).is_err());
    }
}
