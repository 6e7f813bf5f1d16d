//! A coordinator's observatory answer discloses no count below 5, and no suppressed count
//! can be worked out from the rest of the same answer: over many random record sets, an
//! attacker writes down every linear relation the figures obey (months add up to the
//! cases, a month's cells of a one-value dimension add up to its cases, a value's monthly
//! cells add up to its over-all cell), solves for the suppressed cells by exact
//! elimination, and must determine none of them. The disclosed counts are exact.

use approdo_core::ids::Tag;
use approdo_core::observatory::{
    ACTIVATORS, AGES, Cell, Dimension, EXPLOITATIONS, GENDERS, MIN_DISCLOSED, NO_TERRITORY,
    OUTCOMES, ObservatoryRecord, ObservatoryTables, StoredRecord, code_of,
};
use approdo_relay::observatory::aggregate;

const TERRITORIES: &[&str] = &["veneto", "toscana", "sicilia"];

/// xorshift64*: reproducible record sets without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// An index below `n`, skewed towards the first ones (so some counts are large).
    fn pick(&mut self, n: usize) -> usize {
        let a = (self.next() % n as u64) as usize;
        let b = (self.next() % n as u64) as usize;
        if self.next().is_multiple_of(4) {
            a
        } else {
            a.min(b)
        }
    }
    fn from<T: Copy>(&mut self, table: &[(T, &str)]) -> T {
        table[self.pick(table.len())].0
    }
}

fn random_records(rng: &mut Rng) -> Vec<StoredRecord> {
    let months = 1 + rng.pick(6);
    // At least one case: an empty observatory answers with no month at all.
    let n = 1 + (rng.next() % 300) as usize;
    let territory = |rng: &mut Rng| {
        let i = rng.pick(TERRITORIES.len() + 1);
        TERRITORIES.get(i).map(|t| Tag::new(*t).expect("tag"))
    };
    (0..n)
        .map(|_| {
            let mut exploitation = Vec::new();
            for _ in 0..rng.pick(3) + 1 {
                let e = rng.from(EXPLOITATIONS);
                if !exploitation.contains(&e) {
                    exploitation.push(e);
                }
            }
            StoredRecord {
                month: format!("2026-{:02}", 1 + rng.pick(months)),
                record: ObservatoryRecord {
                    gender: rng.from(GENDERS),
                    age: rng.from(AGES),
                    territory_emerged: territory(rng),
                    territory_exploitation: territory(rng),
                    exploitation,
                    activator: rng.from(ACTIVATORS),
                    outcome: rng.from(OUTCOMES),
                },
            }
        })
        .collect()
}

/// The codes a record has in a dimension, counted the obvious way.
fn has(record: &ObservatoryRecord, dimension: Dimension, code: &str) -> bool {
    let territory = |t: &Option<Tag>| t.as_ref().map_or(NO_TERRITORY, |t| t.as_str()) == code;
    match dimension {
        Dimension::Emerged => territory(&record.territory_emerged),
        Dimension::Exploited => territory(&record.territory_exploitation),
        Dimension::Exploitation => record
            .exploitation
            .iter()
            .any(|e| code_of(EXPLOITATIONS, e) == code),
        Dimension::Gender => code_of(GENDERS, &record.gender) == code,
        Dimension::Age => code_of(AGES, &record.age) == code,
        Dimension::Activator => code_of(ACTIVATORS, &record.activator) == code,
        Dimension::Outcome => code_of(OUTCOMES, &record.outcome) == code,
    }
}

/// Every figure of the answer with its true count (from the records), and the relations
/// that hold between the figures whatever the records.
struct Figures {
    shown: Vec<Cell>,
    truth: Vec<u32>,
    names: Vec<String>,
    /// `parts` add up to `whole`.
    relations: Vec<(Vec<usize>, usize)>,
}

