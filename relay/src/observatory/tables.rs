//! What a coordinator receives: the records counted into tables, small counts suppressed.
//!
//! The answer holds, for the months that have records (at most [`MAX_MONTHS`], the most
//! recent), the cases in all, the cases per month, and for each [`Dimension`] the cases per
//! value over all months and per month and value. Every figure is a *cell*; the figures
//! are tied by linear relations anyone can write down:
//!
//! * the cases per month add up to the cases in all;
//! * for each dimension but exploitation (one value per case), a month's cells add up to
//!   the month's cases, and the over-all cells add up to the cases in all;
//! * for every dimension, a value's monthly cells add up to its over-all cell.
//!
//! (A case counts once under each of its types of exploitation, so those tables have no
//! relation to the number of cases.)
//!
//! **Primary suppression**: every cell below [`MIN_DISCLOSED`], zero included, is sent as
//! [`Cell::Suppressed`]. **Secondary suppression**: the disclosed cells and the relations
//! above form a linear system in the suppressed cells; while one suppressed cell is
//! determined by it (it has the same value in every solution), one more cell of a
//! relation it appears in is suppressed (an inner cell before a total, then the smallest).
//! The loop ends because each round suppresses a cell, and with every cell of a connected
//! set of relations suppressed none is determined (adding one case to the records changes
//! any chosen cell and keeps every relation). The audit is exact (integer elimination).

use std::collections::BTreeMap;

use super::tally::Counted;

use approdo_core::observatory::{
    ACTIVATORS, AGES, Cell, DIMENSIONS, Dimension, EXPLOITATIONS, GENDERS, MIN_DISCLOSED,
    NO_TERRITORY, OUTCOMES, ObservatoryRecord, ObservatoryTables, StoredRecord, Table, code_of,
};

/// Most months in one answer (the most recent that have records).
pub const MAX_MONTHS: usize = 24;

/// The codes of a record's values in a dimension (several only for exploitation).
fn values_of(dimension: Dimension, r: &ObservatoryRecord) -> Vec<String> {
    let territory = |t: &Option<approdo_core::ids::Tag>| {
        t.as_ref()
            .map_or(NO_TERRITORY.to_owned(), |t| t.as_str().to_owned())
    };
    match dimension {
        Dimension::Emerged => vec![territory(&r.territory_emerged)],
        Dimension::Exploited => vec![territory(&r.territory_exploitation)],
        Dimension::Exploitation => {
            let mut v: Vec<String> = r
                .exploitation
                .iter()
                .map(|e| code_of(EXPLOITATIONS, e).to_owned())
                .collect();
            v.sort();
            v.dedup();
            v
        }
        Dimension::Gender => vec![code_of(GENDERS, &r.gender).to_owned()],
        Dimension::Age => vec![code_of(AGES, &r.age).to_owned()],
        Dimension::Activator => vec![code_of(ACTIVATORS, &r.activator).to_owned()],
        Dimension::Outcome => vec![code_of(OUTCOMES, &r.outcome).to_owned()],
    }
}

/// Every value of a dimension, in the order of the code tables; territories are the
/// configured ones, then any other a record names, then [`NO_TERRITORY`].
fn all_values(
    dimension: Dimension,
    territories: &[String],
    records: &[(&StoredRecord, u32)],
) -> Vec<String> {
    fn codes<T>(table: &[(T, &str)]) -> Vec<String> {
        table.iter().map(|(_, c)| (*c).to_owned()).collect()
    }
    match dimension {
        Dimension::Emerged | Dimension::Exploited => {
            let mut out: Vec<String> = territories.to_vec();
            for (s, _) in records {
                for v in values_of(dimension, &s.record) {
                    if v != NO_TERRITORY && !out.contains(&v) {
                        out.push(v);
                    }
                }
            }
            out.push(NO_TERRITORY.to_owned());
            out
        }
        Dimension::Exploitation => codes(EXPLOITATIONS),
        Dimension::Gender => codes(GENDERS),
        Dimension::Age => codes(AGES),
        Dimension::Activator => codes(ACTIVATORS),
        Dimension::Outcome => codes(OUTCOMES),
    }
}

