//! Ticket history, the clocks computed from it, and breaches.
//!
//! [`recompute`] rebuilds a ticket's clocks from its whole history after each event; [`settle`]
//! raises the warning and the breach of a clock once (with their events and the breach record),
//! and sets when the clock must be looked at next, which the scheduler does ([`due`]).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use meridian_chassis::bus::Envelope;
use meridian_chassis::db::AnyConnection;
use meridian_chassis::{audit, outbox};
use meridian_proto::Message;
use meridian_proto::common::v1::Timestamp;
use meridian_proto::service_level::v1::SlaClockEvent;
use serde::Serialize;
use uuid::Uuid;

use super::SOURCE;
use super::agreements;
use super::schema::{sl_breaches, sl_clocks, sl_ticket_events};
use crate::domain::clock::{self, Metric, Moment, Stage, TicketState};

/// One event of a ticket's history.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sl_ticket_events)]
pub struct TicketEventRow {
    /// The bus message's id.
    pub id: String,
    /// The ticket.
    pub ticket_id: String,
    /// `incident` or `request`.
    pub ticket_kind: String,
    /// Its number.
    pub number: String,
    /// When it happened.
    pub at: NaiveDateTime,
    /// The event's type.
    pub event_type: String,
    /// The ticket's state after it.
    pub state: String,
    /// Why pending, when pending.
    pub pending_reason: String,
    /// Its priority after it.
    pub priority: i32,
    /// Its group after it.
    pub group_name: String,
    /// Its service after it.
    pub service: String,
    /// A major incident.
    pub major: bool,
}

/// A clock as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = sl_clocks, treat_none_as_null = true)]
pub struct ClockRow {
    /// Id.
    pub id: String,
    /// The ticket.
    pub ticket_id: String,
    /// Its number.
    pub number: String,
    /// The agreement.
    pub agreement_id: String,
    /// `response` or `resolution`.
    pub metric: String,
    /// The service.
    pub service: String,
    /// The ticket's priority.
    pub priority: i32,
    /// The target, seconds of working time.
    pub target_seconds: i64,
    /// Counted so far.
    pub elapsed_seconds: i64,
    /// `running`, `paused`, `met`, `breached`, `cancelled`.
    pub stage: String,
    /// When it breaches (running).
    pub due_at: Option<NaiveDateTime>,
    /// When it warns (running).
    pub warn_at: Option<NaiveDateTime>,
    /// When it stopped.
    pub stopped_at: Option<NaiveDateTime>,
    /// The warning was raised.
    pub warned: bool,
    /// The breach was raised.
    pub breached: bool,
    /// When the scheduler must look at it next.
    pub next_check: Option<NaiveDateTime>,
    /// When it was last computed.
    pub computed_at: NaiveDateTime,
}

/// A breach.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = sl_breaches)]
pub struct BreachRow {
    /// Id.
    pub id: String,
    /// The clock.
    pub clock_id: String,
    /// The ticket.
    pub ticket_id: String,
    /// Its number.
    pub number: String,
    /// The agreement.
    pub agreement_id: String,
    /// `response` or `resolution`.
    pub metric: String,
    /// The service.
    pub service: String,
    /// When the target was due.
    pub due_at: NaiveDateTime,
    /// When the breach was detected.
    pub detected_at: NaiveDateTime,
    /// Its cause, once investigated.
    pub cause: Option<String>,
    /// The cause's category.
    pub cause_category: Option<String>,
    /// Who investigated.
    pub investigated_by: Option<String>,
    /// When.
    pub investigated_at: Option<NaiveDateTime>,
}

fn naive(at: DateTime<Utc>) -> NaiveDateTime {
    at.naive_utc()
}

/// Records a ticket event; `false` when it was already recorded.
///
/// # Errors
/// A query failing.
pub fn add_event(conn: &mut AnyConnection, row: &TicketEventRow) -> QueryResult<bool> {
    let exists = sl_ticket_events::table
        .find(&row.id)
        .select(sl_ticket_events::id)
        .first::<String>(conn)
        .optional()?
        .is_some();
    if exists {
        return Ok(false);
    }
    diesel::insert_into(sl_ticket_events::table)
        .values(row)
        .execute(conn)?;
    Ok(true)
}

/// A ticket's history, oldest first.
///
/// # Errors
/// A query failing.
pub fn history(conn: &mut AnyConnection, ticket_id: &str) -> QueryResult<Vec<TicketEventRow>> {
    sl_ticket_events::table
        .filter(sl_ticket_events::ticket_id.eq(ticket_id))
        .order((sl_ticket_events::at.asc(), sl_ticket_events::id.asc()))
        .select(TicketEventRow::as_select())
        .load(conn)
}

