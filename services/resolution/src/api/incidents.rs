//! Handlers for `/v1/incidents`: parse, authorise, decide (domain), store (one transaction with
//! history, audit and outbox), respond.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated, Role};
use meridian_chassis::db::AnyConnection;
use meridian_chassis::problem::{InvalidParam, Json, Query, codes};
use meridian_chassis::telemetry::RequestIds;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::problem;
use crate::Resolution;
use crate::domain::incident::{
    Changes, EscalationKind, Incident, IncidentEvent, MajorCriteria, NewIncident, NoteKind,
    PendingReason, ResolutionCode, State,
};
use crate::domain::priority::{Level, Priority, PriorityMatrix};
use crate::store::incidents::{self as store, After, Context, Filter, Sort};

/// Agents work incidents (incident managers and admins too).
#[derive(Debug)]
pub struct Agent;
impl Role for Agent {
    const ANY_OF: &'static [&'static str] = &["agent", "incident-manager"];
}

/// Agents, and requesters who report their own incidents.
#[derive(Debug)]
pub struct Reporter;
impl Role for Reporter {
    const ANY_OF: &'static [&'static str] = &["agent", "incident-manager", "requester"];
}

/// Incident managers declare major incidents.
#[derive(Debug)]
pub struct IncidentManager;
impl Role for IncidentManager {
    const ANY_OF: &'static [&'static str] = &["incident-manager"];
}

// ---------------------------------------------------------------------------------------------
// Validation helpers

const SHORT: usize = 200;
const LONG: usize = 20_000;

struct Check(Vec<InvalidParam>);

impl Check {
    fn new() -> Self {
        Self(Vec::new())
    }

    /// A required text: trimmed, not empty, at most `max` characters.
    fn text(&mut self, name: &str, value: &str, max: usize) -> String {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            self.0.push(InvalidParam::new(name, "must not be empty"));
        } else if trimmed.chars().count() > max {
            self.0.push(InvalidParam::new(
                name,
                format!("must be at most {max} characters"),
            ));
        }
        trimmed.to_owned()
    }

    /// An optional text: empty means none.
    fn optional(&mut self, name: &str, value: Option<&str>, max: usize) -> Option<String> {
        let trimmed = value.map(str::trim).filter(|v| !v.is_empty())?;
        if trimmed.chars().count() > max {
            self.0.push(InvalidParam::new(
                name,
                format!("must be at most {max} characters"),
            ));
        }
        Some(trimmed.to_owned())
    }

    fn items(&mut self, name: &str, items: &[String]) -> Vec<String> {
        if items.len() > 100 {
            self.0
                .push(InvalidParam::new(name, "must list at most 100 items"));
        }
        let mut out: Vec<String> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let item = self.text(&format!("{name}[{i}]"), item, SHORT);
            if !out.contains(&item) {
                out.push(item);
            }
        }
        out
    }

    fn done(self) -> Result<(), Problem> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Problem::invalid(codes::INVALID_BODY, self.0))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Views

/// An incident.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentView {
    /// Id.
    pub id: Uuid,
    /// Human number, e.g. `INC0001000`.
    pub number: String,
    /// Summary.
    pub title: String,
    /// Details.
    pub description: String,
    /// Reporter.
    pub caller: String,
    /// Affected service (catalogue id).
    pub service: Option<String>,
    /// Affected configuration items.
    pub configuration_items: Vec<String>,
    /// Category.
    pub category: Option<String>,
    /// Impact.
    pub impact: Level,
    /// Urgency.
    pub urgency: Level,
    /// Priority, 1 (highest) to 5.
    pub priority: u8,
    /// Set when a person overrode the matrix.
    pub priority_override_reason: Option<String>,
    /// State.
    pub state: State,
    /// Why it waits.
    pub pending_reason: Option<PendingReason>,
    /// Group.
    pub assignment_group: Option<String>,
    /// Person.
    pub assignee: Option<String>,
    /// Hierarchical escalation level.
    pub escalation_level: i32,
    /// Major incident.
    pub major: bool,
    /// Major incident's responsible manager.
    pub major_manager: Option<String>,
    /// How it was resolved.
    pub resolution_code: Option<ResolutionCode>,
    /// What was done.
    pub resolution_notes: Option<String>,
    /// Who recorded it.
    pub created_by: String,
    /// When recorded.
    pub created_at: DateTime<Utc>,
    /// When last changed.
    pub updated_at: DateTime<Utc>,
    /// When resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// When closed or cancelled.
    pub closed_at: Option<DateTime<Utc>>,
    /// Version (the ETag).
    pub version: i64,
    /// What the current state allows.
    pub allowed_actions: Vec<&'static str>,
}