/// The cells of an answer as one list of counts, with the relations between them.
struct Grid {
    counts: Vec<u32>,
    /// Whether a cell is a total (of all months, or of a month): withheld only when no
    /// inner cell can be.
    margin: Vec<bool>,
    /// Each relation: the cells that add up, and the cell they add up to.
    relations: Vec<(Vec<usize>, usize)>,
}

/// Where each figure of the answer sits in the [`Grid`].
struct Layout {
    cases: usize,
    by_month: Vec<usize>,
    /// Per table: over-all cells, then per month the month's cells.
    tables: Vec<(Vec<usize>, Vec<Vec<usize>>)>,
}

/// Count `records` (the months of at most [`MAX_MONTHS`] most recent are kept) into the
/// coordinator's tables, with primary and secondary suppression. `territories` are the
/// configured desks' tags.
pub fn aggregate(records: &[StoredRecord], territories: &[String]) -> ObservatoryTables {
    aggregate_counted(&super::tally::tally(records), territories)
}

/// [`aggregate`] of records given with how many times each was filed: the sum of several
/// nodes' tallies (`bus::observatory`), suppressed only once added up.
pub fn aggregate_counted(counted: &Counted, territories: &[String]) -> ObservatoryTables {
    let mut months: Vec<String> = counted.iter().map(|(s, _)| s.month.clone()).collect();
    months.sort();
    months.dedup();
    let first = months.len().saturating_sub(MAX_MONTHS);
    months.drain(..first);
    let records: Vec<(&StoredRecord, u32)> = counted
        .iter()
        .filter(|(s, _)| months.binary_search(&s.month).is_ok())
        .map(|(s, n)| (s, u32::try_from(*n).unwrap_or(u32::MAX)))
        .collect();
    let values: Vec<Vec<String>> = DIMENSIONS
        .iter()
        .map(|(d, _)| all_values(*d, territories, &records))
        .collect();

    let mut grid = Grid {
        counts: Vec::new(),
        margin: Vec::new(),
        relations: Vec::new(),
    };
    let cell = |grid: &mut Grid, margin: bool| {
        grid.counts.push(0);
        grid.margin.push(margin);
        grid.counts.len() - 1
    };
    let cases = cell(&mut grid, true);
    let by_month: Vec<usize> = months.iter().map(|_| cell(&mut grid, true)).collect();
    let mut tables = Vec::new();
    for vals in &values {
        let total: Vec<usize> = vals.iter().map(|_| cell(&mut grid, true)).collect();
        let rows: Vec<Vec<usize>> = months
            .iter()
            .map(|_| vals.iter().map(|_| cell(&mut grid, false)).collect())
            .collect();
        tables.push((total, rows));
    }
    let layout = Layout {
        cases,
        by_month,
        tables,
    };

    // Count.
    let index: BTreeMap<&str, usize> = months
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let add = |grid: &mut Grid, cell: usize, n: u32| {
        grid.counts[cell] = grid.counts[cell].saturating_add(n);
    };
    for &(s, n) in &records {
        let m = index[s.month.as_str()];
        add(&mut grid, layout.cases, n);
        add(&mut grid, layout.by_month[m], n);
        for (t, (d, _)) in DIMENSIONS.iter().enumerate() {
            for v in values_of(*d, &s.record) {
                if let Some(i) = values[t].iter().position(|x| *x == v) {
                    add(&mut grid, layout.tables[t].0[i], n);
                    add(&mut grid, layout.tables[t].1[m][i], n);
                }
            }
        }
    }

    // The relations.
    grid.relations.push((layout.by_month.clone(), layout.cases));
    for (t, (d, _)) in DIMENSIONS.iter().enumerate() {
        let (total, rows) = &layout.tables[t];
        if *d != Dimension::Exploitation {
            grid.relations.push((total.clone(), layout.cases));
            for (m, row) in rows.iter().enumerate() {
                grid.relations.push((row.clone(), layout.by_month[m]));
            }
        }
        for (i, &whole) in total.iter().enumerate() {
            grid.relations
                .push((rows.iter().map(|r| r[i]).collect(), whole));
        }
    }

    let suppressed = suppress(&grid);
    let out = |i: usize| {
        if suppressed[i] {
            Cell::Suppressed
        } else {
            Cell::Count(grid.counts[i])
        }
    };
    ObservatoryTables {
        months,
        cases: out(layout.cases),
        cases_by_month: layout.by_month.iter().map(|&i| out(i)).collect(),
        tables: DIMENSIONS
            .iter()
            .zip(&layout.tables)
            .zip(values)
            .map(|(((d, _), (total, rows)), values)| Table {
                dimension: *d,
                values,
                total: total.iter().map(|&i| out(i)).collect(),
                by_month: rows
                    .iter()
                    .map(|r| r.iter().map(|&i| out(i)).collect())
                    .collect(),
            })
            .collect(),
    }
}

