//! `/v1/problems` and `/v1/known-errors`: problem management (8.6.3) and the known-error
//! database (7.6). Problems are raised by hand or from incident trends (`/v1/problems/proposals`),
//! analysed (root-cause notes), recorded as known errors with their workaround, resolved and
//! closed; an incident linked after the fix reopens the review (the fix did not hold).

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated};
use meridian_chassis::db::AnyConnection;
use meridian_chassis::problem::{InvalidParam, Json, OptionalJson, Query, codes};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::incidents::Agent;
use crate::Resolution;
use crate::domain::problem::{ProblemAction, ProblemState};
use crate::store::problems::{self as store, ProblemRow};

pub(super) use meridian_chassis::checks::{checked, page_limit};

fn utc(at: chrono::NaiveDateTime) -> DateTime<Utc> {
    meridian_chassis::clock::utc(at)
}

pub(super) fn text(
    params: &mut Vec<InvalidParam>,
    name: &str,
    value: &str,
    max: usize,
    required: bool,
) {
    if (required && value.trim().is_empty()) || value.chars().count() > max {
        params.push(InvalidParam::new(
            name,
            format!("must be {} to {max} characters", usize::from(required)),
        ));
    }
}

fn not_found() -> Problem {
    Problem::new(codes::PROBLEM_NOT_FOUND)
}

/// 409: what a problem in `state` cannot do, with the actions it allows.
fn not_allowed(state: ProblemState, detail: String) -> Problem {
    Problem::new(codes::PROBLEM_TRANSITION_NOT_ALLOWED)
        .detail(detail)
        .allowed_actions(
            state
                .allowed()
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect(),
        )
}

/// A problem.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemView {
    /// Id.
    pub id: String,
    /// Number.
    pub number: String,
    /// Summary.
    pub title: String,
    /// Details.
    pub description: String,
    /// Service.
    pub service: Option<String>,
    /// CIs.
    pub configuration_items: Vec<String>,
    /// `new`, `under_investigation`, `known_error`, `resolved`, `closed` or `cancelled`.
    pub state: String,
    /// `manual` or `trend`.
    pub source: String,
    /// Symptoms (known error).
    pub symptoms: String,
    /// Root cause (known error).
    pub root_cause: String,
    /// Workaround (known error).
    pub workaround: String,
    /// The fix.
    pub resolution: String,
    /// Incidents resolved with the workaround.
    pub workaround_uses: i32,
    /// Recurrences after a fix.
    pub recurrences: i32,
    /// Who raised it.
    pub created_by: String,
    /// Raised.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The actions its state allows.
    pub allowed_actions: Vec<String>,
    /// Its incidents (on `GET /v1/problems/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub incidents: Option<Vec<Value>>,
    /// Its history and analysis (on `GET /v1/problems/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub history: Option<Vec<Value>>,
    /// The changes raised for its fix in control: number, id, title (on
    /// `GET /v1/problems/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub changes: Option<Vec<Value>>,
}

impl From<ProblemRow> for ProblemView {
    fn from(r: ProblemRow) -> Self {
        let state = ProblemState::parse(&r.state).unwrap_or(ProblemState::New);
        Self {
            configuration_items: r.cis(),
            allowed_actions: state
                .allowed()
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect(),
            id: r.id,
            number: r.number,
            title: r.title,
            description: r.description,
            service: r.service,
            state: r.state,
            source: r.source,
            symptoms: r.symptoms,
            root_cause: r.root_cause,
            workaround: r.workaround,
            resolution: r.resolution,
            workaround_uses: r.workaround_uses,
            recurrences: r.recurrences,
            created_by: r.created_by,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            resolved_at: r.resolved_at.map(utc),
            incidents: None,
            history: None,
            changes: None,
        }
    }
}

fn detail(conn: &mut AnyConnection, row: ProblemRow) -> Result<ProblemView, Problem> {
    let incidents = store::incidents_of(conn, &row.id)?
        .into_iter()
        .map(|(id, number, state)| json!({"id": id, "number": number, "state": state}))
        .collect();
    let history: Vec<Value> = store::history(conn, &row.id)?
        .into_iter()
        .map(|a| json!({"at": utc(a.at), "actor": a.actor, "kind": a.kind, "details": serde_json::from_str::<Value>(&a.details).unwrap_or(Value::Null)}))
        .collect();
    let changes = history
        .iter()
        .filter(|a| a["kind"] == "change_raised")
        .map(|a| a["details"].clone())
        .collect();
    let mut view = ProblemView::from(row);
    view.incidents = Some(incidents);
    view.history = Some(history);
    view.changes = Some(changes);
    Ok(view)
}