fn figures(answer: &ObservatoryTables, records: &[StoredRecord]) -> Figures {
    let mut f = Figures {
        shown: Vec::new(),
        truth: Vec::new(),
        names: Vec::new(),
        relations: Vec::new(),
    };
    let add = |f: &mut Figures, cell: Cell, truth: usize, name: String| {
        f.shown.push(cell);
        f.truth.push(truth as u32);
        f.names.push(name);
        f.shown.len() - 1
    };
    let cases = add(&mut f, answer.cases, records.len(), "cases".into());
    let months: Vec<usize> = answer
        .months
        .iter()
        .zip(&answer.cases_by_month)
        .map(|(m, c)| {
            let n = records.iter().filter(|s| s.month == *m).count();
            add(&mut f, *c, n, format!("cases {m}"))
        })
        .collect();
    f.relations.push((months.clone(), cases));
    for t in &answer.tables {
        let mut totals = Vec::new();
        for (i, v) in t.values.iter().enumerate() {
            let n = records
                .iter()
                .filter(|s| has(&s.record, t.dimension, v))
                .count();
            totals.push(add(&mut f, t.total[i], n, format!("{:?} {v}", t.dimension)));
        }
        let mut rows = Vec::new();
        for (m, month) in answer.months.iter().enumerate() {
            let row: Vec<usize> = t
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let n = records
                        .iter()
                        .filter(|s| s.month == *month && has(&s.record, t.dimension, v))
                        .count();
                    add(
                        &mut f,
                        t.by_month[m][i],
                        n,
                        format!("{:?} {v} {month}", t.dimension),
                    )
                })
                .collect();
            rows.push(row);
        }
        if t.dimension != Dimension::Exploitation {
            f.relations.push((totals.clone(), cases));
            for (m, row) in rows.iter().enumerate() {
                f.relations.push((row.clone(), months[m]));
            }
        }
        for (i, &total) in totals.iter().enumerate() {
            f.relations
                .push((rows.iter().map(|r| r[i]).collect(), total));
        }
    }
    f
}

/// The attacker: every suppressed figure that the disclosed ones and the relations
/// determine, with the value it must have. Exact Gauss–Jordan elimination over the
/// rationals (integer rows kept small by their gcd), the right-hand side carried along.
fn recoverable(f: &Figures) -> Vec<(usize, i128)> {
    let unknown: Vec<usize> = (0..f.shown.len())
        .filter(|&i| f.shown[i] == Cell::Suppressed)
        .collect();
    let col = |v: usize| unknown.iter().position(|&u| u == v);
    let width = unknown.len() + 1; // the last column is the right-hand side
    let mut rows: Vec<Vec<i128>> = f
        .relations
        .iter()
        .map(|(parts, whole)| {
            let mut row = vec![0i128; width];
            for (v, k) in parts.iter().map(|&p| (p, 1i128)).chain([(*whole, -1)]) {
                match (col(v), f.shown[v]) {
                    (Some(c), _) => row[c] += k,
                    (None, Cell::Count(n)) => row[width - 1] -= k * i128::from(n),
                    (None, Cell::Suppressed) => unreachable!(),
                }
            }
            row
        })
        .collect();
    let mut r = 0;
    let mut pivots = Vec::new();
    for c in 0..unknown.len() {
        let Some(p) = (r..rows.len()).find(|&i| rows[i][c] != 0) else {
            continue;
        };
        rows.swap(r, p);
        let pivot = rows[r].clone();
        for (i, row) in rows.iter_mut().enumerate() {
            if i != r && row[c] != 0 {
                let k = row[c];
                for (a, b) in row.iter_mut().zip(&pivot) {
                    *a = *a * pivot[c] - b * k;
                }
                let g = row.iter().fold(0i128, |g, &a| gcd(g, a.abs()));
                if g > 1 {
                    row.iter_mut().for_each(|a| *a /= g);
                }
            }
        }
        pivots.push((r, c));
        r += 1;
    }
    pivots
        .into_iter()
        .filter(|&(r, _)| rows[r][..width - 1].iter().filter(|&&a| a != 0).count() == 1)
        .map(|(r, c)| (unknown[c], rows[r][width - 1] / rows[r][c]))
        .collect()
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[test]
fn no_small_count_is_disclosed_or_recoverable() {
    let territories: Vec<String> = TERRITORIES.iter().map(|t| (*t).to_owned()).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut disclosed = 0;
    for round in 0..200 {
        let records = random_records(&mut rng);
        let answer = aggregate(&records, &territories);
        let f = figures(&answer, &records);
        for (i, cell) in f.shown.iter().enumerate() {
            if let Cell::Count(n) = cell {
                assert_eq!(*n, f.truth[i], "round {round}: {} is exact", f.names[i]);
                assert!(
                    *n >= MIN_DISCLOSED,
                    "round {round}: {} = {n} disclosed",
                    f.names[i]
                );
                disclosed += 1;
            }
        }
        if let Some((i, value)) = recoverable(&f).into_iter().next() {
            panic!(
                "round {round}: suppressed {} recovered as {value} (truth {})",
                f.names[i], f.truth[i]
            );
        }
    }
    assert!(
        disclosed > 1000,
        "the answers disclose counts ({disclosed})"
    );
}

/// The attacker is not toothless: a one-way table whose total is shown gives away its
/// only suppressed cell.
#[test]
fn the_attacker_recovers_a_cell_from_a_total() {
    let f = Figures {
        shown: vec![Cell::Count(12), Cell::Count(9), Cell::Suppressed],
        truth: vec![12, 9, 3],
        names: vec!["cases".into(), "female".into(), "male".into()],
        relations: vec![(vec![1, 2], 0)],
    };
    assert_eq!(recoverable(&f), vec![(2, 3)]);
}
