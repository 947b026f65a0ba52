//! Problems and known errors: rows, their incidents, their activity, numbering, known-error
//! search (PostgreSQL full text; on SQLite every word must appear), and incident trends.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;
use meridian_chassis::{audit, outbox};
use serde::Serialize;
use serde_json::Value;

use super::schema::{incidents, problem_activity, problem_incidents, problems};

/// A problem.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = problems, treat_none_as_null = true)]
pub struct ProblemRow {
    /// Id.
    pub id: String,
    /// `PRB0001000`.
    pub number: String,
    /// Summary.
    pub title: String,
    /// Details.
    pub description: String,
    /// The service.
    pub service: Option<String>,
    /// JSON array of CIs.
    pub configuration_items: String,
    /// Its state.
    pub state: String,
    /// `manual` or `trend`.
    pub source: String,
    /// What users see (known error).
    pub symptoms: String,
    /// Why it happens (known error).
    pub root_cause: String,
    /// How to restore service meanwhile (known error).
    pub workaround: String,
    /// The fix.
    pub resolution: String,
    /// Incidents resolved with its workaround.
    pub workaround_uses: i32,
    /// Times its incidents recurred after it was resolved.
    pub recurrences: i32,
    /// Who raised it.
    pub created_by: String,
    /// Raised.
    pub created_at: NaiveDateTime,
    /// Last changed.
    pub updated_at: NaiveDateTime,
    /// Resolved.
    pub resolved_at: Option<NaiveDateTime>,
    /// Increases with every change.
    pub version: i64,
}

impl ProblemRow {
    /// Its CIs.
    pub fn cis(&self) -> Vec<String> {
        serde_json::from_str(&self.configuration_items).unwrap_or_default()
    }
}

/// An activity row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = problem_activity)]
pub struct ActivityRow {
    /// Id.
    pub id: String,
    /// The problem.
    pub problem_id: String,
    /// When.
    pub at: NaiveDateTime,
    /// Who.
    pub actor: String,
    /// `created`, `state_changed`, `analysis`, `note`, `incident_linked`, `workaround_used`, `recurred`.
    pub kind: String,
    /// JSON.
    pub details: String,
}

/// The next problem number.
///
/// # Errors
/// A query failing.
pub fn next_number(conn: &mut AnyConnection) -> QueryResult<String> {
    super::next_number(conn, "problem", "PRB")
}

/// Records activity on a problem.
///
/// # Errors
/// A query failing.
pub fn activity(
    conn: &mut AnyConnection,
    problem: &str,
    actor: &str,
    kind: &str,
    details: &Value,
    at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(problem_activity::table)
        .values(ActivityRow {
            id: uuid::Uuid::now_v7().to_string(),
            problem_id: problem.to_owned(),
            at: at.naive_utc(),
            actor: actor.to_owned(),
            kind: kind.to_owned(),
            details: details.to_string(),
        })
        .execute(conn)?;
    Ok(())
}

/// Saves a problem (new when `before` is `None`) with its audit row and its event.
///
/// # Errors
/// A query failing.
pub fn save(
    conn: &mut AnyConnection,
    before: Option<&ProblemRow>,
    after: &ProblemRow,
    actor: &str,
    event: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    if before.is_some() {
        diesel::update(problems::table.find(&after.id))
            .set(after)
            .execute(conn)?;
    } else {
        diesel::insert_into(problems::table)
            .values(after)
            .execute(conn)?;
    }
    audit::record(
        conn,
        audit::Entry {
            actor,
            action: &format!("problem.{event}"),
            entity_type: "problem",
            entity_id: &after.id,
            before,
            after: Some(after),
            at: now,
        },
    )?;
    let payload = meridian_proto::resolution::v1::ProblemChanged {
        id: after.id.clone(),
        number: after.number.clone(),
        title: after.title.clone(),
        state: after.state.clone(),
        service: after.service.clone().unwrap_or_default(),
        configuration_items: after.cis(),
        known_error: !after.workaround.is_empty(),
    };
    outbox::enqueue(
        conn,
        &meridian_chassis::bus::Envelope {
            id: uuid::Uuid::now_v7(),
            event_type: format!("resolution.problem.{event}"),
            source: "/meridian/resolution".to_owned(),
            subject: after.id.clone(),
            time: now,
            correlation_id: None,
            causation_id: None,
            actor: Some(actor.to_owned()),
            payload: prost_encode(&payload),
        },
    )
}

fn prost_encode(message: &meridian_proto::resolution::v1::ProblemChanged) -> Vec<u8> {
    use meridian_proto::Message;
    message.encode_to_vec()
}

