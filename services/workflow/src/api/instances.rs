//! `/v1/instances`: start, read (with history), cancel, retry; `/v1/workflow-incidents`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated};
use meridian_chassis::problem::{Json, Query, codes};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{WorkflowAdmin, correlation, utc};
use std::sync::Arc;

use crate::engine::{self, Instance, Start};
use crate::store::instances::{self as store, HistoryRow, InstanceRow, StepError};
use crate::{StepJob, Target, Workflow};

/// The body of `POST /v1/instances`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartInstance {
    /// The definition's id (its newest version runs).
    pub definition: String,
    /// The business object, e.g. the change's id.
    #[schema(min_length = 1, max_length = 200)]
    pub business_key: String,
    /// The variables the definition declares.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: serde_json::Map<String, Value>,
}

/// A token: where a path of the instance stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// The node.
    pub node: String,
    /// Why it is stuck, if it is.
    pub incident: Option<String>,
}

/// One history entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryView {
    /// When.
    pub at: DateTime<Utc>,
    /// Who (a user, or `system:<part>`).
    pub actor: String,
    /// What: `started`, `entered`, `task_created`, `task_completed`, `command_sent`, …
    pub kind: String,
    /// Where.
    pub node: Option<String>,
    /// Details.
    #[schema(value_type = Object)]
    pub details: Value,
}

impl From<HistoryRow> for HistoryView {
    fn from(row: HistoryRow) -> Self {
        Self {
            at: utc(row.at),
            actor: row.actor,
            kind: row.kind,
            node: row.node,
            details: serde_json::from_str(&row.details).unwrap_or_default(),
        }
    }
}

/// An instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceView {
    /// Id.
    pub id: Uuid,
    /// The definition's id.
    pub definition: String,
    /// The version it runs.
    pub version: String,
    /// The business object.
    pub business_key: String,
    /// Who started it.
    pub initiator: String,
    /// `running`, `completed` or `cancelled`.
    pub status: String,
    /// The outcome of the last end reached.
    pub outcome: Option<String>,
    /// Why a token is stuck, if one is.
    pub incident: Option<String>,
    /// Variables, task results included (by node id).
    #[schema(value_type = Object)]
    pub variables: serde_json::Map<String, Value>,
    /// Where its paths stand.
    pub tokens: Vec<TokenView>,
    /// Open task ids.
    pub open_tasks: Vec<Uuid>,
    /// When its timers fire.
    pub timers: Vec<DateTime<Utc>>,
    /// Started.
    pub started_at: DateTime<Utc>,
    /// Last step.
    pub updated_at: DateTime<Utc>,
    /// Completed or cancelled.
    pub ended_at: Option<DateTime<Utc>>,
    /// Every step (on `GET /v1/instances/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryView>>,
}

fn view(row: &InstanceRow, instance: &Instance, history: Option<Vec<HistoryRow>>) -> InstanceView {
    InstanceView {
        id: instance.id,
        definition: instance.definition.clone(),
        version: instance.version.clone(),
        business_key: instance.business_key.clone(),
        initiator: instance.initiator.clone(),
        status: instance.status.as_str().to_owned(),
        outcome: instance.outcome.clone(),
        incident: row.incident.clone(),
        variables: instance.variables.clone(),
        tokens: instance
            .tokens
            .iter()
            .map(|t| TokenView {
                node: t.node.clone(),
                incident: t.incident.clone(),
            })
            .collect(),
        open_tasks: instance.tasks.iter().map(|t| t.id).collect(),
        timers: instance.timers.iter().map(|t| t.due_at).collect(),
        started_at: utc(row.started_at),
        updated_at: utc(row.updated_at),
        ended_at: row.ended_at.map(utc),
        history: history.map(|rows| rows.into_iter().map(HistoryView::from).collect()),
    }
}

/// Reads an instance (and its history) after a step.
fn read(
    conn: &mut meridian_chassis::db::AnyConnection,
    id: Uuid,
    with_history: bool,
) -> Result<InstanceView, Problem> {
    let row =
        store::find(conn, id)?.ok_or_else(|| Problem::new(codes::WORKFLOW_INSTANCE_NOT_FOUND))?;
    let instance = row.instance()?;
    let history = with_history.then(|| store::history(conn, id)).transpose()?;
    Ok(view(&row, &instance, history))
}