impl From<&Incident> for IncidentView {
    fn from(incident: &Incident) -> Self {
        Self {
            id: incident.id,
            number: incident.number.clone(),
            title: incident.title.clone(),
            description: incident.description.clone(),
            caller: incident.caller.clone(),
            service: incident.service.clone(),
            configuration_items: incident.configuration_items.clone(),
            category: incident.category.clone(),
            impact: incident.impact,
            urgency: incident.urgency,
            priority: incident.priority.get(),
            priority_override_reason: incident.priority_override_reason.clone(),
            state: incident.state,
            pending_reason: incident.pending_reason,
            assignment_group: incident.assignment_group.clone(),
            assignee: incident.assignee.clone(),
            escalation_level: incident.escalation_level,
            major: incident.major,
            major_manager: incident.major_manager.clone(),
            resolution_code: incident.resolution_code,
            resolution_notes: incident.resolution_notes.clone(),
            created_by: incident.created_by.clone(),
            created_at: incident.created_at,
            updated_at: incident.updated_at,
            resolved_at: incident.resolved_at,
            closed_at: incident.closed_at,
            version: incident.version,
            allowed_actions: incident
                .state
                .allowed()
                .iter()
                .map(|a| a.as_str())
                .collect(),
        }
    }
}

/// One entry of an incident's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// `created`, `assigned`, `state_changed`, `escalated`, `priority_changed`, `resolved`,
    /// `closed`, `reopened`, `cancelled`, `major_declared`, `updated`, `work_note`, `comment`.
    pub kind: String,
    /// The entry's details.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// An incident with its full history.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentDetail {
    /// The incident.
    #[serde(flatten)]
    pub incident: IncidentView,
    /// Every action and note, oldest first.
    pub history: Vec<HistoryEntry>,
}

/// A page of incidents.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentPage {
    /// The incidents.
    pub items: Vec<IncidentView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

fn respond(status: actix_web::http::StatusCode, incident: &Incident) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::ETAG, etag(incident.version)))
        .json(IncidentView::from(incident))
}

/// The `If-Match` header: `None` when absent or `*`; `Some(version)` otherwise.
fn if_match(req: &HttpRequest) -> Result<Option<i64>, Problem> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or_default().trim();
    if value == "*" {
        return Ok(None);
    }
    let tag = value.strip_prefix("W/").unwrap_or(value).trim_matches('"');
    tag.parse::<i64>().map(Some).map_err(|_| {
        Problem::new(codes::PRECONDITION_FAILED)
            .detail("If-Match does not name a version of this incident")
    })
}

fn correlation(req: &HttpRequest) -> Option<String> {
    req.extensions()
        .get::<RequestIds>()
        .map(|ids| ids.trace_id.clone())
}

// ---------------------------------------------------------------------------------------------
// Create

/// The body of `POST /v1/incidents`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIncident {
    /// Summary, 1–200 characters.
    pub title: String,
    /// Details, up to 20000 characters.
    #[serde(default)]
    pub description: String,
    /// Who reported it; default the caller of the API.
    pub caller: Option<String>,
    /// Affected service (catalogue id).
    pub service: Option<String>,
    /// Affected configuration items (up to 100).
    #[serde(default)]
    pub configuration_items: Vec<String>,
    /// Category.
    pub category: Option<String>,
    /// Impact.
    pub impact: Level,
    /// Urgency.
    pub urgency: Level,
    /// Initial group (the incident then starts assigned).
    pub assignment_group: Option<String>,
    /// Initial person (needs a group).
    pub assignee: Option<String>,
}

/// A validated creation waiting for its group commit.
#[derive(Debug)]
pub struct Creation {
    fields: NewIncident,
    actor: String,
    now: DateTime<Utc>,
    correlation: Option<String>,
}

