//! Incident rows and queries.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use meridian_chassis::audit;
use meridian_chassis::db::AnyConnection;
use meridian_chassis::outbox;
use meridian_chassis::per_backend;
use serde_json::json;
use uuid::Uuid;

use super::schema::{counters, incident_activity, incidents};
use crate::domain::incident::{Incident, IncidentEvent, PendingReason, ResolutionCode, State};
use crate::domain::priority::{Level, Priority};

/// The row of an incident: read, inserted and updated whole.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = incidents, treat_none_as_null = true)]
pub struct IncidentRow {
    id: String,
    number: String,
    title: String,
    description: String,
    caller: String,
    service: Option<String>,
    configuration_items: String,
    category: Option<String>,
    impact: String,
    urgency: String,
    priority: i32,
    priority_override_reason: Option<String>,
    state: String,
    pending_reason: Option<String>,
    assignment_group: Option<String>,
    assignee: Option<String>,
    escalation_level: i32,
    major: bool,
    major_manager: Option<String>,
    resolution_code: Option<String>,
    resolution_notes: Option<String>,
    created_by: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    resolved_at: Option<NaiveDateTime>,
    closed_at: Option<NaiveDateTime>,
    version: i64,
}

fn utc(at: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(at, Utc)
}

fn corrupt(column: &str, value: &str) -> diesel::result::Error {
    diesel::result::Error::DeserializationError(
        format!("incidents.{column} holds an unknown value `{value}`").into(),
    )
}

impl From<&Incident> for IncidentRow {
    fn from(incident: &Incident) -> Self {
        Self {
            id: incident.id.to_string(),
            number: incident.number.clone(),
            title: incident.title.clone(),
            description: incident.description.clone(),
            caller: incident.caller.clone(),
            service: incident.service.clone(),
            configuration_items: serde_json::to_string(&incident.configuration_items)
                .unwrap_or_else(|_| "[]".to_owned()),
            category: incident.category.clone(),
            impact: incident.impact.as_str().to_owned(),
            urgency: incident.urgency.as_str().to_owned(),
            priority: i32::from(incident.priority.get()),
            priority_override_reason: incident.priority_override_reason.clone(),
            state: incident.state.as_str().to_owned(),
            pending_reason: incident.pending_reason.map(|r| r.as_str().to_owned()),
            assignment_group: incident.assignment_group.clone(),
            assignee: incident.assignee.clone(),
            escalation_level: incident.escalation_level,
            major: incident.major,
            major_manager: incident.major_manager.clone(),
            resolution_code: incident.resolution_code.map(|c| c.as_str().to_owned()),
            resolution_notes: incident.resolution_notes.clone(),
            created_by: incident.created_by.clone(),
            created_at: incident.created_at.naive_utc(),
            updated_at: incident.updated_at.naive_utc(),
            resolved_at: incident.resolved_at.map(|at| at.naive_utc()),
            closed_at: incident.closed_at.map(|at| at.naive_utc()),
            version: incident.version,
        }
    }
}

impl TryFrom<IncidentRow> for Incident {
    type Error = diesel::result::Error;