/// Which cells to withhold: primary, then secondary suppression until no withheld cell is
/// determined by the others and the relations.
fn suppress(grid: &Grid) -> Vec<bool> {
    let mut suppressed: Vec<bool> = grid.counts.iter().map(|&c| c < MIN_DISCLOSED).collect();
    let equations: Vec<Vec<(usize, i128)>> = grid
        .relations
        .iter()
        .map(|(parts, whole)| {
            let mut e: Vec<(usize, i128)> = parts.iter().map(|&p| (p, 1)).collect();
            e.push((*whole, -1));
            e
        })
        .collect();
    loop {
        // An overflow (not seen with these small integer relations) withholds everything.
        let Some(determined) = determined(&equations, &suppressed) else {
            return vec![true; grid.counts.len()];
        };
        if determined.is_empty() {
            return suppressed;
        }
        let mut more = Vec::new();
        for x in determined {
            // The relation with x and the fewest withheld cells, and its smallest disclosed
            // cell: an inner cell rather than a total, a table's total rather than the
            // cases of a month or in all (those come first in the grid).
            let cost = |v: usize| (grid.margin[v], grid.counts[v], std::cmp::Reverse(v));
            let best = equations
                .iter()
                .filter(|e| e.iter().any(|(v, _)| *v == x))
                .filter_map(|e| {
                    let hidden = e.iter().filter(|(v, _)| suppressed[*v]).count();
                    e.iter()
                        .map(|(v, _)| *v)
                        .filter(|v| !suppressed[*v])
                        .min_by_key(|v| cost(*v))
                        .map(|v| (hidden, cost(v)))
                })
                .min()
                .map(|(_, (_, _, std::cmp::Reverse(v)))| v)
                .or_else(|| {
                    // Determined through other relations only: the cheapest disclosed cell
                    // of any relation that holds a withheld one.
                    equations
                        .iter()
                        .filter(|e| e.iter().any(|(v, _)| suppressed[*v]))
                        .flat_map(|e| e.iter().map(|(v, _)| *v))
                        .filter(|v| !suppressed[*v])
                        .min_by_key(|v| cost(*v))
                });
            match best {
                Some(v) => more.push(v),
                None => return vec![true; grid.counts.len()],
            }
        }
        for v in more {
            suppressed[v] = true;
        }
    }
}