/// Creates incidents in one transaction: their numbers in one query, then one insert per table.
/// New incidents recurring a fixed problem reopen its review (`problems`).
pub fn create_all(
    matrix: PriorityMatrix,
    problems: crate::config::ProblemsConfig,
) -> impl Fn(&mut AnyConnection, &[Creation]) -> Result<Vec<Incident>, Problem> + Send + Sync + 'static
{
    move |conn, creations| {
        let numbers = store::next_numbers(conn, creations.len())?;
        // CIs named by their name are recorded by their id (the CMDB read model).
        let cis = creations
            .iter()
            .map(|c| crate::store::cis::resolve(conn, &c.fields.configuration_items))
            .collect::<Result<Vec<_>, _>>()?;
        let opened: Vec<(Incident, Vec<IncidentEvent>)> = creations
            .iter()
            .zip(numbers)
            .zip(cis)
            .map(|((creation, number), configuration_items)| {
                Incident::open(
                    Uuid::now_v7(),
                    number,
                    NewIncident {
                        configuration_items,
                        ..creation.fields.clone()
                    },
                    &matrix,
                    &creation.actor,
                    creation.now,
                )
            })
            .collect();
        let rows: Vec<_> = opened
            .iter()
            .zip(creations)
            .map(|((incident, events), creation)| {
                let ctx = Context {
                    actor: &creation.actor,
                    now: creation.now,
                    correlation_id: creation.correlation.as_deref(),
                };
                (incident, events.as_slice(), ctx)
            })
            .collect();
        store::insert_all(conn, &rows)?;
        for ((incident, _), creation) in opened.iter().zip(creations) {
            if let Some(since) = problems.recurrence_since(creation.now) {
                crate::store::problems::detect_recurrences(conn, &[incident], since, creation.now)?;
            }
        }
        Ok(opened.into_iter().map(|(incident, _)| incident).collect())
    }
}