    fn try_from(row: IncidentRow) -> Result<Self, Self::Error> {
        let level = |column, value: &str| Level::parse(value).ok_or_else(|| corrupt(column, value));
        Ok(Self {
            id: Uuid::parse_str(&row.id).map_err(|_| corrupt("id", &row.id))?,
            number: row.number,
            title: row.title,
            description: row.description,
            caller: row.caller,
            service: row.service,
            configuration_items: serde_json::from_str(&row.configuration_items)
                .map_err(|_| corrupt("configuration_items", &row.configuration_items))?,
            category: row.category,
            impact: level("impact", &row.impact)?,
            urgency: level("urgency", &row.urgency)?,
            priority: Priority::new(i64::from(row.priority))
                .ok_or_else(|| corrupt("priority", &row.priority.to_string()))?,
            priority_override_reason: row.priority_override_reason,
            state: State::parse(&row.state).ok_or_else(|| corrupt("state", &row.state))?,
            pending_reason: row
                .pending_reason
                .map(|r| PendingReason::parse(&r).ok_or_else(|| corrupt("pending_reason", &r)))
                .transpose()?,
            assignment_group: row.assignment_group,
            assignee: row.assignee,
            escalation_level: row.escalation_level,
            major: row.major,
            major_manager: row.major_manager,
            resolution_code: row
                .resolution_code
                .map(|c| ResolutionCode::parse(&c).ok_or_else(|| corrupt("resolution_code", &c)))
                .transpose()?,
            resolution_notes: row.resolution_notes,
            created_by: row.created_by,
            created_at: utc(row.created_at),
            updated_at: utc(row.updated_at),
            resolved_at: row.resolved_at.map(utc),
            closed_at: row.closed_at.map(utc),
            version: row.version,
        })
    }
}

diesel::define_sql_function! {
    fn nextval(sequence: diesel::sql_types::Text) -> diesel::sql_types::BigInt;
}

/// The next human number, `INC0001000` onwards. PostgreSQL uses a sequence (no lock held to
/// commit); SQLite, which has one writer anyway, a counter row.
///
/// # Errors
/// A query failing.
pub fn next_number(conn: &mut AnyConnection) -> QueryResult<String> {
    let mut numbers = next_numbers(conn, 1)?;
    numbers.pop().ok_or(diesel::result::Error::NotFound)
}

#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    value: i64,
}

/// The next `count` human numbers, ascending, in one query.
///
/// # Errors
/// A query failing.
pub fn next_numbers(conn: &mut AnyConnection, count: usize) -> QueryResult<Vec<String>> {
    let wanted = i64::try_from(count).unwrap_or(i64::MAX);
    let mut values: Vec<i64> = match conn {
        AnyConnection::Postgresql(pg) => diesel::sql_query(
            "SELECT nextval('incident_number_seq') AS value FROM generate_series(1, $1)",
        )
        .bind::<diesel::sql_types::BigInt, _>(wanted)
        .load::<Number>(pg)?
        .into_iter()
        .map(|number| number.value)
        .collect(),
        AnyConnection::Sqlite(sqlite) => {
            diesel::update(counters::table.find("incident_number"))
                .set(counters::value.eq(counters::value + wanted))
                .execute(sqlite)?;
            let last: i64 = counters::table
                .find("incident_number")
                .select(counters::value)
                .first(sqlite)?;
            (last - wanted + 1..=last).collect()
        }
    };
    values.sort_unstable();
    Ok(values
        .into_iter()
        .map(|value| format!("INC{value:07}"))
        .collect())
}

/// Who is acting, and on which request.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The token's subject.
    pub actor: &'a str,
    /// When.
    pub now: DateTime<Utc>,
    /// The request's trace id, as correlation id of the events.
    pub correlation_id: Option<&'a str>,
}

/// Stores a new incident with its history, audit row and events.
///
/// # Errors
/// A query failing (nothing is written).
pub fn insert(
    conn: &mut AnyConnection,
    incident: &Incident,
    events: &[IncidentEvent],
    ctx: Context<'_>,
) -> QueryResult<()> {
    insert_all(conn, &[(incident, events, ctx)])
}

