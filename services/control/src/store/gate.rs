//! The change gate's records: its decisions (once per admission review), and what it needs to
//! decide — the change a workload names, and the changes whose CIs cover the workload.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use meridian_chassis::bus::Envelope;
use meridian_chassis::db::AnyConnection;
use meridian_chassis::{audit, outbox};
use meridian_proto::Message;
use meridian_proto::control::v1::{ChangeDeployed, GateBreakGlass};
use serde::Serialize;
use uuid::Uuid;

use super::changes::{self, ChangeRow};
use super::cis::SOURCE;
use super::schema::{changes as changes_table, cis, gate_decisions};
use crate::domain::change::ChangeState;
use crate::domain::gate::Candidate;

/// A decision.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = gate_decisions)]
pub struct DecisionRow {
    /// Id.
    pub id: String,
    /// The AdmissionReview's uid (the API server may ask again with the same one).
    pub review_uid: String,
    /// When.
    pub decided_at: chrono::NaiveDateTime,
    /// Who asked.
    pub username: String,
    /// Their groups, JSON.
    pub groups: String,
    /// `CREATE`, `UPDATE` or `DELETE`.
    pub operation: String,
    /// The workload's kind.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Let through.
    pub allowed: bool,
    /// By a break-glass group.
    pub break_glass: bool,
    /// A dry run (`kubectl --dry-run=server`): nothing happened in the cluster.
    pub dry_run: bool,
    /// The covering change.
    pub change_id: Option<String>,
    /// Why.
    pub reason: String,
}

/// A change as the gate sees it.
pub fn candidate(row: &ChangeRow) -> Candidate {
    Candidate {
        id: row.id.clone(),
        number: row.number.clone(),
        state: row.state.clone(),
        window: row.window_start.zip(row.window_end).map(|(s, e)| {
            (
                meridian_chassis::clock::utc(s),
                meridian_chassis::clock::utc(e),
            )
        }),
    }
}

/// The change a workload's annotation names, by number or id.
///
/// # Errors
/// A query failing.
pub fn named(conn: &mut AnyConnection, key: &str) -> QueryResult<Option<ChangeRow>> {
    changes_table::table
        .filter(changes_table::number.eq(key).or(changes_table::id.eq(key)))
        .select(ChangeRow::as_select())
        .first(conn)
        .optional()
}

/// The CIs that stand for a workload: the `kubernetes_workload` CI named `<namespace>/<name>`
/// and the `kubernetes_namespace` CI named `<namespace>` (as discovery records them).
///
/// # Errors
/// A query failing.
pub fn workload_cis(
    conn: &mut AnyConnection,
    namespace: &str,
    name: &str,
) -> QueryResult<Vec<String>> {
    cis::table
        .filter(
            cis::ci_type
                .eq("kubernetes_workload")
                .and(cis::name.eq(format!("{namespace}/{name}")))
                .or(cis::ci_type
                    .eq("kubernetes_namespace")
                    .and(cis::name.eq(namespace.to_owned()))),
        )
        .select(cis::id)
        .order(cis::id)
        .load(conn)
}

/// Changes approved, scheduled or implementing whose window is open at `now` and whose CIs
/// include one of `ci_ids`.
///
/// # Errors
/// A query failing.
pub fn covering(
    conn: &mut AnyConnection,
    ci_ids: &[String],
    now: DateTime<Utc>,
) -> QueryResult<Vec<ChangeRow>> {
    if ci_ids.is_empty() {
        return Ok(Vec::new());
    }
    let at = now.naive_utc();
    let states = [
        ChangeState::Approved.as_str(),
        ChangeState::Scheduled.as_str(),
        ChangeState::Implementing.as_str(),
    ];
    Ok(
        changes::overlapping(conn, at, at + chrono::Duration::microseconds(1), &states)?
            .into_iter()
            .filter(|c| changes::cis_of(c).iter().any(|ci| ci_ids.contains(ci)))
            .collect(),
    )
}

