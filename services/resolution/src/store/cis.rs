//! The read model of the CMDB: the CIs control announces (`control.ci.changed`), so that a CI
//! named on an incident or a problem by its name is recorded by its id.

use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;

use super::schema::known_cis;

/// One CI.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = known_cis)]
pub struct CiRow {
    /// Its id in control.
    pub id: String,
    /// Name.
    pub name: String,
    /// Class (CI type).
    pub class: String,
    /// Accountable user.
    pub owner: String,
    /// Status.
    pub status: String,
    /// The publisher's revision; older messages are ignored.
    pub revision: i64,
}

/// Inserts or replaces a CI unless what is stored is newer; `true` when it was applied.
///
/// # Errors
/// A query failing.
pub fn upsert(conn: &mut AnyConnection, row: &CiRow) -> QueryResult<bool> {
    let current: Option<i64> = known_cis::table
        .find(&row.id)
        .select(known_cis::revision)
        .first(conn)
        .optional()?;
    match current {
        None => {
            diesel::insert_into(known_cis::table)
                .values(row)
                .execute(conn)?;
            Ok(true)
        }
        Some(revision) if revision < row.revision => {
            diesel::update(known_cis::table.find(&row.id))
                .set(row)
                .execute(conn)?;
            Ok(true)
        }
        Some(_) => Ok(false),
    }
}

/// CI references as recorded: a known id stays; a name that exactly one known CI has becomes
/// that CI's id; anything else (a CI control has not announced, a name several CIs share) stays
/// as given. Duplicates after resolving are dropped, the order kept.
///
/// # Errors
/// A query failing.
pub fn resolve(conn: &mut AnyConnection, refs: &[String]) -> QueryResult<Vec<String>> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let known: Vec<(String, String)> = known_cis::table
        .filter(known_cis::id.eq_any(refs).or(known_cis::name.eq_any(refs)))
        .select((known_cis::id, known_cis::name))
        .load(conn)?;
    let mut out: Vec<String> = Vec::with_capacity(refs.len());
    for reference in refs {
        let resolved = if known.iter().any(|(id, _)| id == reference) {
            reference.clone()
        } else {
            let mut named = known.iter().filter(|(_, name)| name == reference);
            match (named.next(), named.next()) {
                (Some((id, _)), None) => id.clone(),
                _ => reference.clone(),
            }
        };
        if !out.contains(&resolved) {
            out.push(resolved);
        }
    }
    Ok(out)
}