/// Finds an incident by id or number: its id.
fn incident_id(conn: &mut AnyConnection, key: &str) -> Result<Option<String>, Problem> {
    use crate::store::schema::incidents;
    use diesel::prelude::*;
    Ok(incidents::table
        .filter(incidents::id.eq(key).or(incidents::number.eq(key)))
        .select(incidents::id)
        .first::<String>(conn)
        .optional()?)
}

/// `POST /v1/problems`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProblem {
    /// Summary.
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// Details.
    #[serde(default)]
    pub description: String,
    /// The service.
    pub service: Option<String>,
    /// The CIs.
    #[serde(default)]
    pub configuration_items: Vec<String>,
    /// Incidents it explains (ids or numbers).
    #[serde(default)]
    pub incidents: Vec<String>,
    /// `manual` (default) or `trend` (accepted from `/v1/problems/proposals`).
    #[serde(default = "manual")]
    pub source: String,
}

fn manual() -> String {
    "manual".to_owned()
}

/// `POST /v1/problems`: raises a problem, linking the incidents it explains.
#[utoipa::path(post, path = "/v1/problems", tag = "problems", request_body = NewProblem,
    responses(
        (status = 201, description = "Raised", body = ProblemView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn create_problem(
    who: Authenticated<Agent>,
    body: Json<NewProblem>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    text(&mut params, "title", &input.title, 200, true);
    text(
        &mut params,
        "description",
        &input.description,
        20_000,
        false,
    );
    if !matches!(input.source.as_str(), "manual" | "trend") {
        params.push(InvalidParam::new("source", "must be manual or trend"));
    }
    for (i, ci) in input.configuration_items.iter().enumerate() {
        text(
            &mut params,
            &format!("configuration_items[{i}]"),
            ci,
            200,
            true,
        );
    }
    if input.incidents.len() > 500 {
        params.push(InvalidParam::new("incidents", "at most 500"));
    }
    checked(params)?;
    let (actor, now) = (
        who.subject.clone(),
        meridian_chassis::clock::to_micros(svc.clock.now()),
    );
    let view = svc
        .db
        .transaction(move |conn| -> Result<ProblemView, Problem> {
            let mut linked = Vec::new();
            for (i, key) in input.incidents.iter().enumerate() {
                linked.push(incident_id(conn, key)?.ok_or_else(|| {
                    Problem::field(format!("incidents[{i}]"), format!("no incident {key}"))
                })?);
            }
            let row = ProblemRow {
                id: Uuid::now_v7().to_string(),
                number: store::next_number(conn)?,
                title: input.title.trim().to_owned(),
                description: input.description,
                service: input.service,
                configuration_items: serde_json::to_string(&crate::store::cis::resolve(
                    conn,
                    &input.configuration_items,
                )?)
                .unwrap_or_default(),
                state: ProblemState::New.as_str().to_owned(),
                source: input.source,
                symptoms: String::new(),
                root_cause: String::new(),
                workaround: String::new(),
                resolution: String::new(),
                workaround_uses: 0,
                recurrences: 0,
                created_by: actor.clone(),
                created_at: now.naive_utc(),
                updated_at: now.naive_utc(),
                resolved_at: None,
                version: 1,
            };
            store::save(conn, None, &row, &actor, "created", now)?;
            store::activity(
                conn,
                &row.id,
                &actor,
                "created",
                &json!({"source": row.source}),
                now,
            )?;
            for incident in linked {
                store::link(conn, &row.id, &incident, &actor, now)?;
                store::activity(
                    conn,
                    &row.id,
                    &actor,
                    "incident_linked",
                    &json!({"incident": incident}),
                    now,
                )?;
            }
            detail(conn, row)
        })
        .await?;
    svc.waker.wake();
    Ok(HttpResponse::Created().json(view))
}

/// `GET /v1/problems` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProblemQuery {
    /// In this state.
    pub state: Option<String>,
    /// The cursor: the last id of the previous page.
    pub after: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// `GET /v1/problems`.
#[utoipa::path(get, path = "/v1/problems", tag = "problems", params(ProblemQuery),
    responses(
        (status = 200, description = "A page of problems", body = Vec<ProblemView>),
        (status = 400, description = "A bad filter, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_problems(
    _who: Authenticated<AnyRole>,
    query: Query<ProblemQuery>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let limit = page_limit(query.limit)?;
    if let Some(state) = &query.state
        && ProblemState::parse(state).is_none()
    {
        return Err(Problem::field(
            "state",
            "must be new, under_investigation, known_error, resolved, closed or cancelled",
        ));
    }
    let rows = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            Ok(store::list(
                conn,
                query.state.as_deref(),
                query.after.as_deref(),
                limit,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(ProblemView::from).collect::<Vec<_>>()))
}

/// `GET /v1/problems/{id}`: with its incidents and its history.
#[utoipa::path(get, path = "/v1/problems/{id}", tag = "problems",
    params(("id" = String, Path, description = "Id or number")),
    responses(
        (status = 200, description = "The problem", body = ProblemView),
        (status = 404, description = "No such problem", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_problem(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let key = id.into_inner();
    let view = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            let row = store::find(conn, &key)?.ok_or_else(not_found)?;
            detail(conn, row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The body of a problem's transition: what each needs.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// `known-error`: what users see.
    pub symptoms: Option<String>,
    /// `known-error`: why it happens.
    pub root_cause: Option<String>,
    /// `known-error`: how to restore service meanwhile.
    pub workaround: Option<String>,
    /// `resolve`: the fix.
    pub resolution: Option<String>,
    /// `reopen`, `cancel`: why.
    pub reason: Option<String>,
}

/// Moves a problem by `action`, applying `body`'s fields; the detail view.
fn transition(
    conn: &mut AnyConnection,
    key: &str,
    action: ProblemAction,
    body: &Transition,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<ProblemView, Problem> {
    let before = store::find_for_update(conn, key)?.ok_or_else(not_found)?;
    let state = ProblemState::parse(&before.state).unwrap_or(ProblemState::New);
    let Some(next) = state.after(action) else {
        return Err(not_allowed(
            state,
            format!("a {} problem cannot {}", state.as_str(), action.as_str()),
        ));
    };
    let mut params = Vec::new();
    let required = |params: &mut Vec<InvalidParam>, name: &str, value: &Option<String>| -> String {
        let v = value.clone().unwrap_or_default();
        text(params, name, &v, 20_000, true);
        v.trim().to_owned()
    };
    let mut after = ProblemRow {
        state: next.as_str().to_owned(),
        updated_at: now.naive_utc(),
        version: before.version + 1,
        ..before.clone()
    };
    let event = match action {
        ProblemAction::Investigate => "investigated",
        ProblemAction::KnownError => {
            after.symptoms = required(&mut params, "symptoms", &body.symptoms);
            after.root_cause = required(&mut params, "root_cause", &body.root_cause);
            after.workaround = required(&mut params, "workaround", &body.workaround);
            "known_error"
        }
        ProblemAction::Resolve => {
            after.resolution = required(&mut params, "resolution", &body.resolution);
            after.resolved_at = Some(now.naive_utc());
            "resolved"
        }
        ProblemAction::Close => "closed",
        ProblemAction::Reopen => {
            required(&mut params, "reason", &body.reason);
            "reopened"
        }
        ProblemAction::Cancel => {
            required(&mut params, "reason", &body.reason);
            "cancelled"
        }
    };
    checked(params)?;
    store::save(conn, Some(&before), &after, actor, event, now)?;
    store::activity(
        conn,
        &after.id,
        actor,
        "state_changed",
        &json!({"from": before.state, "to": after.state, "reason": body.reason, "resolution": body.resolution}),
        now,
    )?;
    detail(conn, after)
}

macro_rules! problem_action {
    ($name:ident, $path:literal, $action:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "problems",
            params(("id" = String, Path, description = "Id or number")), request_body = Transition,
            responses(
                (status = 200, description = "Done", body = ProblemView),
                (status = 400, description = "A required field missing, named", body = meridian_chassis::problem::ProblemBody),
                (status = 404, description = "No such problem", body = meridian_chassis::problem::ProblemBody),
                (status = 409, description = "The state does not allow it", body = meridian_chassis::problem::ProblemBody),
            ),
            security(("bearer" = [])))]
        pub async fn $name(who: Authenticated<Agent>, id: web::Path<String>, body: OptionalJson<Transition>, svc: web::Data<Resolution>) -> Result<HttpResponse, Problem> {
            let (key, actor, now) = (id.into_inner(), who.subject.clone(), meridian_chassis::clock::to_micros(svc.clock.now()));
            let body = body.0.unwrap_or_default();
            let view = svc.db.transaction(move |conn| transition(conn, &key, $action, &body, &actor, now)).await?;
            svc.waker.wake();
            Ok(HttpResponse::Ok().json(view))
        }
    };
}

problem_action!(
    investigate_problem,
    "/v1/problems/{id}/investigate",
    ProblemAction::Investigate,
    "`POST /v1/problems/{id}/investigate`: the root cause is being looked for."
);
problem_action!(
    record_known_error,
    "/v1/problems/{id}/known-error",
    ProblemAction::KnownError,
    "`POST /v1/problems/{id}/known-error`: symptoms, root cause and workaround are known."
);
problem_action!(
    resolve_problem,
    "/v1/problems/{id}/resolve",
    ProblemAction::Resolve,
    "`POST /v1/problems/{id}/resolve`: the fix (e.g. the change that removed the cause)."
);
problem_action!(
    close_problem,
    "/v1/problems/{id}/close",
    ProblemAction::Close,
    "`POST /v1/problems/{id}/close`: the fix held."
);
problem_action!(
    reopen_problem,
    "/v1/problems/{id}/reopen",
    ProblemAction::Reopen,
    "`POST /v1/problems/{id}/reopen`: the review reopens, with the reason."
);
problem_action!(
    cancel_problem,
    "/v1/problems/{id}/cancel",
    ProblemAction::Cancel,
    "`POST /v1/problems/{id}/cancel`: not a problem after all."
);

/// A note or a step of root-cause analysis.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProblemNote {
    /// `analysis` (root-cause analysis) or `note`.
    pub kind: String,
    /// The text.
    #[schema(min_length = 1, max_length = 20000)]
    pub body: String,
}

/// `POST /v1/problems/{id}/notes`: root-cause analysis and notes, on the problem's history.
#[utoipa::path(post, path = "/v1/problems/{id}/notes", tag = "problems",
    params(("id" = String, Path, description = "Id or number")), request_body = ProblemNote,
    responses(
        (status = 200, description = "Recorded", body = ProblemView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such problem", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn add_problem_note(
    who: Authenticated<Agent>,
    id: web::Path<String>,
    body: Json<ProblemNote>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let note = body.0;
    let mut params = Vec::new();
    if !matches!(note.kind.as_str(), "analysis" | "note") {
        params.push(InvalidParam::new("kind", "must be analysis or note"));
    }
    text(&mut params, "body", &note.body, 20_000, true);
    checked(params)?;
    let (key, actor, now) = (
        id.into_inner(),
        who.subject.clone(),
        meridian_chassis::clock::to_micros(svc.clock.now()),
    );
    let view = svc
        .db
        .transaction(move |conn| -> Result<ProblemView, Problem> {
            let row = store::find(conn, &key)?.ok_or_else(not_found)?;
            store::activity(
                conn,
                &row.id,
                &actor,
                &note.kind,
                &json!({"body": note.body}),
                now,
            )?;
            detail(conn, row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// An incident was resolved with the workaround of the known error `key`: linked, and the use
/// counted.
///
/// # Errors
/// `known_error` named when there is no such known error; the database failing.
pub fn workaround_used(
    conn: &mut AnyConnection,
    key: &str,
    incident: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let row = store::find_for_update(conn, key)?
        .filter(|p| !p.workaround.is_empty())
        .ok_or_else(|| {
            Problem::field(
                "known_error",
                format!("{key} is not a known error with a workaround"),
            )
        })?;
    let row = store::link_incident(conn, &row, incident, actor, now)?;
    let after = ProblemRow {
        workaround_uses: row.workaround_uses + 1,
        updated_at: now.naive_utc(),
        version: row.version + 1,
        ..row.clone()
    };
    store::save(conn, Some(&row), &after, actor, "workaround_used", now)?;
    store::activity(
        conn,
        &after.id,
        actor,
        "workaround_used",
        &json!({"incident": incident}),
        now,
    )?;
    Ok(())
}

/// `POST /v1/problems/{id}/incidents`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkIncident {
    /// The incident (id or number).
    pub incident: String,
}

/// `POST /v1/problems/{id}/incidents`: links an incident the problem explains; on a fixed
/// problem, a recurrence that reopens its review.
#[utoipa::path(post, path = "/v1/problems/{id}/incidents", tag = "problems",
    params(("id" = String, Path, description = "Id or number")), request_body = LinkIncident,
    responses(
        (status = 200, description = "Linked", body = ProblemView),
        (status = 400, description = "No such incident", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such problem", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn link_problem_incident(
    who: Authenticated<Agent>,
    id: web::Path<String>,
    body: Json<LinkIncident>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let (key, actor, now) = (
        id.into_inner(),
        who.subject.clone(),
        meridian_chassis::clock::to_micros(svc.clock.now()),
    );
    let incident = body.0.incident;
    let view = svc
        .db
        .transaction(move |conn| -> Result<ProblemView, Problem> {
            let row = store::find_for_update(conn, &key)?.ok_or_else(not_found)?;
            let incident = incident_id(conn, &incident)?
                .ok_or_else(|| Problem::field("incident", format!("no incident {incident}")))?;
            let after = store::link_incident(conn, &row, &incident, &actor, now)?;
            detail(conn, after)
        })
        .await?;
    svc.waker.wake();
    Ok(HttpResponse::Ok().json(view))
}

/// `POST /v1/problems/{id}/change`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestChange {
    /// The change's title (default: "Fix <problem number>: <problem title>").
    #[schema(max_length = 200)]
    pub title: Option<String>,
    /// Why (default: the root cause, when known).
    pub reason: Option<String>,
    /// How the fix is made.
    #[serde(default)]
    pub implementation_plan: String,
}

/// The event asking control for a problem's change.
pub const CHANGE_REQUESTED: &str = "resolution.problem.change_requested";

/// `POST /v1/problems/{id}/change`: the fix needs a change. Control records it as a draft normal
/// change (origin `problem:<number>`, the problem's CIs) for the caller to complete and submit;
/// its number appears in the problem's `changes` once control has raised it. Accepted: 202.
#[utoipa::path(post, path = "/v1/problems/{id}/change", tag = "problems",
    params(("id" = String, Path, description = "Id or number")), request_body = RequestChange,
    responses(
        (status = 202, description = "Asked of control", body = ProblemView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such problem", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "The problem is not open", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn request_change(
    who: Authenticated<Agent>,
    id: web::Path<String>,
    body: OptionalJson<RequestChange>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let body = body.0.unwrap_or_default();
    let mut params = Vec::new();
    if let Some(title) = &body.title {
        text(&mut params, "title", title, 200, true);
    }
    if let Some(reason) = &body.reason {
        text(&mut params, "reason", reason, 20_000, true);
    }
    text(
        &mut params,
        "implementation_plan",
        &body.implementation_plan,
        20_000,
        false,
    );
    checked(params)?;
    let (key, actor, now) = (
        id.into_inner(),
        who.subject.clone(),
        meridian_chassis::clock::to_micros(svc.clock.now()),
    );
    let view = svc
        .db
        .transaction(move |conn| -> Result<ProblemView, Problem> {
            let row = store::find(conn, &key)?.ok_or_else(not_found)?;
            let state = ProblemState::parse(&row.state).unwrap_or(ProblemState::New);
            if !state.is_open() {
                return Err(not_allowed(
                    state,
                    format!(
                        "a {} problem needs no change; reopen it first",
                        state.as_str()
                    ),
                ));
            }
            let title = body.title.map_or_else(
                || {
                    format!("Fix {}: {}", row.number, row.title)
                        .chars()
                        .take(200)
                        .collect()
                },
                |t| t.trim().to_owned(),
            );
            let reason = body
                .reason
                .map(|r| r.trim().to_owned())
                .unwrap_or_else(|| row.root_cause.clone());
            let message = meridian_proto::resolution::v1::ProblemChangeRequested {
                problem_id: row.id.clone(),
                problem_number: row.number.clone(),
                title: title.clone(),
                reason,
                configuration_items: row.cis(),
                implementation_plan: body.implementation_plan,
                requested_by: actor.clone(),
            };
            meridian_chassis::outbox::enqueue(
                conn,
                &meridian_chassis::bus::Envelope {
                    id: Uuid::now_v7(),
                    event_type: CHANGE_REQUESTED.to_owned(),
                    source: crate::events::SOURCE.to_owned(),
                    subject: row.id.clone(),
                    time: now,
                    correlation_id: None,
                    causation_id: None,
                    actor: Some(actor.clone()),
                    payload: meridian_proto::Message::encode_to_vec(&message),
                },
            )?;
            store::activity(
                conn,
                &row.id,
                &actor,
                "change_requested",
                &json!({"title": title}),
                now,
            )?;
            detail(conn, row)
        })
        .await?;
    svc.waker.wake();
    Ok(HttpResponse::Accepted().json(view))
}

/// `GET /v1/known-errors` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KnownErrorQuery {
    /// Words to find in the title, symptoms, root cause or workaround.
    pub q: Option<String>,
    /// A CI.
    pub ci: Option<String>,
    /// A service.
    pub service: Option<String>,
    /// At most, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// `GET /v1/known-errors`: the known-error database, searched.
#[utoipa::path(get, path = "/v1/known-errors", tag = "problems", params(KnownErrorQuery),
    responses(
        (status = 200, description = "Matching known errors", body = Vec<ProblemView>),
        (status = 400, description = "A bad filter, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn search_known_errors(
    _who: Authenticated<AnyRole>,
    query: Query<KnownErrorQuery>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(Problem::field("limit", "must be 1 to 100"));
    }
    if query.q.as_ref().is_some_and(|q| q.chars().count() > 500) {
        return Err(Problem::field("q", "must be at most 500 characters"));
    }
    let rows = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            // A CI asked for by its name is looked for by its id too.
            let ci = match query.ci {
                Some(ci) => crate::store::cis::resolve(conn, &[ci])?.pop(),
                None => None,
            };
            Ok(store::search(
                conn,
                query.q.as_deref(),
                ci.as_deref(),
                query.service.as_deref(),
                limit,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(ProblemView::from).collect::<Vec<_>>()))
}

/// `GET /v1/problems/proposals` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProposalQuery {
    /// The window, days back from now (default `resolution.problems.trend_window_days`, 7).
    pub window_days: Option<i64>,
    /// Incidents needed (default `resolution.problems.trend_min_incidents`, 3).
    pub min_incidents: Option<usize>,
}

/// A proposed problem: a CI or a service with many unexplained incidents.
#[derive(Debug, Serialize, ToSchema)]
pub struct Proposal {
    /// `ci` or `service`.
    pub by: String,
    /// The CI or service.
    pub key: String,
    /// The incidents (numbers), not yet explained by an open problem.
    pub incidents: Vec<String>,
}

/// `GET /v1/problems/proposals`: incident trends that call for a problem (the same CI or
/// service with at least `min_incidents` unexplained incidents in the window). Accept one with
/// `POST /v1/problems` (`source: trend`, its incidents).
#[utoipa::path(get, path = "/v1/problems/proposals", tag = "problems", params(ProposalQuery),
    responses(
        (status = 200, description = "The proposals", body = Vec<Proposal>),
        (status = 400, description = "A bad parameter, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn proposals(
    _who: Authenticated<AnyRole>,
    query: Query<ProposalQuery>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let window = query
        .0
        .window_days
        .unwrap_or(svc.config.problems.trend_window_days);
    let min = query
        .0
        .min_incidents
        .unwrap_or(svc.config.problems.trend_min_incidents);
    if !(1..=365).contains(&window) {
        return Err(Problem::field("window_days", "must be 1 to 365"));
    }
    if !(2..=1000).contains(&min) {
        return Err(Problem::field("min_incidents", "must be 2 to 1000"));
    }
    let since = (svc.clock.now() - chrono::Duration::days(window)).naive_utc();
    let found = svc
        .db
        .run(move |conn| -> Result<Vec<Proposal>, Problem> {
            let explained: std::collections::HashSet<String> =
                store::explained(conn)?.into_iter().collect();
            let mut groups: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
            for (id, number, service, cis) in store::incidents_since(conn, since)? {
                if explained.contains(&id) {
                    continue;
                }
                for ci in serde_json::from_str::<Vec<String>>(&cis).unwrap_or_default() {
                    groups
                        .entry(("ci".to_owned(), ci))
                        .or_default()
                        .push(number.clone());
                }
                if let Some(service) = service {
                    groups
                        .entry(("service".to_owned(), service))
                        .or_default()
                        .push(number.clone());
                }
            }
            Ok(groups
                .into_iter()
                .filter(|(_, incidents)| incidents.len() >= min)
                .map(|((by, key), incidents)| Proposal { by, key, incidents })
                .collect())
        })
        .await?;
    Ok(HttpResponse::Ok().json(found))
}

#[cfg(test)]
#[path = "problems_tests.rs"]
mod tests;