/// The decision already made for `review_uid`, if the API server asks again.
///
/// # Errors
/// A query failing.
pub fn by_review(conn: &mut AnyConnection, review_uid: &str) -> QueryResult<Option<DecisionRow>> {
    gate_decisions::table
        .filter(gate_decisions::review_uid.eq(review_uid))
        .select(DecisionRow::as_select())
        .first(conn)
        .optional()
}

/// Records a decision with its audit row and, for a real (not dry-run) pass, its event: the
/// deployment of the covering change (`control.change.deployed`, on the change's history), or a
/// break-glass pass to review (`control.gate.break_glass`).
///
/// # Errors
/// A query failing.
pub fn record(
    conn: &mut AnyConnection,
    row: &DecisionRow,
    change: Option<&Candidate>,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(gate_decisions::table)
        .values(row)
        .execute(conn)?;
    audit::record(
        conn,
        audit::Entry::<DecisionRow, DecisionRow> {
            actor: &row.username,
            action: if row.allowed {
                "gate.allowed"
            } else {
                "gate.denied"
            },
            entity_type: "gate_decision",
            entity_id: &row.id,
            before: None,
            after: Some(row),
            at: now,
        },
    )?;
    if !row.allowed || row.dry_run {
        return Ok(());
    }
    let envelope = |event_type: &str, subject: &str, payload: Vec<u8>| Envelope {
        id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        source: SOURCE.to_owned(),
        subject: subject.to_owned(),
        time: now,
        correlation_id: Some(row.review_uid.clone()),
        causation_id: None,
        actor: Some(row.username.clone()),
        payload,
    };
    if let Some(change) = change {
        audit::record(
            conn,
            audit::Entry::<DecisionRow, DecisionRow> {
                actor: &row.username,
                action: "change.deployed",
                entity_type: "change",
                entity_id: &change.id,
                before: None,
                after: Some(row),
                at: now,
            },
        )?;
        outbox::enqueue(
            conn,
            &envelope(
                "control.change.deployed",
                &change.id,
                ChangeDeployed {
                    change_id: change.id.clone(),
                    number: change.number.clone(),
                    decision_id: row.id.clone(),
                    operation: row.operation.clone(),
                    kind: row.kind.clone(),
                    namespace: row.namespace.clone(),
                    name: row.name.clone(),
                    username: row.username.clone(),
                }
                .encode_to_vec(),
            ),
        )?;
    } else if row.break_glass {
        outbox::enqueue(
            conn,
            &envelope(
                "control.gate.break_glass",
                &row.id,
                GateBreakGlass {
                    decision_id: row.id.clone(),
                    operation: row.operation.clone(),
                    kind: row.kind.clone(),
                    namespace: row.namespace.clone(),
                    name: row.name.clone(),
                    username: row.username.clone(),
                    groups: serde_json::from_str(&row.groups).unwrap_or_default(),
                }
                .encode_to_vec(),
            ),
        )?;
    }
    Ok(())
}

/// Filters of [`list`].
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Only allowed (true) or denied (false).
    pub allowed: Option<bool>,
    /// Only in this namespace.
    pub namespace: Option<String>,
    /// Only under this change.
    pub change_id: Option<String>,
    /// After this id (the cursor).
    pub after: Option<String>,
    /// Page size.
    pub limit: i64,
}

/// Decisions, oldest first.
///
/// # Errors
/// A query failing.
pub fn list(conn: &mut AnyConnection, filter: &Filter) -> QueryResult<Vec<DecisionRow>> {
    let mut query = gate_decisions::table
        .select(DecisionRow::as_select())
        .order(gate_decisions::id)
        .limit(filter.limit)
        .into_boxed();
    if let Some(allowed) = filter.allowed {
        query = query.filter(gate_decisions::allowed.eq(allowed));
    }
    if let Some(namespace) = &filter.namespace {
        query = query.filter(gate_decisions::namespace.eq(namespace.clone()));
    }
    if let Some(change) = &filter.change_id {
        query = query.filter(gate_decisions::change_id.eq(change.clone()));
    }
    if let Some(after) = &filter.after {
        query = query.filter(gate_decisions::id.gt(after.clone()));
    }
    query.load(conn)
}
