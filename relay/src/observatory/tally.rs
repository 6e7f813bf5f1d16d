//! A node's records as counts: what one relay node tells another when a coordinator asks
//! for the observatory figures of the whole hotline (`bus::observatory`).
//!
//! Identical records are grouped into one entry with a count, so the message grows with the
//! number of different records, not the number of cases; the asking node adds every node's
//! counts and only then suppresses small cells (`tables`), so a cell suppressed on each
//! node alone may be disclosed once the nodes' counts are added, and a cell small in all
//! is never disclosed because one node's share of it was. Records stay records of the
//! observatory (a month and the fixed indicators): the bus never carries a table cell the
//! coordinator could not have been shown, and never anything of a session.
//!
//! Encoding: postcard `Vec<(StoredRecord, u64)>`, entries in ascending order of the
//! record's postcard bytes, each record once, each count at least 1.

use std::collections::BTreeMap;

use approdo_core::observatory::StoredRecord;

/// Records with how many times each was filed.
pub type Counted = Vec<(StoredRecord, u64)>;

/// Largest tally one node sends another (the bus's message limit, with room to spare):
/// at about 30 bytes an entry, some 15,000 different records over the months counted.
pub const MAX_TALLY_BYTES: usize = 448 * 1024;

/// Most cases one tally may count; more is a damaged or hostile message (a national hotline
/// files thousands of cases a year).
pub const MAX_TALLY_CASES: u64 = 1 << 24;

/// Why a tally from another node was not counted.
#[derive(Debug, PartialEq, Eq)]
pub enum TallyError {
    /// Longer than [`MAX_TALLY_BYTES`].
    TooLarge,
    /// Not a tally (bad encoding, bad month, a count of 0, an entry out of order or
    /// repeated, or more than [`MAX_TALLY_CASES`] cases).
    Malformed,
}

/// Group `records` (any order, repeats kept) into counts, in canonical order.
pub fn tally(records: &[StoredRecord]) -> Counted {
    let mut grouped: BTreeMap<Vec<u8>, (&StoredRecord, u64)> = BTreeMap::new();
    for r in records {
        let Ok(key) = postcard::to_allocvec(r) else {
            continue;
        };
        grouped.entry(key).or_insert((r, 0)).1 += 1;
    }
    grouped.into_values().map(|(r, n)| (r.clone(), n)).collect()
}

/// The bytes of `counted` for the bus; `None` when over [`MAX_TALLY_BYTES`].
pub fn encode(counted: &Counted) -> Option<Vec<u8>> {
    postcard::to_allocvec(counted)
        .ok()
        .filter(|b| b.len() <= MAX_TALLY_BYTES)
}

/// Read a tally another node sent, checking everything [`encode`] of a [`tally`] promises.
pub fn decode(bytes: &[u8]) -> Result<Counted, TallyError> {
    if bytes.len() > MAX_TALLY_BYTES {
        return Err(TallyError::TooLarge);
    }
    let counted: Counted = postcard::from_bytes(bytes).map_err(|_| TallyError::Malformed)?;
    let mut cases: u64 = 0;
    let mut last: Option<Vec<u8>> = None;
    for (record, n) in &counted {
        let key = postcard::to_allocvec(record).map_err(|_| TallyError::Malformed)?;
        if *n == 0 || !super::is_month(&record.month) || last.as_ref().is_some_and(|l| *l >= key) {
            return Err(TallyError::Malformed);
        }
        cases = cases.saturating_add(*n);
        last = Some(key);
    }
    if cases > MAX_TALLY_CASES {
        return Err(TallyError::Malformed);
    }
    Ok(counted)
}

/// Add the tallies of several nodes into one (counts of the same record summed).
pub fn merge(tallies: impl IntoIterator<Item = Counted>) -> Counted {
    let mut grouped: BTreeMap<Vec<u8>, (StoredRecord, u64)> = BTreeMap::new();
    for (record, n) in tallies.into_iter().flatten() {
        let Ok(key) = postcard::to_allocvec(&record) else {
            continue;
        };
        let entry = grouped.entry(key).or_insert((record, 0));
        entry.1 = entry.1.saturating_add(n);
    }
    grouped.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use approdo_core::observatory::{
        Activator, AgeBand, Exploitation, Gender, ObservatoryRecord, Outcome,
    };

    fn record(month: &str, gender: Gender) -> StoredRecord {
        StoredRecord {
            month: month.to_owned(),
            record: ObservatoryRecord {
                gender,
                age: AgeBand::From18To25,
                territory_emerged: None,
                territory_exploitation: None,
                exploitation: vec![Exploitation::Begging],
                activator: Activator::Person,
                outcome: Outcome::Counselling,
            },
        }
    }

    #[test]
    fn identical_records_become_one_count_and_read_back() {
        let a = record("2026-11", Gender::Female);
        let b = record("2026-12", Gender::Male);
        let counted = tally(&[b.clone(), a.clone(), b.clone()]);
        assert_eq!(counted.len(), 2);
        assert_eq!(counted.iter().map(|(_, n)| n).sum::<u64>(), 3);
        let bytes = encode(&counted).expect("small");
        assert_eq!(decode(&bytes), Ok(counted.clone()));
        let merged = merge([counted.clone(), tally(&[a])]);
        let count_of = |r: &StoredRecord| merged.iter().find(|(x, _)| x == r).map(|(_, n)| *n);
        assert_eq!(count_of(&b), Some(2));
        assert_eq!(count_of(&record("2026-11", Gender::Female)), Some(2));
    }

    #[test]
    fn a_tally_breaking_its_rules_is_refused() {
        let a = record("2026-11", Gender::Female);
        let b = record("2026-12", Gender::Male);
        let sorted = tally(&[a.clone(), b.clone()]);
        let bytes = |c: &Counted| postcard::to_allocvec(c).expect("encode");
        // Out of order, repeated, a count of 0, a bad month, too many cases.
        let reversed: Counted = sorted.iter().rev().cloned().collect();
        assert_eq!(decode(&bytes(&reversed)), Err(TallyError::Malformed));
        let twice = vec![sorted[0].clone(), sorted[0].clone()];
        assert_eq!(decode(&bytes(&twice)), Err(TallyError::Malformed));
        assert_eq!(decode(&bytes(&vec![(a, 0)])), Err(TallyError::Malformed));
        let bad_month = vec![(record("26-11", Gender::Male), 1)];
        assert_eq!(decode(&bytes(&bad_month)), Err(TallyError::Malformed));
        let huge = vec![
            (sorted[0].0.clone(), MAX_TALLY_CASES),
            (sorted[1].0.clone(), 1),
        ];
        assert_eq!(decode(&bytes(&huge)), Err(TallyError::Malformed));
        assert_eq!(decode(&[0xff; 9]), Err(TallyError::Malformed));
        assert_eq!(
            decode(&vec![0; MAX_TALLY_BYTES + 1]),
            Err(TallyError::TooLarge)
        );
    }
}
