//! Impact analysis: breadth-first over the relations, one query per level.
//!
//! `up` answers "what is affected if this CI fails": the CIs that depend on it, run on it, are
//! hosted by it, connect to it or are part of it, then theirs, and so on (relations followed
//! from target to source). `down` answers "what does this CI need" (source to target). Each CI
//! is reported once, at its shortest distance, with one shortest path from the start.

use std::collections::{HashMap, VecDeque};

use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;

use super::cis::CiRow;
use super::schema::{ci_relations, cis};

/// Which way to walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// To what depends on the CI.
    Up,
    /// To what the CI depends on.
    Down,
}

/// One affected CI.
#[derive(Debug, Clone)]
pub struct Reached {
    /// The CI.
    pub ci: CiRow,
    /// Relations from the start.
    pub depth: usize,
    /// The CIs from the start to it, both included, with the relation kind of each step.
    pub path: Vec<(String, Option<String>)>,
}

/// Walks from `start` up to `depth` relations away.
///
/// # Errors
/// A query failing.
pub fn analyse(
    conn: &mut AnyConnection,
    start: &str,
    direction: Direction,
    depth: usize,
) -> QueryResult<Vec<Reached>> {
    // id → (previous id, kind of the relation from it, depth)
    let mut seen: HashMap<String, (Option<String>, Option<String>, usize)> = HashMap::new();
    seen.insert(start.to_owned(), (None, None, 0));
    let mut frontier = vec![start.to_owned()];
    let mut order: Vec<String> = Vec::new();
    for level in 1..=depth {
        if frontier.is_empty() {
            break;
        }
        let edges: Vec<(String, String, String)> = match direction {
            Direction::Up => ci_relations::table
                .filter(ci_relations::target.eq_any(&frontier))
                .select((
                    ci_relations::target,
                    ci_relations::kind,
                    ci_relations::source,
                ))
                .load(conn)?,
            Direction::Down => ci_relations::table
                .filter(ci_relations::source.eq_any(&frontier))
                .select((
                    ci_relations::source,
                    ci_relations::kind,
                    ci_relations::target,
                ))
                .load(conn)?,
        };
        let mut next = Vec::new();
        for (from, kind, to) in edges {
            if !seen.contains_key(&to) {
                seen.insert(to.clone(), (Some(from), Some(kind), level));
                order.push(to.clone());
                next.push(to);
            }
        }
        frontier = next;
    }
    let mut rows: HashMap<String, CiRow> = HashMap::new();
    for chunk in order.chunks(10_000) {
        let loaded: Vec<CiRow> = cis::table
            .filter(cis::id.eq_any(chunk))
            .select(CiRow::as_select())
            .load(conn)?;
        rows.extend(loaded.into_iter().map(|row| (row.id.clone(), row)));
    }
    let mut reached = Vec::with_capacity(order.len());
    for id in order {
        let Some(ci) = rows.remove(&id) else {
            continue;
        };
        let mut path = VecDeque::new();
        let mut at = Some(id.clone());
        while let Some(current) = at {
            let (previous, kind, _) = seen.get(&current).cloned().unwrap_or((None, None, 0));
            path.push_front((current, kind));
            at = previous;
        }
        let depth = seen.get(&id).map_or(0, |(_, _, d)| *d);
        reached.push(Reached {
            ci,
            depth,
            path: path.into_iter().collect(),
        });
    }
    Ok(reached)
}