/// A problem by id or number.
///
/// # Errors
/// A query failing.
pub fn find(conn: &mut AnyConnection, key: &str) -> QueryResult<Option<ProblemRow>> {
    problems::table
        .filter(problems::id.eq(key).or(problems::number.eq(key)))
        .select(ProblemRow::as_select())
        .first(conn)
        .optional()
}

/// A problem by id or number, to change it: on PostgreSQL the row stays locked until the
/// transaction ends, so concurrent changes to one problem run one after the other (SQLite has
/// one writer).
///
/// # Errors
/// A query failing.
pub fn find_for_update(conn: &mut AnyConnection, key: &str) -> QueryResult<Option<ProblemRow>> {
    match conn {
        AnyConnection::Postgresql(pg) => problems::table
            .filter(problems::id.eq(key).or(problems::number.eq(key)))
            .select(ProblemRow::as_select())
            .for_update()
            .first(pg)
            .optional(),
        AnyConnection::Sqlite(_) => find(conn, key),
    }
}

/// Problems, by id (optionally in one state), after a cursor.
///
/// # Errors
/// A query failing.
pub fn list(
    conn: &mut AnyConnection,
    state: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<ProblemRow>> {
    let mut query = problems::table
        .select(ProblemRow::as_select())
        .order(problems::id)
        .limit(limit)
        .into_boxed();
    if let Some(state) = state {
        query = query.filter(problems::state.eq(state.to_owned()));
    }
    if let Some(after) = after {
        query = query.filter(problems::id.gt(after.to_owned()));
    }
    query.load(conn)
}

/// Links an incident; `false` when it was linked already.
///
/// # Errors
/// A query failing.
pub fn link(
    conn: &mut AnyConnection,
    problem: &str,
    incident: &str,
    by: &str,
    at: DateTime<Utc>,
) -> QueryResult<bool> {
    let exists = problem_incidents::table
        .find((problem, incident))
        .select(problem_incidents::incident_id)
        .first::<String>(conn)
        .optional()?
        .is_some();
    if exists {
        return Ok(false);
    }
    diesel::insert_into(problem_incidents::table)
        .values((
            problem_incidents::problem_id.eq(problem),
            problem_incidents::incident_id.eq(incident),
            problem_incidents::linked_by.eq(by),
            problem_incidents::linked_at.eq(at.naive_utc()),
        ))
        .execute(conn)?;
    Ok(true)
}

/// The incidents of a problem: (id, number, state).
///
/// # Errors
/// A query failing.
pub fn incidents_of(
    conn: &mut AnyConnection,
    problem: &str,
) -> QueryResult<Vec<(String, String, String)>> {
    problem_incidents::table
        .inner_join(incidents::table.on(incidents::id.eq(problem_incidents::incident_id)))
        .filter(problem_incidents::problem_id.eq(problem))
        .order(incidents::created_at)
        .select((incidents::id, incidents::number, incidents::state))
        .load(conn)
}

/// A problem's activity, oldest first.
///
/// # Errors
/// A query failing.
pub fn history(conn: &mut AnyConnection, problem: &str) -> QueryResult<Vec<ActivityRow>> {
    problem_activity::table
        .filter(problem_activity::problem_id.eq(problem))
        .order((problem_activity::at, problem_activity::id))
        .select(ActivityRow::as_select())
        .load(conn)
}

/// Known errors (problems with a workaround) matching the words of `text` (PostgreSQL full-text
/// search; on SQLite every word must appear, case-insensitive), a CI and a service.
///
/// # Errors
/// A query failing.
pub fn search(
    conn: &mut AnyConnection,
    text: Option<&str>,
    ci: Option<&str>,
    service: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<ProblemRow>> {
    let words: Vec<String> = text
        .unwrap_or_default()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .take(20)
        .collect();
    let mut rows: Vec<ProblemRow> = match conn {
        AnyConnection::Postgresql(pg) => {
            let mut query = problems::table
                .filter(problems::workaround.ne(""))
                .select(ProblemRow::as_select())
                .into_boxed();
            if !words.is_empty() {
                query = query.filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                    "to_tsvector('english', title || ' ' || symptoms || ' ' || root_cause || ' ' || workaround) @@ plainto_tsquery('english', ",
                ).bind::<diesel::sql_types::Text, _>(words.join(" ")).sql(")"));
            }
            query
                .order(problems::updated_at.desc())
                .limit(limit * 4)
                .load(pg)?
        }
        AnyConnection::Sqlite(sqlite) => {
            let mut query = problems::table
                .filter(problems::workaround.ne(""))
                .select(ProblemRow::as_select())
                .into_boxed();
            for word in &words {
                let pattern = format!("%{}%", word.replace(['%', '_'], ""));
                query = query.filter(
                    problems::title
                        .like(pattern.clone())
                        .or(problems::symptoms.like(pattern.clone()))
                        .or(problems::root_cause.like(pattern.clone()))
                        .or(problems::workaround.like(pattern)),
                );
            }
            query
                .order(problems::updated_at.desc())
                .limit(limit * 4)
                .load(sqlite)?
        }
    };
    rows.retain(|p| {
        ci.is_none_or(|ci| p.cis().iter().any(|c| c == ci))
            && service.is_none_or(|s| p.service.as_deref() == Some(s))
    });
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(rows)
}