/// Stores new incidents with their history, audit rows and events: one statement per table
/// whatever their number.
///
/// # Errors
/// A query failing (nothing is written).
pub fn insert_all(
    conn: &mut AnyConnection,
    created: &[(&Incident, &[IncidentEvent], Context<'_>)],
) -> QueryResult<()> {
    let rows: Vec<IncidentRow> = created
        .iter()
        .map(|(incident, _, _)| IncidentRow::from(*incident))
        .collect();
    per_backend!(conn, c => diesel::insert_into(incidents::table).values(&rows).execute(c))?;
    let changes: Vec<Change<'_>> = created
        .iter()
        .map(|&(after, events, ctx)| Change {
            before: None,
            after,
            events,
            ctx,
        })
        .collect();
    record(conn, &changes)
}

/// Loads an incident to change it. On PostgreSQL the row is locked until the transaction ends,
/// so concurrent commands on one incident run one after the other; SQLite has one writer.
///
/// # Errors
/// A query failing.
pub fn load_for_update(conn: &mut AnyConnection, id: Uuid) -> QueryResult<Option<Incident>> {
    let key = id.to_string();
    let row = match conn {
        AnyConnection::Postgresql(pg) => incidents::table
            .find(key)
            .select(IncidentRow::as_select())
            .for_update()
            .first(pg)
            .optional()?,
        AnyConnection::Sqlite(sqlite) => incidents::table
            .find(key)
            .select(IncidentRow::as_select())
            .first(sqlite)
            .optional()?,
    };
    row.map(Incident::try_from).transpose()
}

/// Loads an incident.
///
/// # Errors
/// A query failing.
pub fn find(conn: &mut AnyConnection, id: Uuid) -> QueryResult<Option<Incident>> {
    incidents::table
        .find(id.to_string())
        .select(IncidentRow::as_select())
        .first(conn)
        .optional()?
        .map(Incident::try_from)
        .transpose()
}

/// Saves a changed incident with its history, audit row and events.
///
/// # Errors
/// A query failing.
pub fn save(
    conn: &mut AnyConnection,
    before: &Incident,
    after: &Incident,
    events: &[IncidentEvent],
    ctx: Context<'_>,
) -> QueryResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    diesel::update(incidents::table.find(after.id.to_string()))
        .set(IncidentRow::from(after))
        .execute(conn)?;
    record(
        conn,
        &[Change {
            before: Some(before),
            after,
            events,
            ctx,
        }],
    )
}

fn details(incident: &Incident, event: &IncidentEvent) -> serde_json::Value {
    match event {
        IncidentEvent::Created => json!({
            "state": incident.state, "priority": incident.priority,
            "assignment_group": incident.assignment_group, "assignee": incident.assignee,
        }),
        IncidentEvent::Updated { fields } => json!({ "fields": fields }),
        IncidentEvent::Assigned {
            previous_group,
            previous_assignee,
        } => json!({
            "assignment_group": incident.assignment_group, "assignee": incident.assignee,
            "previous_group": previous_group, "previous_assignee": previous_assignee,
        }),
        IncidentEvent::StateChanged { from, reason } => {
            json!({ "from": from, "to": incident.state, "reason": reason })
        }
        IncidentEvent::Escalated {
            kind,
            reason,
            previous_group,
        } => json!({
            "kind": kind, "reason": reason, "previous_group": previous_group,
            "assignment_group": incident.assignment_group, "escalation_level": incident.escalation_level,
        }),
        IncidentEvent::PriorityChanged {
            previous,
            override_reason,
        } => {
            json!({ "from": previous, "to": incident.priority, "override_reason": override_reason })
        }
        IncidentEvent::Resolved => json!({
            "resolution_code": incident.resolution_code, "resolution_notes": incident.resolution_notes,
        }),
        IncidentEvent::Closed => json!({}),
        IncidentEvent::Reopened { reason } | IncidentEvent::Cancelled { reason } => {
            json!({ "reason": reason })
        }
        IncidentEvent::MajorDeclared { manager, reason } => {
            json!({ "manager": manager, "reason": reason })
        }
        IncidentEvent::Noted { body, .. } => json!({ "body": body }),
    }
}

/// One incident changed (or created, with no `before`) by `events`.
struct Change<'a> {
    before: Option<&'a Incident>,
    after: &'a Incident,
    events: &'a [IncidentEvent],
    ctx: Context<'a>,
}