/// The withheld cells whose value the disclosed ones and the relations determine: exact
/// reduced row echelon form over the withheld cells (integer rows, divided by their gcd).
/// `None` if a number overflowed.
fn determined(equations: &[Vec<(usize, i128)>], suppressed: &[bool]) -> Option<Vec<usize>> {
    let columns: Vec<usize> = (0..suppressed.len()).filter(|&i| suppressed[i]).collect();
    let col_of: BTreeMap<usize, usize> = columns.iter().enumerate().map(|(c, &v)| (v, c)).collect();
    let mut rows: Vec<Vec<i128>> = equations
        .iter()
        .filter_map(|e| {
            let mut row = vec![0i128; columns.len()];
            let mut any = false;
            for (v, k) in e {
                if let Some(&c) = col_of.get(v) {
                    row[c] += k;
                    any = true;
                }
            }
            any.then_some(row)
        })
        .collect();
    let mut pivots = Vec::new();
    let mut r = 0;
    for c in 0..columns.len() {
        let Some(p) = (r..rows.len()).find(|&i| rows[i][c] != 0) else {
            continue;
        };
        rows.swap(r, p);
        let pivot = rows[r].clone();
        for (i, row) in rows.iter_mut().enumerate() {
            if i == r || row[c] == 0 {
                continue;
            }
            let f = row[c];
            for (a, b) in row.iter_mut().zip(&pivot) {
                *a = a
                    .checked_mul(pivot[c])
                    .zip(b.checked_mul(f))
                    .and_then(|(x, y)| x.checked_sub(y))?;
            }
            normalise(row);
        }
        pivots.push((r, c));
        r += 1;
        if r == rows.len() {
            break;
        }
    }
    Some(
        pivots
            .into_iter()
            .filter(|&(r, _)| rows[r].iter().filter(|&&a| a != 0).count() == 1)
            .map(|(_, c)| columns[c])
            .collect(),
    )
}

/// Divide a row by the gcd of its entries.
fn normalise(row: &mut [i128]) {
    let g = row.iter().fold(0i128, |g, &a| gcd(g, a.abs()));
    if g > 1 {
        for a in row.iter_mut() {
            *a /= g;
        }
    }
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use approdo_core::observatory::{Activator, AgeBand, Exploitation, Gender, Outcome};

    fn record(gender: Gender) -> ObservatoryRecord {
        ObservatoryRecord {
            gender,
            age: AgeBand::From18To25,
            territory_emerged: None,
            territory_exploitation: None,
            exploitation: vec![Exploitation::SexualStreet],
            activator: Activator::Person,
            outcome: Outcome::Counselling,
        }
    }

    fn stored(month: &str, gender: Gender, n: usize) -> Vec<StoredRecord> {
        (0..n)
            .map(|_| StoredRecord {
                month: month.into(),
                record: record(gender),
            })
            .collect()
    }

    /// Every case emerged in no territory: in a month, the territory's 0 next to "none"
    /// would follow from the month's cases, so "none" is withheld too (an inner cell, not
    /// the month's total); zeros elsewhere cover each other.
    #[test]
    fn a_small_cell_takes_a_complement_with_it() {
        let mut records = stored("2026-10", Gender::Female, 9);
        records.extend(stored("2026-11", Gender::Female, 6));
        records.extend(stored("2026-11", Gender::Male, 3));
        let t = aggregate(&records, &["veneto".into()]);
        assert_eq!(t.cases, Cell::Count(18));
        assert_eq!(t.cases_by_month, vec![Cell::Count(9), Cell::Count(9)]);
        let emerged = &t.tables[0];
        assert_eq!(emerged.values, vec!["veneto", NO_TERRITORY]);
        assert_eq!(emerged.by_month, vec![vec![Cell::Suppressed; 2]; 2]);
        let gender = &t.tables[3];
        assert_eq!(gender.dimension, Dimension::Gender);
        assert_eq!(gender.by_month[1][1], Cell::Suppressed, "the 3 men");
        assert_eq!(
            gender.by_month[1][0],
            Cell::Count(6),
            "covered by the zeros"
        );
    }

    /// Two years of records: the most recent 24 months are counted, and secondary
    /// suppression takes inner cells, not the monthly cases.
    #[test]
    fn two_years_of_records_keep_the_monthly_cases() {
        let genders = [Gender::Female, Gender::Male, Gender::Transgender];
        let mut records = Vec::new();
        for m in 0..MAX_MONTHS + 2 {
            for (i, g) in genders.iter().enumerate() {
                records.extend(stored(
                    &format!("{}-{:02}", 2024 + m / 12, 1 + m % 12),
                    *g,
                    (m * 7 + i * 5) % 23,
                ));
            }
        }
        let t = aggregate(&records, &["veneto".into()]);
        assert_eq!(t.months.len(), MAX_MONTHS);
        assert!(t.cases_by_month.iter().all(|c| matches!(c, Cell::Count(_))));
    }
}