/// `POST /v1/instances`: starts the newest version of a definition.
#[utoipa::path(post, path = "/v1/instances", tag = "instances", request_body = StartInstance,
    responses(
        (status = 201, description = "Started", body = InstanceView, headers(("Location" = String))),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such definition", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn start_instance(
    who: Authenticated<AnyRole>,
    req: HttpRequest,
    body: Json<StartInstance>,
    svc: web::Data<Workflow>,
) -> Result<HttpResponse, Problem> {
    let body = body.0;
    if body.business_key.trim().is_empty() || body.business_key.chars().count() > 200 {
        return Err(Problem::field(
            "business_key",
            "must be 1 to 200 characters",
        ));
    }
    let now = svc.clock.now();
    let actor = who.subject.clone();
    let job = StepJob {
        target: Target::Start {
            definition: body.definition,
            request: Start {
                id: Uuid::now_v7(),
                business_key: body.business_key,
                initiator: actor.clone(),
                variables: body.variables,
            },
        },
        actor,
        now,
        correlation: correlation(&req),
    };
    let instance = svc.run_step(job).await.map_err(|error| match error {
        StepError::NotFound => Problem::new(codes::WORKFLOW_DEFINITION_NOT_FOUND),
        other => Problem::from(other),
    })?;
    let id = instance.id;
    let view = svc.db.run(move |conn| read(conn, id, false)).await?;
    let mut response = HttpResponse::Created().json(&view);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/instances/{}", view.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /v1/instances/{id}`: the instance, where it stands, and every step with actor and time.
#[utoipa::path(get, path = "/v1/instances/{id}", tag = "instances",
    params(("id" = Uuid, Path, description = "Instance id")),
    responses(
        (status = 200, description = "The instance", body = InstanceView),
        (status = 404, description = "No such instance", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_instance(
    _who: Authenticated<AnyRole>,
    id: web::Path<Uuid>,
    svc: web::Data<Workflow>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let view = svc.db.run(move |conn| read(conn, id, true)).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The body of `POST /v1/instances/{id}/cancel`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelInstance {
    /// Why (recorded).
    #[schema(min_length = 1, max_length = 2000)]
    pub reason: String,
}

/// `POST /v1/instances/{id}/cancel`: withdraws the open tasks and stops the instance.
#[utoipa::path(post, path = "/v1/instances/{id}/cancel", tag = "instances",
    params(("id" = Uuid, Path, description = "Instance id")), request_body = CancelInstance,
    responses(
        (status = 200, description = "Cancelled", body = InstanceView),
        (status = 404, description = "No such instance", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Not running", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn cancel_instance(
    who: Authenticated<WorkflowAdmin>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: Json<CancelInstance>,
    svc: web::Data<Workflow>,
) -> Result<HttpResponse, Problem> {
    let reason = body.0.reason;
    if reason.trim().is_empty() || reason.chars().count() > 2000 {
        return Err(Problem::field("reason", "must be 1 to 2000 characters"));
    }
    act(
        &svc,
        &req,
        id.into_inner(),
        who.subject.clone(),
        move |_, instance, _, actor, _| engine::cancel(instance, actor, &reason),
    )
    .await
}

/// `POST /v1/instances/{id}/retry`: re-runs the node of every stuck token.
#[utoipa::path(post, path = "/v1/instances/{id}/retry", tag = "instances",
    params(("id" = Uuid, Path, description = "Instance id")),
    responses(
        (status = 200, description = "Retried", body = InstanceView),
        (status = 404, description = "No such instance", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Nothing to retry", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn retry_instance(
    who: Authenticated<WorkflowAdmin>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    svc: web::Data<Workflow>,
) -> Result<HttpResponse, Problem> {
    act(
        &svc,
        &req,
        id.into_inner(),
        who.subject.clone(),
        |compiled, instance, directory, actor, now| {
            engine::retry(compiled, instance, actor, now, directory)
        },
    )
    .await
}

/// Runs one step on an instance for the caller and answers with the instance.
pub(crate) async fn act<F>(
    svc: &Workflow,
    req: &HttpRequest,
    id: Uuid,
    actor: String,
    op: F,
) -> Result<HttpResponse, Problem>
where
    F: Fn(
            &crate::definition::Compiled,
            &mut Instance,
            &dyn engine::Directory,
            &str,
            DateTime<Utc>,
        ) -> Result<Vec<engine::Effect>, engine::EngineError>
        + Send
        + Sync
        + 'static,
{
    let now = svc.clock.now();
    let who = actor.clone();
    let job = StepJob {
        target: Target::Instance {
            id,
            op: Arc::new(move |compiled, instance, directory| {
                op(compiled, instance, directory, &who, now)
            }),
        },
        actor,
        now,
        correlation: correlation(req),
    };
    svc.run_step(job).await.map_err(|error| match error {
        StepError::NotFound => Problem::new(codes::WORKFLOW_INSTANCE_NOT_FOUND),
        other => Problem::from(other),
    })?;
    let view = svc.db.run(move |conn| read(conn, id, false)).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /v1/workflow-incidents` paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IncidentQuery {
    /// At most this many (1–500, default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// `GET /v1/workflow-incidents`: running instances with a stuck token, oldest first. (Not
/// `/v1/incidents`: that path is the resolution service's, and the services share one API.)
#[utoipa::path(get, path = "/v1/workflow-incidents", tag = "instances", params(IncidentQuery),
    responses((status = 200, description = "Instances that need a retry", body = [InstanceView])),
    security(("bearer" = [])))]
pub async fn list_incidents(
    _who: Authenticated<WorkflowAdmin>,
    query: Query<IncidentQuery>,
    svc: web::Data<Workflow>,
) -> Result<HttpResponse, Problem> {
    let limit = query.0.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::field("limit", "must be 1 to 500"));
    }
    let views = svc
        .db
        .run(move |conn| -> Result<Vec<InstanceView>, Problem> {
            store::with_incidents(conn, limit)?
                .iter()
                .map(|row| Ok(view(row, &row.instance()?, None)))
                .collect()
        })
        .await?;
    Ok(HttpResponse::Ok().json(views))
}