fn moment(row: &TicketEventRow) -> Option<Moment> {
    Some(Moment {
        at: meridian_chassis::clock::utc(row.at),
        state: TicketState::parse(&row.state)?,
        pending_reason: row.pending_reason.clone(),
        priority: row.priority,
        group: row.group_name.clone(),
    })
}

/// Recomputes every clock of `ticket_id` from its history at `now`, under the agreements in force
/// for its service now, and settles each (warnings, breaches).
///
/// # Errors
/// A query failing.
pub fn recompute(
    conn: &mut AnyConnection,
    ticket_id: &str,
    now: DateTime<Utc>,
) -> QueryResult<Vec<ClockRow>> {
    let events = history(conn, ticket_id)?;
    let Some(last) = events.last().cloned() else {
        return Ok(Vec::new());
    };
    let moments: Vec<Moment> = events.iter().filter_map(moment).collect();
    let mut out = Vec::new();
    for (agreement, calendar) in agreements::in_force(conn, &last.service)? {
        if !agreement.applies_to(&last.ticket_kind) {
            continue;
        }
        let terms = agreement.agreement(calendar);
        if let Some(group) = &terms.group
            && !moments.iter().any(|m| m.group == *group)
        {
            continue;
        }
        for metric in [Metric::Response, Metric::Resolution] {
            let Some(computed) = clock::compute(&moments, &terms, metric, now) else {
                continue;
            };
            let existing: Option<ClockRow> = sl_clocks::table
                .filter(sl_clocks::ticket_id.eq(ticket_id))
                .filter(sl_clocks::agreement_id.eq(&agreement.id))
                .filter(sl_clocks::metric.eq(metric.as_str()))
                .select(ClockRow::as_select())
                .first(conn)
                .optional()?;
            let mut row = ClockRow {
                id: existing
                    .as_ref()
                    .map_or_else(|| Uuid::now_v7().to_string(), |e| e.id.clone()),
                ticket_id: ticket_id.to_owned(),
                number: last.number.clone(),
                agreement_id: agreement.id.clone(),
                metric: metric.as_str().to_owned(),
                service: last.service.clone(),
                priority: last.priority,
                target_seconds: computed.target.num_seconds(),
                elapsed_seconds: computed.elapsed.num_seconds(),
                stage: computed.stage.as_str().to_owned(),
                due_at: computed.due_at.map(naive),
                warn_at: computed.warn_at.map(naive),
                stopped_at: computed.stopped_at.map(naive),
                warned: existing.as_ref().is_some_and(|e| e.warned),
                breached: existing.as_ref().is_some_and(|e| e.breached),
                next_check: None,
                computed_at: naive(now),
            };
            // A clock brought back under its target (a lower priority) may warn and breach again.
            if computed.stage == Stage::Running && computed.warn_at.is_some_and(|w| w > now) {
                row.warned = false;
            }
            if existing.is_some() {
                diesel::update(sl_clocks::table.find(&row.id))
                    .set(&row)
                    .execute(conn)?;
            } else {
                diesel::insert_into(sl_clocks::table)
                    .values(&row)
                    .execute(conn)?;
            }
            out.push(settle(conn, row, &agreement, now)?);
        }
    }
    Ok(out)
}

fn clock_event(
    row: &ClockRow,
    agreement: &agreements::AgreementRow,
    event_type: &str,
    now: DateTime<Utc>,
) -> Envelope {
    Envelope {
        id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        source: SOURCE.to_owned(),
        subject: row.ticket_id.clone(),
        time: now,
        correlation_id: None,
        causation_id: None,
        actor: Some("system:sla".to_owned()),
        payload: SlaClockEvent {
            clock_id: row.id.clone(),
            ticket_id: row.ticket_id.clone(),
            number: row.number.clone(),
            agreement_id: agreement.id.clone(),
            agreement_name: agreement.name.clone(),
            agreement_kind: agreement.kind.clone(),
            metric: row.metric.clone(),
            service: row.service.clone(),
            priority: row.priority,
            due_at: row.due_at.map(|d| Timestamp {
                unix_micros: d.and_utc().timestamp_micros(),
            }),
            elapsed_seconds: row.elapsed_seconds,
            target_seconds: row.target_seconds,
        }
        .encode_to_vec(),
    }
}