/// Writes the history, audit rows and events of `changes`, one statement per table.
fn record(conn: &mut AnyConnection, changes: &[Change<'_>]) -> QueryResult<()> {
    let ids: Vec<String> = changes.iter().map(|c| c.after.id.to_string()).collect();
    let activity: Vec<_> = changes
        .iter()
        .zip(&ids)
        .flat_map(|(change, id)| {
            change.events.iter().map(move |event| {
                (
                    incident_activity::id.eq(Uuid::now_v7().to_string()),
                    incident_activity::incident_id.eq(id),
                    incident_activity::at.eq(change.ctx.now.naive_utc()),
                    incident_activity::actor.eq(change.ctx.actor),
                    incident_activity::kind.eq(event.kind()),
                    incident_activity::details.eq(details(change.after, event).to_string()),
                )
            })
        })
        .collect();
    if !activity.is_empty() {
        per_backend!(conn, c => diesel::insert_into(incident_activity::table).values(&activity).execute(c))?;
    }
    let actions: Vec<String> = changes
        .iter()
        .map(|change| {
            let kind = change.events.first().map_or("changed", IncidentEvent::kind);
            format!("incident.{kind}")
        })
        .collect();
    audit::record_all(
        conn,
        changes
            .iter()
            .zip(&ids)
            .zip(&actions)
            .map(|((change, id), action)| audit::Entry {
                actor: change.ctx.actor,
                action,
                entity_type: "incident",
                entity_id: id,
                before: change.before,
                after: Some(change.after),
                at: change.ctx.now,
            }),
    )?;
    let envelopes: Vec<_> = changes
        .iter()
        .flat_map(|change| {
            crate::events::publish::envelopes(change.after, change.events, change.ctx)
        })
        .collect();
    outbox::enqueue_all(conn, &envelopes)
}

/// One history entry.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = incident_activity)]
pub struct ActivityRow {
    /// Id.
    pub id: String,
    /// Incident.
    pub incident_id: String,
    /// When.
    pub at: NaiveDateTime,
    /// Who.
    pub actor: String,
    /// What kind of entry.
    pub kind: String,
    /// Details, JSON.
    pub details: String,
}

/// An incident's history, oldest first.
///
/// # Errors
/// A query failing.
pub fn history(conn: &mut AnyConnection, id: Uuid) -> QueryResult<Vec<ActivityRow>> {
    incident_activity::table
        .filter(incident_activity::incident_id.eq(id.to_string()))
        .order((incident_activity::at.asc(), incident_activity::id.asc()))
        .select(ActivityRow::as_select())
        .load(conn)
}

/// The orders a list can be sorted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Oldest first.
    CreatedAsc,
    /// Newest first (default).
    CreatedDesc,
    /// Least recently changed first.
    UpdatedAsc,
    /// Most recently changed first.
    UpdatedDesc,
    /// P1 first.
    PriorityAsc,
    /// P5 first.
    PriorityDesc,
}

/// Where the previous page ended: the sort key and id of its last item.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum After {
    /// A time key (created or updated).
    Time(NaiveDateTime, String),
    /// A priority key.
    Priority(i32, String),
}

/// Filters of a list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Any of these states.
    pub states: Vec<State>,
    /// Exactly this priority.
    pub priority: Option<Priority>,
    /// Assigned to.
    pub assignee: Option<String>,
    /// Group.
    pub group: Option<String>,
    /// Service.
    pub service: Option<String>,
    /// Major only / not major.
    pub major: Option<bool>,
    /// Created at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before.
    pub created_to: Option<DateTime<Utc>>,
}

type Db = <AnyConnection as diesel::Connection>::Backend;