/// `POST /v1/incidents`: records an incident; its priority comes from the matrix.
#[utoipa::path(post, path = "/v1/incidents", tag = "incidents",
    request_body = CreateIncident,
    responses(
        (status = 201, description = "Recorded", body = IncidentView, headers(("ETag" = String), ("Location" = String))),
        (status = 400, description = "A field is not valid", body = meridian_chassis::problem::ProblemBody),
        (status = 401, description = "No valid token", body = meridian_chassis::problem::ProblemBody),
        (status = 403, description = "Role missing", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn create_incident(
    who: Authenticated<Reporter>,
    req: HttpRequest,
    body: Json<CreateIncident>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let body = body.0;
    let mut check = Check::new();
    let fields = NewIncident {
        title: check.text("title", &body.title, SHORT),
        description: check
            .optional("description", Some(&body.description), LONG)
            .unwrap_or_default(),
        caller: match &body.caller {
            Some(caller) => check.text("caller", caller, SHORT),
            None => who.subject.clone(),
        },
        service: check.optional("service", body.service.as_deref(), SHORT),
        configuration_items: check.items("configuration_items", &body.configuration_items),
        category: check.optional("category", body.category.as_deref(), SHORT),
        impact: body.impact,
        urgency: body.urgency,
        assignment_group: check.optional(
            "assignment_group",
            body.assignment_group.as_deref(),
            SHORT,
        ),
        assignee: check.optional("assignee", body.assignee.as_deref(), SHORT),
    };
    if fields.assignee.is_some() && fields.assignment_group.is_none() {
        check
            .0
            .push(InvalidParam::new("assignee", "needs an assignment_group"));
    }
    check.done()?;
    let incident = svc
        .creations
        .submit(Creation {
            fields,
            actor: who.subject.clone(),
            now: meridian_chassis::clock::to_micros(svc.clock.now()),
            correlation: correlation(&req),
        })
        .await?;
    svc.waker.wake();
    let mut response = respond(actix_web::http::StatusCode::CREATED, &incident);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/incidents/{}", incident.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

// ---------------------------------------------------------------------------------------------
// Read

/// `GET /v1/incidents/{id}`: the incident with its full history.
#[utoipa::path(get, path = "/v1/incidents/{id}", tag = "incidents",
    params(("id" = Uuid, Path, description = "Incident id")),
    responses(
        (status = 200, description = "The incident", body = IncidentDetail, headers(("ETag" = String))),
        (status = 404, description = "No such incident", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_incident(
    _who: Authenticated<AnyRole>,
    id: web::Path<Uuid>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let (incident, history) = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            let incident = store::find(conn, id)?.ok_or_else(not_found)?;
            let history = store::history(conn, id)?;
            Ok((incident, history))
        })
        .await?;
    let history = history
        .into_iter()
        .map(|row| HistoryEntry {
            at: DateTime::from_naive_utc_and_offset(row.at, Utc),
            actor: row.actor,
            kind: row.kind,
            details: serde_json::from_str(&row.details).unwrap_or_default(),
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(incident.version)))
        .json(IncidentDetail {
            incident: IncidentView::from(&incident),
            history,
        }))
}

fn not_found() -> Problem {
    Problem::new(codes::INCIDENT_NOT_FOUND)
}

/// The query of `GET /v1/incidents`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// States, comma-separated (e.g. `new,assigned`).
    pub state: Option<String>,
    /// Priority, 1–5.
    #[param(minimum = 1, maximum = 5)]
    pub priority: Option<i64>,
    /// Assignee; `me` for the caller.
    pub assignee: Option<String>,
    /// Assignment group.
    pub group: Option<String>,
    /// Affected service.
    pub service: Option<String>,
    /// Major incidents only (`true`) or none (`false`).
    pub major: Option<bool>,
    /// Created at or after (RFC 3339).
    pub created_from: Option<String>,
    /// Created before (RFC 3339).
    pub created_to: Option<String>,
    /// `created_at`, `-created_at` (default), `updated_at`, `-updated_at`, `priority`, `-priority`.
    pub sort: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    sort: String,
    after: After,
}

fn parse_time(
    check: &mut Vec<InvalidParam>,
    name: &str,
    value: Option<&str>,
) -> Option<DateTime<Utc>> {
    let value = value?;
    match DateTime::parse_from_rfc3339(value) {
        Ok(at) => Some(at.with_timezone(&Utc)),
        Err(_) => {
            check.push(InvalidParam::new(
                name,
                "must be an RFC 3339 time, e.g. 2026-11-24T10:00:00Z",
            ));
            None
        }
    }
}

/// `GET /v1/incidents`: filtered, sorted, paginated by cursor.
#[utoipa::path(get, path = "/v1/incidents", tag = "incidents",
    params(ListQuery),
    responses(
        (status = 200, description = "A page", body = IncidentPage),
        (status = 400, description = "A parameter is not valid", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_incidents(
    who: Authenticated<AnyRole>,
    query: Query<ListQuery>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let mut bad = Vec::new();
    let mut filter = Filter::default();
    if let Some(states) = &query.state {
        for name in states.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match State::parse(name) {
                Some(state) => filter.states.push(state),
                None => bad.push(InvalidParam::new(
                    "state",
                    format!("`{name}` is not a state"),
                )),
            }
        }
    }
    if let Some(priority) = query.priority {
        match Priority::new(priority) {
            Some(priority) => filter.priority = Some(priority),
            None => bad.push(InvalidParam::new("priority", "must be between 1 and 5")),
        }
    }
    filter.assignee = query
        .assignee
        .map(|a| if a == "me" { who.subject.clone() } else { a });
    filter.group = query.group;
    filter.service = query.service;
    filter.major = query.major;
    filter.created_from = parse_time(&mut bad, "created_from", query.created_from.as_deref());
    filter.created_to = parse_time(&mut bad, "created_to", query.created_to.as_deref());
    let sort_name = query.sort.unwrap_or_else(|| "-created_at".to_owned());
    let sort = match sort_name.as_str() {
        "created_at" => Sort::CreatedAsc,
        "-created_at" => Sort::CreatedDesc,
        "updated_at" => Sort::UpdatedAsc,
        "-updated_at" => Sort::UpdatedDesc,
        "priority" => Sort::PriorityAsc,
        "-priority" => Sort::PriorityDesc,
        _ => {
            bad.push(InvalidParam::new(
                "sort",
                "must be one of created_at, -created_at, updated_at, -updated_at, priority, -priority",
            ));
            Sort::CreatedDesc
        }
    };
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        bad.push(InvalidParam::new("limit", "must be between 1 and 200"));
    }
    let after = match &query.cursor {
        None => None,
        Some(cursor) => {
            let decoded = URL_SAFE_NO_PAD
                .decode(cursor)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Cursor>(&bytes).ok());
            match decoded {
                Some(cursor) if cursor.sort == sort_name => Some(cursor.after),
                Some(_) => {
                    bad.push(InvalidParam::new("cursor", "belongs to another sort order"));
                    None
                }
                None => {
                    bad.push(InvalidParam::new(
                        "cursor",
                        "is not a cursor this API returned",
                    ));
                    None
                }
            }
        }
    };
    if !bad.is_empty() {
        return Err(Problem::invalid(codes::INVALID_PARAMETERS, bad));
    }
    let mut incidents = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            Ok(store::list(conn, &filter, sort, after.as_ref(), limit)?)
        })
        .await?;
    let more = incidents.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    incidents.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = match (more, incidents.last()) {
        (true, Some(last)) => {
            let cursor = Cursor {
                sort: sort_name,
                after: store::after(last, sort),
            };
            serde_json::to_vec(&cursor)
                .ok()
                .map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
        }
        _ => None,
    };
    Ok(HttpResponse::Ok().json(IncidentPage {
        items: incidents.iter().map(IncidentView::from).collect(),
        next_cursor,
    }))
}