/// Raises what is due of `row` at `now` (once each: the warning, the breach with its record),
/// then stores when it needs looking at next.
///
/// # Errors
/// A query failing.
pub fn settle(
    conn: &mut AnyConnection,
    mut row: ClockRow,
    agreement: &agreements::AgreementRow,
    now: DateTime<Utc>,
) -> QueryResult<ClockRow> {
    let at = naive(now);
    let running = row.stage == Stage::Running.as_str();
    if running && !row.warned && row.warn_at.is_some_and(|w| w <= at) {
        row.warned = true;
        outbox::enqueue(
            conn,
            &clock_event(&row, agreement, "service_level.sla.warning", now),
        )?;
    }
    let late =
        row.stage == Stage::Breached.as_str() || (running && row.due_at.is_some_and(|d| d <= at));
    if late && !row.breached {
        row.breached = true;
        row.stage = Stage::Breached.as_str().to_owned();
        let due = row.due_at.or(row.stopped_at).unwrap_or(at);
        let breach = BreachRow {
            id: Uuid::now_v7().to_string(),
            clock_id: row.id.clone(),
            ticket_id: row.ticket_id.clone(),
            number: row.number.clone(),
            agreement_id: row.agreement_id.clone(),
            metric: row.metric.clone(),
            service: row.service.clone(),
            due_at: due,
            detected_at: at,
            cause: None,
            cause_category: None,
            investigated_by: None,
            investigated_at: None,
        };
        let exists = sl_breaches::table
            .filter(sl_breaches::clock_id.eq(&row.id))
            .select(sl_breaches::id)
            .first::<String>(conn)
            .optional()?
            .is_some();
        if !exists {
            diesel::insert_into(sl_breaches::table)
                .values(&breach)
                .execute(conn)?;
            audit::record(
                conn,
                audit::Entry::<BreachRow, BreachRow> {
                    actor: "system:sla",
                    action: "sla.breached",
                    entity_type: "breach",
                    entity_id: &breach.id,
                    before: None,
                    after: Some(&breach),
                    at: now,
                },
            )?;
        }
        outbox::enqueue(
            conn,
            &clock_event(&row, agreement, "service_level.sla.breached", now),
        )?;
    }
    let still_running = row.stage == Stage::Running.as_str();
    row.next_check = if still_running {
        [
            (!row.warned).then_some(row.warn_at).flatten(),
            (!row.breached).then_some(row.due_at).flatten(),
        ]
        .into_iter()
        .flatten()
        .min()
    } else {
        None
    };
    diesel::update(sl_clocks::table.find(&row.id))
        .set((
            sl_clocks::warned.eq(row.warned),
            sl_clocks::breached.eq(row.breached),
            sl_clocks::stage.eq(&row.stage),
            sl_clocks::next_check.eq(row.next_check),
        ))
        .execute(conn)?;
    Ok(row)
}

/// Clocks that need looking at (a warning or a breach due at or before `now`), taken for this
/// transaction (PostgreSQL skips those another replica holds), earliest first.
///
/// # Errors
/// A query failing.
pub fn due(conn: &mut AnyConnection, now: DateTime<Utc>, limit: i64) -> QueryResult<Vec<ClockRow>> {
    let due = sl_clocks::next_check.le(naive(now));
    match conn {
        AnyConnection::Postgresql(pg) => sl_clocks::table
            .filter(due)
            .order(sl_clocks::next_check.asc())
            .limit(limit)
            .select(ClockRow::as_select())
            .for_update()
            .skip_locked()
            .load(pg),
        AnyConnection::Sqlite(sqlite) => sl_clocks::table
            .filter(due)
            .order(sl_clocks::next_check.asc())
            .limit(limit)
            .select(ClockRow::as_select())
            .load(sqlite),
    }
}

/// The earliest time a clock needs looking at.
///
/// # Errors
/// A query failing.
pub fn next_check(conn: &mut AnyConnection) -> QueryResult<Option<DateTime<Utc>>> {
    let at: Option<NaiveDateTime> = sl_clocks::table
        .select(diesel::dsl::min(sl_clocks::next_check))
        .first(conn)?;
    Ok(at.map(meridian_chassis::clock::utc))
}

/// Filters of [`list`].
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Of this ticket.
    pub ticket: Option<String>,
    /// Of this service.
    pub service: Option<String>,
    /// In this stage.
    pub stage: Option<String>,
    /// After this id.
    pub after: Option<String>,
    /// Page size.
    pub limit: i64,
}

/// Clocks, by id.
///
/// # Errors
/// A query failing.
pub fn list(conn: &mut AnyConnection, filter: &Filter) -> QueryResult<Vec<ClockRow>> {
    let mut query = sl_clocks::table
        .select(ClockRow::as_select())
        .order(sl_clocks::id)
        .limit(filter.limit)
        .into_boxed();
    if let Some(ticket) = &filter.ticket {
        query = query.filter(
            sl_clocks::ticket_id
                .eq(ticket.clone())
                .or(sl_clocks::number.eq(ticket.clone())),
        );
    }
    if let Some(service) = &filter.service {
        query = query.filter(sl_clocks::service.eq(service.clone()));
    }
    if let Some(stage) = &filter.stage {
        query = query.filter(sl_clocks::stage.eq(stage.clone()));
    }
    if let Some(after) = &filter.after {
        query = query.filter(sl_clocks::id.gt(after.clone()));
    }
    query.load(conn)
}