/// Problems resolved since `since` (resolved or closed now) that an incident on `cis` and
/// `service` recurs: a problem naming CIs matches an incident sharing one of them; a problem
/// naming only a service matches an incident on that service.
///
/// # Errors
/// A query failing.
pub fn fixed_touching(
    conn: &mut AnyConnection,
    cis: &[String],
    service: Option<&str>,
    since: NaiveDateTime,
) -> QueryResult<Vec<ProblemRow>> {
    let rows: Vec<ProblemRow> = problems::table
        .filter(problems::state.eq_any(["resolved", "closed"]))
        .filter(problems::resolved_at.ge(since))
        .order(problems::created_at)
        .select(ProblemRow::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter(|p| {
            let own = p.cis();
            if own.is_empty() {
                service.is_some() && p.service.as_deref() == service
            } else {
                own.iter().any(|c| cis.contains(c))
            }
        })
        .collect())
}

/// The actor recorded when an incident is found to recur a fixed problem.
pub const RECURRENCE_ACTOR: &str = "system:recurrence";

/// Links an incident to a problem; on a fixed problem the incident is a recurrence and the review
/// reopens (under investigation again, the recurrence counted). The problem after it.
///
/// # Errors
/// A query failing.
pub fn link_incident(
    conn: &mut AnyConnection,
    problem: &ProblemRow,
    incident: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> QueryResult<ProblemRow> {
    if !link(conn, &problem.id, incident, actor, now)? {
        return Ok(problem.clone());
    }
    activity(
        conn,
        &problem.id,
        actor,
        "incident_linked",
        &serde_json::json!({"incident": incident}),
        now,
    )?;
    if !matches!(problem.state.as_str(), "resolved" | "closed") {
        return Ok(problem.clone());
    }
    let after = ProblemRow {
        state: crate::domain::problem::ProblemState::UnderInvestigation
            .as_str()
            .to_owned(),
        recurrences: problem.recurrences + 1,
        updated_at: now.naive_utc(),
        version: problem.version + 1,
        ..problem.clone()
    };
    save(conn, Some(problem), &after, actor, "reopened", now)?;
    activity(
        conn,
        &problem.id,
        actor,
        "recurred",
        &serde_json::json!({"incident": incident, "was": problem.state}),
        now,
    )?;
    Ok(after)
}

/// New incidents that recur a problem resolved within the window (`since`): each is linked to
/// it, which reopens its review. How many links were made.
///
/// # Errors
/// A query failing.
pub fn detect_recurrences(
    conn: &mut AnyConnection,
    created: &[&crate::domain::incident::Incident],
    since: NaiveDateTime,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    let mut linked = 0;
    for incident in created {
        let id = incident.id.to_string();
        let touching = fixed_touching(
            conn,
            &incident.configuration_items,
            incident.service.as_deref(),
            since,
        )?;
        // Asked afresh for each incident: a problem an earlier one reopened is no longer fixed.
        for found in touching {
            // Locked and read again: someone may be changing it at this moment.
            let Some(problem) = find_for_update(conn, &found.id)? else {
                continue;
            };
            link_incident(conn, &problem, &id, RECURRENCE_ACTOR, now)?;
            linked += 1;
        }
    }
    Ok(linked)
}

/// An incident as trends need it: id, number, service, CIs (JSON).
pub type Recent = (String, String, Option<String>, String);

/// Incidents created since `since`.
///
/// # Errors
/// A query failing.
pub fn incidents_since(conn: &mut AnyConnection, since: NaiveDateTime) -> QueryResult<Vec<Recent>> {
    incidents::table
        .filter(incidents::created_at.ge(since))
        .order(incidents::created_at)
        .select((
            incidents::id,
            incidents::number,
            incidents::service,
            incidents::configuration_items,
        ))
        .load(conn)
}

/// The ids of incidents linked to an open problem.
///
/// # Errors
/// A query failing.
pub fn explained(conn: &mut AnyConnection) -> QueryResult<Vec<String>> {
    problem_incidents::table
        .inner_join(problems::table.on(problems::id.eq(problem_incidents::problem_id)))
        .filter(problems::state.eq_any(["new", "under_investigation", "known_error"]))
        .select(problem_incidents::incident_id)
        .load(conn)
}
