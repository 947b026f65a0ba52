//! The audit trail: every state change writes one row (who, when, what, before and after) in the
//! same transaction as the change, so the trail and the data never disagree.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::db::AnyConnection;
use crate::schema::audit_log;

/// One audit row as read back.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    /// Row id.
    pub id: String,
    /// When it happened (UTC).
    pub at: chrono::NaiveDateTime,
    /// Who did it (the token's subject, or `system:<component>`).
    pub actor: String,
    /// What was done, e.g. `incident.assigned`.
    pub action: String,
    /// The kind of record, e.g. `incident`.
    pub entity_type: String,
    /// The record's id.
    pub entity_id: String,
    /// The record before, as JSON (none on creation).
    pub before: Option<String>,
    /// The record after, as JSON.
    pub after: Option<String>,
    /// The trace id of the request that did it.
    pub trace_id: Option<String>,
}

/// What to record.
#[derive(Debug)]
pub struct Entry<'a, B: Serialize, A: Serialize> {
    /// Who.
    pub actor: &'a str,
    /// What, e.g. `incident.assigned`.
    pub action: &'a str,
    /// The kind of record.
    pub entity_type: &'a str,
    /// The record's id.
    pub entity_id: &'a str,
    /// The record before the change.
    pub before: Option<&'a B>,
    /// The record after the change.
    pub after: Option<&'a A>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Writes one audit row; call it inside the transaction of the change.
///
/// # Errors
/// The insert failing (the transaction then rolls back, change and all).
pub fn record<B: Serialize, A: Serialize>(
    conn: &mut AnyConnection,
    entry: Entry<'_, B, A>,
) -> QueryResult<()> {
    record_all(conn, [entry])
}

/// Writes the audit row of a change by `actor` to the record `kind` `id`, with the record as it
/// is after the change; call it inside the transaction of the change.
///
/// # Errors
/// The insert failing (the transaction then rolls back, change and all).
pub fn record_after<A: Serialize>(
    conn: &mut AnyConnection,
    actor: &str,
    action: &str,
    kind: &str,
    id: &str,
    after: &A,
    at: DateTime<Utc>,
) -> QueryResult<()> {
    record(
        conn,
        Entry::<A, A> {
            actor,
            action,
            entity_type: kind,
            entity_id: id,
            before: None,
            after: Some(after),
            at,
        },
    )
}

/// Writes the audit rows of several changes in one statement; call it inside their transaction.
///
/// # Errors
/// The insert failing (the transaction then rolls back, changes and all).
pub fn record_all<'a, B: Serialize + 'a, A: Serialize + 'a>(
    conn: &mut AnyConnection,
    entries: impl IntoIterator<Item = Entry<'a, B, A>>,
) -> QueryResult<()> {
    let to_json = |value: Option<&dyn erased::Json>| value.map(erased::Json::to_json);
    let trace_id = crate::telemetry::current_trace_id();
    let trace_id = (trace_id != "-").then_some(trace_id);
    let rows: Vec<_> = entries
        .into_iter()
        .map(|entry| {
            (
                audit_log::id.eq(uuid::Uuid::now_v7().to_string()),
                audit_log::at.eq(entry.at.naive_utc()),
                audit_log::actor.eq(entry.actor),
                audit_log::action.eq(entry.action),
                audit_log::entity_type.eq(entry.entity_type),
                audit_log::entity_id.eq(entry.entity_id),
                audit_log::before.eq(to_json(entry.before.map(|b| b as &dyn erased::Json))),
                audit_log::after.eq(to_json(entry.after.map(|a| a as &dyn erased::Json))),
                audit_log::trace_id.eq(trace_id.clone()),
            )
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    crate::per_backend!(conn, c => diesel::insert_into(audit_log::table).values(&rows).execute(c))?;
    Ok(())
}

/// The trail of one record, oldest first.
///
/// # Errors
/// The query failing.
pub fn list_for(
    conn: &mut AnyConnection,
    entity_type: &str,
    entity_id: &str,
) -> QueryResult<Vec<AuditRow>> {
    audit_log::table
        .filter(audit_log::entity_type.eq(entity_type))
        .filter(audit_log::entity_id.eq(entity_id))
        .order((audit_log::at.asc(), audit_log::id.asc()))
        .select(AuditRow::as_select())
        .load(conn)
}

mod erased {
    pub trait Json {
        fn to_json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> String {
            serde_json::to_string(self).unwrap_or_else(|_| "null".to_owned())
        }
    }
}