// ---------------------------------------------------------------------------------------------
// Commands on one incident

/// Loads, checks the ETag, applies `decide`, saves: one transaction.
async fn act<F>(
    svc: &Resolution,
    who: &str,
    req: &HttpRequest,
    id: Uuid,
    decide: F,
) -> Result<HttpResponse, Problem>
where
    F: FnOnce(
            &mut Incident,
            &mut AnyConnection,
            DateTime<Utc>,
        ) -> Result<Vec<IncidentEvent>, Problem>
        + Send
        + 'static,
{
    let expected = if_match(req)?;
    let now = meridian_chassis::clock::to_micros(svc.clock.now());
    let actor = who.to_owned();
    let correlation = correlation(req);
    let incident = svc
        .db
        .transaction(move |conn| -> Result<Incident, Problem> {
            let mut incident = store::load_for_update(conn, id)?.ok_or_else(not_found)?;
            if expected.is_some_and(|version| version != incident.version) {
                return Err(Problem::new(codes::PRECONDITION_FAILED).detail(format!(
                    "the incident is at version {}; read it again",
                    incident.version
                )));
            }
            let before = incident.clone();
            let events = decide(&mut incident, conn, now)?;
            let ctx = Context {
                actor: &actor,
                now,
                correlation_id: correlation.as_deref(),
            };
            store::save(conn, &before, &incident, &events, ctx)?;
            Ok(incident)
        })
        .await?;
    svc.waker.wake();
    Ok(respond(actix_web::http::StatusCode::OK, &incident))
}

/// The body of `PATCH /v1/incidents/{id}`: the fields to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIncident {
    /// Summary.
    pub title: Option<String>,
    /// Details.
    pub description: Option<String>,
    /// Reporter.
    pub caller: Option<String>,
    /// Service; empty string clears it.
    pub service: Option<String>,
    /// CIs (replaces the list).
    pub configuration_items: Option<Vec<String>>,
    /// Category; empty string clears it.
    pub category: Option<String>,
    /// Impact (recomputes the priority unless overridden).
    pub impact: Option<Level>,
    /// Urgency (recomputes the priority unless overridden).
    pub urgency: Option<Level>,
}