/// Breaches of a service (all when `None`) whose due time is in `[from, to)`, oldest first.
///
/// # Errors
/// A query failing.
pub fn breaches(
    conn: &mut AnyConnection,
    service: Option<&str>,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<BreachRow>> {
    let mut query = sl_breaches::table
        .filter(sl_breaches::due_at.ge(from))
        .filter(sl_breaches::due_at.lt(to))
        .select(BreachRow::as_select())
        .order((sl_breaches::due_at.asc(), sl_breaches::id.asc()))
        .into_boxed();
    if let Some(service) = service {
        query = query.filter(sl_breaches::service.eq(service.to_owned()));
    }
    query.load(conn)
}

/// One breach.
///
/// # Errors
/// A query failing.
pub fn breach(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<BreachRow>> {
    sl_breaches::table
        .find(id)
        .select(BreachRow::as_select())
        .first(conn)
        .optional()
}

/// Records a breach's investigation (its cause).
///
/// # Errors
/// A query failing.
pub fn investigate(
    conn: &mut AnyConnection,
    before: &BreachRow,
    cause: &str,
    category: &str,
    by: &str,
    now: DateTime<Utc>,
) -> QueryResult<BreachRow> {
    let after = BreachRow {
        cause: Some(cause.to_owned()),
        cause_category: Some(category.to_owned()),
        investigated_by: Some(by.to_owned()),
        investigated_at: Some(naive(now)),
        ..before.clone()
    };
    diesel::update(sl_breaches::table.find(&before.id))
        .set((
            sl_breaches::cause.eq(&after.cause),
            sl_breaches::cause_category.eq(&after.cause_category),
            sl_breaches::investigated_by.eq(&after.investigated_by),
            sl_breaches::investigated_at.eq(after.investigated_at),
        ))
        .execute(conn)?;
    audit::record(
        conn,
        audit::Entry {
            actor: by,
            action: "breach.investigated",
            entity_type: "breach",
            entity_id: &before.id,
            before: Some(before),
            after: Some(&after),
            at: now,
        },
    )?;
    Ok(after)
}

/// The tickets of `service` that are still open (their last event is not resolved, closed or
/// cancelled).
///
/// # Errors
/// A query failing.
pub fn open_tickets(conn: &mut AnyConnection, service: &str) -> QueryResult<Vec<String>> {
    let ids: Vec<String> = sl_ticket_events::table
        .filter(sl_ticket_events::service.eq(service))
        .select(sl_ticket_events::ticket_id)
        .distinct()
        .load(conn)?;
    let mut open = Vec::new();
    for id in ids {
        let last: Option<String> = sl_ticket_events::table
            .filter(sl_ticket_events::ticket_id.eq(&id))
            .order((sl_ticket_events::at.desc(), sl_ticket_events::id.desc()))
            .select(sl_ticket_events::state)
            .first(conn)
            .optional()?;
        if last.is_some_and(|s| !matches!(s.as_str(), "resolved" | "closed" | "cancelled")) {
            open.push(id);
        }
    }
    Ok(open)
}

/// The clocks of `service` that stopped in `[from, to)` (met or breached there).
///
/// # Errors
/// A query failing.
pub fn stopped_between(
    conn: &mut AnyConnection,
    service: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<ClockRow>> {
    sl_clocks::table
        .filter(sl_clocks::service.eq(service))
        .filter(sl_clocks::stopped_at.ge(from))
        .filter(sl_clocks::stopped_at.lt(to))
        .select(ClockRow::as_select())
        .order(sl_clocks::id)
        .load(conn)
}

/// The clocks of `service` still open and already breached.
///
/// # Errors
/// A query failing.
pub fn open_breached(conn: &mut AnyConnection, service: &str) -> QueryResult<Vec<ClockRow>> {
    sl_clocks::table
        .filter(sl_clocks::service.eq(service))
        .filter(sl_clocks::stopped_at.is_null())
        .filter(sl_clocks::breached.eq(true))
        .select(ClockRow::as_select())
        .order(sl_clocks::id)
        .load(conn)
}

/// The events of `service`'s tickets of `event_type` in `[from, to)`.
///
/// # Errors
/// A query failing.
pub fn events_between(
    conn: &mut AnyConnection,
    service: &str,
    event_type: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<TicketEventRow>> {
    sl_ticket_events::table
        .filter(sl_ticket_events::service.eq(service))
        .filter(sl_ticket_events::event_type.eq(event_type))
        .filter(sl_ticket_events::at.ge(from))
        .filter(sl_ticket_events::at.lt(to))
        .order(sl_ticket_events::at)
        .select(TicketEventRow::as_select())
        .load(conn)
}
