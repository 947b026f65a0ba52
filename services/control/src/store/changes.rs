//! Change rows: each change is written with its audit row and its events.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use meridian_chassis::audit;
use meridian_chassis::bus::Envelope;
use meridian_chassis::db::AnyConnection;
use meridian_chassis::outbox;
use meridian_proto::Message;
use meridian_proto::common::v1::Timestamp;
use meridian_proto::control::v1::{ChangeStateChanged, ChangeSubmitted};
use serde::Serialize;
use uuid::Uuid;

use super::cis::{Context, SOURCE};
use super::schema::{changes, counters};

/// A change row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = changes, treat_none_as_null = true)]
pub struct ChangeRow {
    /// Id.
    pub id: String,
    /// `CHG0001000` onwards.
    pub number: String,
    /// What.
    pub title: String,
    /// Why.
    pub reason: String,
    /// `standard`, `normal` or `emergency`.
    pub category: String,
    /// The template of a standard change.
    pub template: Option<String>,
    /// Who asked for it.
    pub requester: String,
    /// JSON array of the affected CI ids.
    pub configuration_items: String,
    /// The planned window.
    pub window_start: Option<NaiveDateTime>,
    /// The planned window's end.
    pub window_end: Option<NaiveDateTime>,
    /// How.
    pub implementation_plan: String,
    /// How it is tested.
    pub test_plan: String,
    /// How it is undone.
    pub backout_plan: String,
    /// Where it stands.
    pub state: String,
    /// The decision, JSON.
    pub decision: Option<String>,
    /// The post-implementation review, JSON.
    pub review: Option<String>,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Last changed.
    pub updated_at: NaiveDateTime,
    /// Increases with every change.
    pub version: i64,
    /// The risk score, factor by factor, JSON (computed on submit).
    pub risk: Option<String>,
    /// Service design and transition, JSON.
    pub design: Option<String>,
    /// Where it came from when another record raised it (`problem:PRB0001000`).
    pub origin: Option<String>,
}

diesel::define_sql_function! {
    fn nextval(sequence: diesel::sql_types::Text) -> diesel::sql_types::BigInt;
}

/// The next number, `CHG0001000` onwards.
///
/// # Errors
/// A query failing.
pub fn next_number(conn: &mut AnyConnection) -> QueryResult<String> {
    let value: i64 = match conn {
        AnyConnection::Postgresql(pg) => {
            diesel::select(nextval("change_number_seq")).get_result(pg)?
        }
        AnyConnection::Sqlite(sqlite) => {
            diesel::update(counters::table.find("change_number"))
                .set(counters::value.eq(counters::value + 1))
                .execute(sqlite)?;
            counters::table
                .find("change_number")
                .select(counters::value)
                .first(sqlite)?
        }
    };
    Ok(format!("CHG{value:07}"))
}

fn timestamp(at: Option<NaiveDateTime>) -> Option<Timestamp> {
    at.map(|at| Timestamp {
        unix_micros: at.and_utc().timestamp_micros(),
    })
}

fn envelope(row: &ChangeRow, event_type: &str, payload: Vec<u8>, ctx: Context<'_>) -> Envelope {
    Envelope {
        id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        source: SOURCE.to_owned(),
        subject: row.id.clone(),
        time: ctx.now,
        correlation_id: ctx.correlation_id.map(str::to_owned),
        causation_id: None,
        actor: Some(ctx.actor.to_owned()),
        payload,
    }
}

/// The `control.change.submitted` event: what the approval workflows read.
pub fn submitted(row: &ChangeRow, cab_members: &[String], ctx: Context<'_>) -> Envelope {
    envelope(
        row,
        "control.change.submitted",
        ChangeSubmitted {
            id: row.id.clone(),
            number: row.number.clone(),
            kind: row.category.clone(),
            title: row.title.clone(),
            requester: row.requester.clone(),
            cab_members: cab_members.to_vec(),
            template: row.template.clone().unwrap_or_default(),
            configuration_items: serde_json::from_str(&row.configuration_items).unwrap_or_default(),
            window_start: timestamp(row.window_start),
            window_end: timestamp(row.window_end),
        }
        .encode_to_vec(),
        ctx,
    )
}

/// Stores a new change and its audit row.
///
/// # Errors
/// A query failing.
pub fn insert(conn: &mut AnyConnection, row: &ChangeRow, ctx: Context<'_>) -> QueryResult<()> {
    diesel::insert_into(changes::table)
        .values(row)
        .execute(conn)?;
    audit::record(
        conn,
        audit::Entry::<ChangeRow, ChangeRow> {
            actor: ctx.actor,
            action: "change.created",
            entity_type: "change",
            entity_id: &row.id,
            before: None,
            after: Some(row),
            at: ctx.now,
        },
    )
}

