//! The observatory store: anonymous case records, the only data that outlives a session.
//!
//! Kept in its own sled database, apart from the ephemeral session store and never wiped.
//! A record holds the observatory's fixed indicators and the month it was filed in; its
//! key is random, so nothing links it to a session, a participant or a finer time.

use std::path::Path;

use approdo_core::ids::fill_random;
use approdo_core::observatory::{ObservatoryRecord, StoredRecord};

use crate::error::RelayError;

/// Most records returned to one query.
pub const MAX_RECORDS_RETURNED: usize = 10_000;

/// The observatory database.
pub struct Observatory {
    db: sled::Db,
    dir: std::path::PathBuf,
}

impl std::fmt::Debug for Observatory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observatory")
            .field("records", &self.db.len())
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
    /// Open (or create) the observatory at `dir`. Never wiped.
    pub fn open(dir: &Path) -> Result<Self, RelayError> {
        std::fs::create_dir_all(dir)?;
        Ok(Observatory {
            db: sled::Config::new().path(dir).open()?,
            dir: dir.to_owned(),
        })
    }

    /// File a record for the month of `now_unix`, and write it to disk before returning.
    pub fn file(&self, record: &ObservatoryRecord, now_unix: u64) -> Result<(), RelayError> {
        let stored = StoredRecord {
            month: month_of(now_unix),
            record: record.clone(),
        };
        let value = postcard::to_allocvec(&stored).map_err(|e| RelayError::Store(e.to_string()))?;
        let mut key = [0u8; 16];
        fill_random(&mut key);
        self.db.insert(key, value)?;
        self.db.flush()?;
        Ok(())
    }

    /// Every record (at most [`MAX_RECORDS_RETURNED`]).
    pub fn records(&self) -> Vec<StoredRecord> {
        self.db
            .iter()
            .values()
            .filter_map(|v| v.ok())
            .filter_map(|v| postcard::from_bytes(&v).ok())
            .take(MAX_RECORDS_RETURNED)
            .collect()
    }

    /// Where it lives.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many records there are.
    pub fn len(&self) -> usize {
        self.db.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.db.is_empty()
    }
}

/// Read the records of an observatory directory while no relay holds it.
pub fn records_offline(dir: &Path) -> Result<Vec<StoredRecord>, RelayError> {
    Ok(Observatory::open(dir)?.records())
}

#[cfg(test)]
mod tests {
    use super::month_of;

    #[test]
    fn months() {
        assert_eq!(month_of(0), "1970-01");
        assert_eq!(month_of(951_782_400), "2000-02"); // 2000-02-29
        assert_eq!(month_of(1_795_000_000), "2026-11");
    }
}