/// `PATCH /v1/incidents/{id}`: edits descriptive fields. Honours `If-Match`.
#[utoipa::path(patch, path = "/v1/incidents/{id}", tag = "incidents",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version you read")),
    request_body = UpdateIncident,
    responses(
        (status = 200, description = "Updated", body = IncidentView),
        (status = 400, description = "A field is not valid", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "The state does not allow it", body = meridian_chassis::problem::ProblemBody),
        (status = 412, description = "Changed since read", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn update_incident(
    who: Authenticated<Agent>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: Json<UpdateIncident>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let body = body.0;
    let mut check = Check::new();
    let changes = Changes {
        title: body.title.as_deref().map(|t| check.text("title", t, SHORT)),
        description: body.description.map(|d| {
            check
                .optional("description", Some(&d), LONG)
                .unwrap_or_default()
        }),
        caller: body
            .caller
            .as_deref()
            .map(|c| check.text("caller", c, SHORT)),
        service: body
            .service
            .as_deref()
            .map(|s| check.optional("service", Some(s), SHORT)),
        configuration_items: body
            .configuration_items
            .as_deref()
            .map(|items| check.items("configuration_items", items)),
        category: body
            .category
            .as_deref()
            .map(|c| check.optional("category", Some(c), SHORT)),
        impact: body.impact,
        urgency: body.urgency,
    };
    let nothing = changes.title.is_none()
        && changes.description.is_none()
        && changes.caller.is_none()
        && changes.service.is_none()
        && changes.configuration_items.is_none()
        && changes.category.is_none()
        && changes.impact.is_none()
        && changes.urgency.is_none();
    if nothing {
        check.0.push(InvalidParam::new(
            "body",
            "name at least one field to change",
        ));
    }
    check.done()?;
    let matrix = svc.config.priority_matrix;
    act(
        &svc,
        &who.subject,
        &req,
        id.into_inner(),
        move |incident, conn, now| {
            let mut changes = changes;
            // CIs named by their name are recorded by their id (the CMDB read model).
            if let Some(items) = &changes.configuration_items {
                changes.configuration_items = Some(crate::store::cis::resolve(conn, items)?);
            }
            incident.update(changes, &matrix, now).map_err(problem)
        },
    )
    .await
}

/// The body of `POST /v1/incidents/{id}/assign`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignIncident {
    /// The group.
    pub group: String,
    /// The person (optional: the group picks).
    pub assignee: Option<String>,
}

/// `POST /v1/incidents/{id}/assign`: assigns (a new incident becomes assigned) or reassigns.
#[utoipa::path(post, path = "/v1/incidents/{id}/assign", tag = "incidents",
    params(("id" = Uuid, Path)), request_body = AssignIncident,
    responses((status = 200, description = "Assigned", body = IncidentView),
        (status = 409, description = "The state does not allow it", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn assign_incident(
    who: Authenticated<Agent>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: Json<AssignIncident>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let mut check = Check::new();
    let group = check.text("group", &body.0.group, SHORT);
    let assignee = check.optional("assignee", body.0.assignee.as_deref(), SHORT);
    check.done()?;
    act(
        &svc,
        &who.subject,
        &req,
        id.into_inner(),
        move |incident, _, now| incident.assign(group, assignee, now).map_err(problem),
    )
    .await
}

/// `POST /v1/incidents/{id}/start`: starts work (the caller takes it if nobody has).
#[utoipa::path(post, path = "/v1/incidents/{id}/start", tag = "incidents",
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "In progress", body = IncidentView),
        (status = 409, description = "The state does not allow it", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn start_incident(
    who: Authenticated<Agent>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let actor = who.subject.clone();
    act(
        &svc,
        &who.subject,
        &req,
        id.into_inner(),
        move |incident, _, now| incident.start(&actor, now).map_err(problem),
    )
    .await
}

/// The body of `POST /v1/incidents/{id}/pend`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PendIncident {
    /// Why it waits.
    pub reason: PendingReason,
    /// What exactly it waits for.
    pub note: Option<String>,
}

/// `POST /v1/incidents/{id}/pend`: waits on someone (SLA clocks pause).
#[utoipa::path(post, path = "/v1/incidents/{id}/pend", tag = "incidents",
    params(("id" = Uuid, Path)), request_body = PendIncident,
    responses((status = 200, description = "Pending", body = IncidentView),
        (status = 409, description = "The state does not allow it", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn pend_incident(
    who: Authenticated<Agent>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: Json<PendIncident>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let mut check = Check::new();
    let note = check.optional("note", body.0.note.as_deref(), LONG);
    check.done()?;
    let reason = body.0.reason;
    act(
        &svc,
        &who.subject,
        &req,
        id.into_inner(),
        move |incident, _, now| incident.pend(reason, note, now).map_err(problem),
    )
    .await
}

/// `POST /v1/incidents/{id}/resume`: stops waiting.
#[utoipa::path(post, path = "/v1/incidents/{id}/resume", tag = "incidents",
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "In progress", body = IncidentView),
        (status = 409, description = "The state does not allow it", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn resume_incident(
    who: Authenticated<Agent>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    act(
        &svc,
        &who.subject,
        &req,
        id.into_inner(),
        move |incident, _, now| incident.resume(now).map_err(problem),
    )
    .await
}

/// The body of `POST /v1/incidents/{id}/resolve`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveIncident {
    /// How it was resolved.
    pub code: ResolutionCode,
    /// What was done (required).
    pub notes: String,
    /// The known error whose workaround restored service (its problem's id or number): the
    /// incident is linked to it and the workaround's use counted.
    pub known_error: Option<String>,
}

/// `POST /v1/incidents/{id}/resolve`: restores service; code and notes are required.
#[utoipa::path(post, path = "/v1/incidents/{id}/resolve", tag = "incidents",
    params(("id" = Uuid, Path)), request_body = ResolveIncident,
    responses((status = 200, description = "Resolved", body = IncidentView),
        (status = 400, description = "A field is not valid", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "The state does not allow it", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn resolve_incident(
    who: Authenticated<Agent>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: Json<ResolveIncident>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let mut check = Check::new();
    let notes = check.text("notes", &body.0.notes, LONG);
    check.done()?;
    let code = body.0.code;
    let known_error = body.0.known_error;
    let actor = who.subject.clone();
    act(
        &svc,
        &who.subject,
        &req,
        id.into_inner(),
        move |incident, conn, now| {
            let events = incident.resolve(code, notes, now).map_err(problem)?;
            if let Some(key) = known_error {
                super::problems::workaround_used(
                    conn,
                    &key,
                    &incident.id.to_string(),
                    &actor,
                    now,
                )?;
            }
            Ok(events)
        },
    )
    .await
}

/// `POST /v1/incidents/{id}/close`: confirms the resolution.
#[utoipa::path(post, path = "/v1/incidents/{id}/close", tag = "incidents",
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "Closed", body = IncidentView),
        (status = 409, description = "The state does not allow it", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn close_incident(
    who: Authenticated<Agent>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    act(
        &svc,
        &who.subject,
        &req,
        id.into_inner(),
        move |incident, _, now| incident.close(now).map_err(problem),
    )
    .await
}

/// A reason (reopen, cancel).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Why.
    pub reason: String,
}

/// `POST /v1/incidents/{id}/reopen`: the resolution did not hold.
#[utoipa::path(post, path = "/v1/incidents/{id}/reopen", tag = "incidents",
    params(("id" = Uuid, Path)), request_body = Reason,
    responses((status = 200, description = "In progress again", body = IncidentView),
        (status = 409, description = "The state does not allow it", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn reopen_incident(
    who: Authenticated<Reporter>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: Json<Reason>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let mut check = Check::new();
    let reason = check.text("reason", &body.0.reason, LONG);
    check.done()?;
    act(
        &svc,
        &who.subject,
        &req,
        id.into_inner(),
        move |incident, _, now| incident.reopen(reason, now).map_err(problem),
    )
    .await
}

/// `POST /v1/incidents/{id}/cancel`: withdraws an open incident.
#[utoipa::path(post, path = "/v1/incidents/{id}/cancel", tag = "incidents",
    params(("id" = Uuid, Path)), request_body = Reason,
    responses((status = 200, description = "Cancelled", body = IncidentView),
        (status = 409, description = "The state does not allow it", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn cancel_incident(
    who: Authenticated<Agent>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: Json<Reason>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let mut check = Check::new();
    let reason = check.text("reason", &body.0.reason, LONG);
    check.done()?;
    act(
        &svc,
        &who.subject,
        &req,
        id.into_inner(),
        move |incident, _, now| incident.cancel(reason, now).map_err(problem),
    )
    .await
}

/// The body of `POST /v1/incidents/{id}/escalate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalateIncident {
    /// Functional (to `group`) or hierarchical (to management).
    pub kind: EscalationKind,
    /// The group to escalate to (functional only, required there).
    pub group: Option<String>,
    /// Why.
    pub reason: String,
}

/// `POST /v1/incidents/{id}/escalate`: functional or hierarchical escalation.
#[utoipa::path(post, path = "/v1/incidents/{id}/escalate", tag = "incidents",
    params(("id" = Uuid, Path)), request_body = EscalateIncident,
    responses((status = 200, description = "Escalated", body = IncidentView),
        (status = 400, description = "A field is not valid", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "The state does not allow it", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn escalate_incident(
    who: Authenticated<Agent>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: Json<EscalateIncident>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let body = body.0;
    let mut check = Check::new();
    let reason = check.text("reason", &body.reason, LONG);
    let group = check.optional("group", body.group.as_deref(), SHORT);
    match (body.kind, &group) {
        (EscalationKind::Functional, None) => {
            check.0.push(InvalidParam::new(
                "group",
                "a functional escalation names the group",
            ));
        }
        (EscalationKind::Hierarchical, Some(_)) => {
            check.0.push(InvalidParam::new(
                "group",
                "a hierarchical escalation keeps the group; leave it out",
            ));
        }
        _ => {}
    }
    check.done()?;
    let kind = body.kind;
    act(
        &svc,
        &who.subject,
        &req,
        id.into_inner(),
        move |incident, _, now| incident.escalate(kind, group, reason, now).map_err(problem),
    )
    .await
}

/// The body of `POST /v1/incidents/{id}/priority`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverridePriority {
    /// 1–5.
    #[schema(value_type = u8, minimum = 1, maximum = 5)]
    pub priority: Priority,
    /// Why the matrix is overridden.
    pub reason: String,
}

/// `POST /v1/incidents/{id}/priority`: overrides the matrix, with a reason on the record.
#[utoipa::path(post, path = "/v1/incidents/{id}/priority", tag = "incidents",
    params(("id" = Uuid, Path)), request_body = OverridePriority,
    responses((status = 200, description = "Priority set", body = IncidentView),
        (status = 400, description = "A field is not valid", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "The state does not allow it", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn override_priority(
    who: Authenticated<Agent>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: Json<OverridePriority>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let mut check = Check::new();
    let reason = check.text("reason", &body.0.reason, LONG);
    check.done()?;
    let priority = body.0.priority;
    act(
        &svc,
        &who.subject,
        &req,
        id.into_inner(),
        move |incident, _, now| {
            incident
                .override_priority(priority, reason, now)
                .map_err(problem)
        },
    )
    .await
}

/// The body of `POST /v1/incidents/{id}/major`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclareMajor {
    /// The responsible manager.
    pub manager: String,
    /// Why.
    pub reason: String,
}

/// `POST /v1/incidents/{id}/major`: declares a major incident (criteria in configuration).
#[utoipa::path(post, path = "/v1/incidents/{id}/major", tag = "incidents",
    params(("id" = Uuid, Path)), request_body = DeclareMajor,
    responses((status = 200, description = "Declared", body = IncidentView),
        (status = 403, description = "Not an incident manager", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Criteria not met, already major, or state", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn declare_major_incident(
    who: Authenticated<IncidentManager>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: Json<DeclareMajor>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let mut check = Check::new();
    let manager = check.text("manager", &body.0.manager, SHORT);
    let reason = check.text("reason", &body.0.reason, LONG);
    check.done()?;
    let config = svc.config.major_incident.clone();
    act(
        &svc,
        &who.subject,
        &req,
        id.into_inner(),
        move |incident, conn, now| {
            let service_qualifies = match &incident.service {
                Some(service) => crate::store::catalogue::find(conn, service)?
                    .is_some_and(|s| config.service_criticalities.contains(&s.criticality)),
                None => false,
            };
            let criteria = MajorCriteria {
                priorities: &config.priorities,
                service_qualifies,
            };
            incident
                .declare_major(manager, reason, criteria, now)
                .map_err(problem)
        },
    )
    .await
}

/// The body of `POST /v1/incidents/{id}/notes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddNote {
    /// Work note (internal) or comment (public).
    pub kind: NoteKind,
    /// The text.
    pub body: String,
}

/// `POST /v1/incidents/{id}/notes`: adds a work note or a public comment to the history.
#[utoipa::path(post, path = "/v1/incidents/{id}/notes", tag = "incidents",
    params(("id" = Uuid, Path)), request_body = AddNote,
    responses((status = 200, description = "Noted", body = IncidentView),
        (status = 409, description = "The incident is closed", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn add_note(
    who: Authenticated<Reporter>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: Json<AddNote>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let mut check = Check::new();
    let text = check.text("body", &body.0.body, LONG);
    let kind = body.0.kind;
    if kind == NoteKind::WorkNote && !who.has("agent") && !who.has("incident-manager") {
        return Err(
            Problem::new(codes::FORBIDDEN).detail("work notes are for agents; add a comment")
        );
    }
    check.done()?;
    act(
        &svc,
        &who.subject,
        &req,
        id.into_inner(),
        move |incident, _, now| incident.note(kind, text, now).map_err(problem),
    )
    .await
}
