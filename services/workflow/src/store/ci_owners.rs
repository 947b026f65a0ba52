//! The owner of each configuration item, as the control service announces it.

use std::collections::HashMap;

use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;

use super::schema::wf_ci_owners;

/// Records the owner of a CI, unless a newer revision is already held.
///
/// # Errors
/// A query failing.
pub fn upsert(conn: &mut AnyConnection, ci: &str, owner: &str, revision: i64) -> QueryResult<()> {
    let held: Option<i64> = wf_ci_owners::table
        .find(ci)
        .select(wf_ci_owners::revision)
        .first(conn)
        .optional()?;
    match held {
        Some(held) if held >= revision => Ok(()),
        Some(_) => diesel::update(wf_ci_owners::table.find(ci))
            .set((
                wf_ci_owners::owner.eq(owner),
                wf_ci_owners::revision.eq(revision),
            ))
            .execute(conn)
            .map(drop),
        None => diesel::insert_into(wf_ci_owners::table)
            .values((
                wf_ci_owners::ci_id.eq(ci),
                wf_ci_owners::owner.eq(owner),
                wf_ci_owners::revision.eq(revision),
            ))
            .execute(conn)
            .map(drop),
    }
}

/// The owners of these CIs (those known).
///
/// # Errors
/// A query failing.
pub fn owners(conn: &mut AnyConnection, cis: &[String]) -> QueryResult<HashMap<String, String>> {
    if cis.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String)> = wf_ci_owners::table
        .filter(wf_ci_owners::ci_id.eq_any(cis))
        .select((wf_ci_owners::ci_id, wf_ci_owners::owner))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}