/// Saves a changed change: its audit row, `control.change.state_changed` when the state moved,
/// and `extra` events.
///
/// # Errors
/// A query failing.
pub fn save(
    conn: &mut AnyConnection,
    before: &ChangeRow,
    after: &ChangeRow,
    action: &str,
    extra: &[Envelope],
    ctx: Context<'_>,
) -> QueryResult<()> {
    diesel::update(changes::table.find(&after.id))
        .set(after)
        .execute(conn)?;
    audit::record(
        conn,
        audit::Entry {
            actor: ctx.actor,
            action: &format!("change.{action}"),
            entity_type: "change",
            entity_id: &after.id,
            before: Some(before),
            after: Some(after),
            at: ctx.now,
        },
    )?;
    let mut events = extra.to_vec();
    if before.state != after.state {
        events.push(envelope(
            after,
            "control.change.state_changed",
            ChangeStateChanged {
                id: after.id.clone(),
                number: after.number.clone(),
                from: before.state.clone(),
                to: after.state.clone(),
                version: after.version,
            }
            .encode_to_vec(),
            ctx,
        ));
    }
    outbox::enqueue_all(conn, &events)
}

/// Loads a change to change it (locked on PostgreSQL).
///
/// # Errors
/// A query failing.
pub fn load_for_update(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<ChangeRow>> {
    match conn {
        AnyConnection::Postgresql(pg) => changes::table
            .find(id)
            .select(ChangeRow::as_select())
            .for_update()
            .first(pg)
            .optional(),
        AnyConnection::Sqlite(sqlite) => changes::table
            .find(id)
            .select(ChangeRow::as_select())
            .first(sqlite)
            .optional(),
    }
}

/// Loads a change.
///
/// # Errors
/// A query failing.
pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<ChangeRow>> {
    changes::table
        .find(id)
        .select(ChangeRow::as_select())
        .first(conn)
        .optional()
}

/// Changes, newest first, optionally in one state; cursor by id.
///
/// # Errors
/// A query failing.
pub fn list(
    conn: &mut AnyConnection,
    state: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<ChangeRow>> {
    let mut query = changes::table
        .select(ChangeRow::as_select())
        .order(changes::id.desc())
        .limit(limit)
        .into_boxed::<<AnyConnection as diesel::Connection>::Backend>();
    if let Some(state) = state {
        query = query.filter(changes::state.eq(state.to_owned()));
    }
    if let Some(before) = before {
        query = query.filter(changes::id.lt(before.to_owned()));
    }
    query.load(conn)
}

/// The states whose window still matters (not final, not refused).
pub const ACTIVE: [&str; 6] = [
    "draft",
    "submitted",
    "assessed",
    "approved",
    "scheduled",
    "implementing",
];

/// The CI ids of a change.
pub fn cis_of(row: &ChangeRow) -> Vec<String> {
    serde_json::from_str(&row.configuration_items).unwrap_or_default()
}

/// How many failed changes touched any of `cis`.
///
/// # Errors
/// A query failing.
pub fn failures_on(conn: &mut AnyConnection, cis: &[String], except: &str) -> QueryResult<usize> {
    if cis.is_empty() {
        return Ok(0);
    }
    let failed: Vec<ChangeRow> = changes::table
        .filter(
            changes::state
                .eq("failed")
                .or(changes::review.like("%\"successful\":false%")),
        )
        .filter(changes::id.ne(except))
        .select(ChangeRow::as_select())
        .load(conn)?;
    Ok(failed
        .iter()
        .filter(|row| cis_of(row).iter().any(|ci| cis.contains(ci)))
        .count())
}

/// Changes in an active state whose window overlaps `[start, end)`.
///
/// # Errors
/// A query failing.
pub fn overlapping(
    conn: &mut AnyConnection,
    start: NaiveDateTime,
    end: NaiveDateTime,
    states: &[&str],
) -> QueryResult<Vec<ChangeRow>> {
    changes::table
        .filter(changes::window_start.lt(end))
        .filter(changes::window_end.gt(start))
        .filter(changes::state.eq_any(states.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()))
        .order((changes::window_start.asc(), changes::id.asc()))
        .select(ChangeRow::as_select())
        .load(conn)
}

/// What trends are computed from: state, category, CIs and creation time of each change
/// created in `[from, to)`.
///
/// # Errors
/// A query failing.
pub fn created_between(
    conn: &mut AnyConnection,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<(String, String, String, NaiveDateTime)>> {
    changes::table
        .filter(changes::created_at.ge(from))
        .filter(changes::created_at.lt(to))
        .select((
            changes::state,
            changes::category,
            changes::configuration_items,
            changes::created_at,
        ))
        .load(conn)
}

#[cfg(test)]
mod tests {
    use crate::domain::change::ChangeState;

    /// Every state a change can still be carried out from keeps its window in the calendar and in
    /// conflict checks: a change before its board (assessed) once fell out of both.
    #[test]
    fn every_state_short_of_the_end_is_active() {
        let ended = [
            "rejected",
            "implemented",
            "failed",
            "reviewed",
            "closed",
            "cancelled",
        ];
        for state in ChangeState::ALL {
            let name = state.as_str();
            assert_eq!(
                super::ACTIVE.contains(&name),
                !ended.contains(&name),
                "{name}"
            );
        }
    }
}
