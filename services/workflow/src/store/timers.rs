//! Due timers, fired once across replicas.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;
use uuid::Uuid;

use super::schema::wf_timers;

/// Timers due by `now`, earliest first: (instance, timer).
///
/// # Errors
/// A query failing.
pub fn due(
    conn: &mut AnyConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<(Uuid, u32)>> {
    let rows: Vec<(String, i32)> = wf_timers::table
        .filter(wf_timers::due_at.le(now.naive_utc()))
        .order((wf_timers::due_at.asc(), wf_timers::instance_id.asc()))
        .limit(limit)
        .select((wf_timers::instance_id, wf_timers::timer_id))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(instance, timer)| {
            Some((Uuid::parse_str(&instance).ok()?, u32::try_from(timer).ok()?))
        })
        .collect())
}

/// Takes a due timer for this transaction: `false` when it is gone or another replica holds it
/// (PostgreSQL `FOR UPDATE SKIP LOCKED`; SQLite has one writer).
///
/// # Errors
/// A query failing.
pub fn claim(conn: &mut AnyConnection, instance: Uuid, timer: u32) -> QueryResult<bool> {
    let key = (
        instance.to_string(),
        i32::try_from(timer).unwrap_or(i32::MAX),
    );
    let found: Option<i32> = match conn {
        AnyConnection::Postgresql(pg) => wf_timers::table
            .find(key)
            .select(wf_timers::timer_id)
            .for_update()
            .skip_locked()
            .first(pg)
            .optional()?,
        AnyConnection::Sqlite(sqlite) => wf_timers::table
            .find(key)
            .select(wf_timers::timer_id)
            .first(sqlite)
            .optional()?,
    };
    Ok(found.is_some())
}

/// The earliest pending timer, to sleep until.
///
/// # Errors
/// A query failing.
pub fn next_due(conn: &mut AnyConnection) -> QueryResult<Option<DateTime<Utc>>> {
    let at: Option<chrono::NaiveDateTime> = wf_timers::table
        .select(diesel::dsl::min(wf_timers::due_at))
        .first(conn)?;
    Ok(at.map(|at| DateTime::from_naive_utc_and_offset(at, Utc)))
}