/// A page of incidents matching `filter` in `sort` order, after `after`; `limit + 1` rows are
/// read so the caller knows whether another page follows.
///
/// # Errors
/// A query failing.
pub fn list(
    conn: &mut AnyConnection,
    filter: &Filter,
    sort: Sort,
    after: Option<&After>,
    limit: i64,
) -> QueryResult<Vec<Incident>> {
    let mut query = incidents::table
        .select(IncidentRow::as_select())
        .into_boxed::<Db>();
    if !filter.states.is_empty() {
        let states: Vec<&str> = filter.states.iter().map(|s| s.as_str()).collect();
        query = query.filter(incidents::state.eq_any(states));
    }
    if let Some(priority) = filter.priority {
        query = query.filter(incidents::priority.eq(i32::from(priority.get())));
    }
    if let Some(assignee) = &filter.assignee {
        query = query.filter(incidents::assignee.eq(assignee.clone()));
    }
    if let Some(group) = &filter.group {
        query = query.filter(incidents::assignment_group.eq(group.clone()));
    }
    if let Some(service) = &filter.service {
        query = query.filter(incidents::service.eq(service.clone()));
    }
    if let Some(major) = filter.major {
        query = query.filter(incidents::major.eq(major));
    }
    if let Some(from) = filter.created_from {
        query = query.filter(incidents::created_at.ge(from.naive_utc()));
    }
    if let Some(to) = filter.created_to {
        query = query.filter(incidents::created_at.lt(to.naive_utc()));
    }
    // Keyset pagination: (key, id) strictly after the previous page's last item.
    query = match (sort, after) {
        (Sort::CreatedAsc, Some(After::Time(at, id))) => query.filter(
            incidents::created_at.gt(*at).or(incidents::created_at
                .eq(*at)
                .and(incidents::id.gt(id.clone()))),
        ),
        (Sort::CreatedDesc, Some(After::Time(at, id))) => query.filter(
            incidents::created_at.lt(*at).or(incidents::created_at
                .eq(*at)
                .and(incidents::id.lt(id.clone()))),
        ),
        (Sort::UpdatedAsc, Some(After::Time(at, id))) => query.filter(
            incidents::updated_at.gt(*at).or(incidents::updated_at
                .eq(*at)
                .and(incidents::id.gt(id.clone()))),
        ),
        (Sort::UpdatedDesc, Some(After::Time(at, id))) => query.filter(
            incidents::updated_at.lt(*at).or(incidents::updated_at
                .eq(*at)
                .and(incidents::id.lt(id.clone()))),
        ),
        (Sort::PriorityAsc, Some(After::Priority(p, id))) => query.filter(
            incidents::priority
                .gt(*p)
                .or(incidents::priority.eq(*p).and(incidents::id.gt(id.clone()))),
        ),
        (Sort::PriorityDesc, Some(After::Priority(p, id))) => query.filter(
            incidents::priority
                .lt(*p)
                .or(incidents::priority.eq(*p).and(incidents::id.lt(id.clone()))),
        ),
        _ => query,
    };
    query = match sort {
        Sort::CreatedAsc => query.order((incidents::created_at.asc(), incidents::id.asc())),
        Sort::CreatedDesc => query.order((incidents::created_at.desc(), incidents::id.desc())),
        Sort::UpdatedAsc => query.order((incidents::updated_at.asc(), incidents::id.asc())),
        Sort::UpdatedDesc => query.order((incidents::updated_at.desc(), incidents::id.desc())),
        Sort::PriorityAsc => query.order((incidents::priority.asc(), incidents::id.asc())),
        Sort::PriorityDesc => query.order((incidents::priority.desc(), incidents::id.desc())),
    };
    query
        .limit(limit + 1)
        .load::<IncidentRow>(conn)?
        .into_iter()
        .map(Incident::try_from)
        .collect()
}

/// The cursor key of `incident` in `sort` order.
pub fn after(incident: &Incident, sort: Sort) -> After {
    let id = incident.id.to_string();
    match sort {
        Sort::CreatedAsc | Sort::CreatedDesc => After::Time(incident.created_at.naive_utc(), id),
        Sort::UpdatedAsc | Sort::UpdatedDesc => After::Time(incident.updated_at.naive_utc(), id),
        Sort::PriorityAsc | Sort::PriorityDesc => {
            After::Priority(i32::from(incident.priority.get()), id)
        }
    }
}
