//! `/v1/releases` and `/v1/baselines` (ISO/IEC 20000-1 8.5.3): releases group approved changes;
//! a deployment is refused unless every change is approved, takes a baseline of the affected
//! CIs, and is announced (`control.deployment.recorded`, and `control.deployment.failed`, which
//! the resolution service turns into an incident).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated};
use meridian_chassis::bus::Envelope;
use meridian_chassis::clock::utc;
use meridian_chassis::outbox;
use meridian_chassis::problem::{InvalidParam, Json, codes};
use meridian_chassis::telemetry::trace_id_of as correlation;
use meridian_proto::Message;
use meridian_proto::control::v1::DeploymentRecorded;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::changes::ChangeRequester;
use crate::Control;
use crate::domain::change::ChangeState;
use crate::store::changes;
use crate::store::cis::{self as cis_store, CiRow, Context, SOURCE};
use crate::store::releases::{self as store, DeploymentRow, ReleaseRow};

const SHORT: usize = 200;
const LONG: usize = 20_000;

/// The states of an approved change.
const APPROVED: [ChangeState; 6] = [
    ChangeState::Approved,
    ChangeState::Scheduled,
    ChangeState::Implementing,
    ChangeState::Implemented,
    ChangeState::Reviewed,
    ChangeState::Closed,
];

/// A change of a release, as the release shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseChange {
    /// Id.
    pub id: String,
    /// Number.
    pub number: String,
    /// Its state.
    pub state: String,
    /// Whether it counts as approved.
    pub approved: bool,
}

/// A release.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Version delivered.
    pub version: String,
    /// Its changes and their states.
    pub changes: Vec<ReleaseChange>,
    /// What must hold.
    pub acceptance_criteria: String,
    /// The latest test results.
    #[schema(value_type = Option<Object>)]
    pub test_results: Option<Value>,
    /// Every deployment, oldest first.
    pub deployments: Vec<DeploymentRow>,
    /// Who recorded it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

fn view(
    conn: &mut meridian_chassis::db::AnyConnection,
    row: &ReleaseRow,
) -> Result<ReleaseView, Problem> {
    let ids: Vec<String> = serde_json::from_str(&row.changes).unwrap_or_default();
    let mut members = Vec::new();
    for id in ids {
        if let Some(change) = changes::find(conn, &id)? {
            let approved = ChangeState::parse(&change.state).is_some_and(|s| APPROVED.contains(&s));
            members.push(ReleaseChange {
                id,
                number: change.number,
                state: change.state,
                approved,
            });
        }
    }
    Ok(ReleaseView {
        id: row.id.clone(),
        name: row.name.clone(),
        version: row.version.clone(),
        changes: members,
        acceptance_criteria: row.acceptance_criteria.clone(),
        test_results: row
            .test_results
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok()),
        deployments: store::deployments_of(conn, &row.id)?,
        created_by: row.created_by.clone(),
        created_at: utc(row.created_at),
    })
}

/// The body of `POST /v1/releases`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRelease {
    /// Name.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// The version it delivers.
    #[schema(min_length = 1, max_length = 200)]
    pub version: String,
    /// The changes it groups (at least one).
    pub changes: Vec<String>,
    /// What must hold for it to be accepted.
    #[schema(min_length = 1, max_length = 20000)]
    pub acceptance_criteria: String,
}

/// `POST /v1/releases`: groups changes into a release.
#[utoipa::path(post, path = "/v1/releases", tag = "releases", request_body = CreateRelease,
    responses(
        (status = 201, description = "Recorded", body = ReleaseView),
        (status = 400, description = "Bad fields, named (an unknown change is `changes[i]`)", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn create_release(
    who: Authenticated<ChangeRequester>,
    req: HttpRequest,
    body: Json<CreateRelease>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let body = body.0;
    let mut params = Vec::new();
    for (name, value, max) in [
        ("name", &body.name, SHORT),
        ("version", &body.version, SHORT),
        ("acceptance_criteria", &body.acceptance_criteria, LONG),
    ] {
        if value.trim().is_empty() || value.chars().count() > max {
            params.push(InvalidParam::new(
                name,
                format!("must be 1 to {max} characters"),
            ));
        }
    }
    if body.changes.is_empty() {
        params.push(InvalidParam::new(
            "changes",
            "a release groups at least one change",
        ));
    }
    if !params.is_empty() {
        return Err(Problem::invalid(codes::INVALID_BODY, params));
    }
    let now = meridian_chassis::clock::to_micros(svc.clock.now());
    let actor = who.subject.clone();
    let correlation = correlation(&req);
    let release = svc
        .db
        .transaction(move |conn| -> Result<ReleaseView, Problem> {
            for (i, id) in body.changes.iter().enumerate() {
                if changes::find(conn, id)?.is_none() {
                    return Err(Problem::field(
                        format!("changes[{i}]"),
                        "no change has this id",
                    ));
                }
            }
            let row = ReleaseRow {
                id: Uuid::now_v7().to_string(),
                name: body.name.trim().to_owned(),
                version: body.version.trim().to_owned(),
                changes: Value::from(body.changes).to_string(),
                acceptance_criteria: body.acceptance_criteria,
                test_results: None,
                created_by: actor.clone(),
                created_at: now.naive_utc(),
            };
            let ctx = Context {
                actor: &actor,
                now,
                correlation_id: correlation.as_deref(),
            };
            store::insert(conn, &row, ctx)?;
            view(conn, &row)
        })
        .await?;
    Ok(HttpResponse::Created().json(release))
}

/// `GET /v1/releases/{id}`: the release, its changes' states and its deployments.
#[utoipa::path(get, path = "/v1/releases/{id}", tag = "releases", params(("id" = String, Path)),
    responses(
        (status = 200, description = "The release", body = ReleaseView),
        (status = 404, description = "No such release", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_release(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let release = svc
        .db
        .run(move |conn| -> Result<ReleaseView, Problem> {
            let row =
                store::find(conn, &id)?.ok_or_else(|| Problem::new(codes::RELEASE_NOT_FOUND))?;
            view(conn, &row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(release))
}

/// The body of `POST /v1/releases/{id}/test-results`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestResults {
    /// Whether the acceptance criteria were met.
    pub passed: bool,
    /// What was tested and found.
    #[schema(min_length = 1, max_length = 20000)]
    pub summary: String,
}

/// `POST /v1/releases/{id}/test-results`: records the release's test results.
#[utoipa::path(post, path = "/v1/releases/{id}/test-results", tag = "releases", params(("id" = String, Path)), request_body = TestResults,
    responses(
        (status = 200, description = "Recorded", body = ReleaseView),
        (status = 404, description = "No such release", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn record_test_results(
    who: Authenticated<ChangeRequester>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<TestResults>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let body = body.0;
    super::required("summary", &body.summary, LONG)?;
    let id = id.into_inner();
    let now = meridian_chassis::clock::to_micros(svc.clock.now());
    let actor = who.subject.clone();
    let correlation = correlation(&req);
    let release = svc
        .db
        .transaction(move |conn| -> Result<ReleaseView, Problem> {
            let before =
                store::find(conn, &id)?.ok_or_else(|| Problem::new(codes::RELEASE_NOT_FOUND))?;
            let results =
                json!({"passed": body.passed, "summary": body.summary, "by": actor, "at": now});
            let ctx = Context {
                actor: &actor,
                now,
                correlation_id: correlation.as_deref(),
            };
            let after = store::set_test_results(conn, &before, &results.to_string(), ctx)?;
            view(conn, &after)
        })
        .await?;
    Ok(HttpResponse::Ok().json(release))
}

/// The body of `POST /v1/releases/{id}/deployments`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ReleaseDeployment)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// Where, e.g. `production`.
    #[schema(min_length = 1, max_length = 200)]
    pub environment: String,
    /// `succeeded` or `failed`.
    pub outcome: Outcome,
    /// What happened.
    pub notes: String,
}

/// A deployment's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Deployed as planned.
    Succeeded,
    /// Failed (and rolled back).
    Failed,
}

/// `POST /v1/releases/{id}/deployments`: records a deployment, refused unless every change of
/// the release is approved; takes a baseline of the affected CIs; a failure is announced for the
/// resolution service to record as an incident.
#[utoipa::path(post, path = "/v1/releases/{id}/deployments", tag = "releases", params(("id" = String, Path)), request_body = Deploy,
    responses(
        (status = 201, description = "Recorded, with its baseline", body = DeploymentRow),
        (status = 404, description = "No such release", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "A change is not approved (named in the detail)", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn deploy_release(
    who: Authenticated<ChangeRequester>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<Deploy>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let body = body.0;
    let mut params = Vec::new();
    if body.environment.trim().is_empty() || body.environment.chars().count() > SHORT {
        params.push(InvalidParam::new(
            "environment",
            format!("must be 1 to {SHORT} characters"),
        ));
    }
    if body.notes.chars().count() > LONG {
        params.push(InvalidParam::new(
            "notes",
            format!("must be at most {LONG} characters"),
        ));
    }
    if !params.is_empty() {
        return Err(Problem::invalid(codes::INVALID_BODY, params));
    }
    let id = id.into_inner();
    let now = meridian_chassis::clock::to_micros(svc.clock.now());
    let actor = who.subject.clone();
    let correlation = correlation(&req);
    let deployment = svc
        .db
        .transaction(move |conn| -> Result<DeploymentRow, Problem> {
            let release =
                store::find(conn, &id)?.ok_or_else(|| Problem::new(codes::RELEASE_NOT_FOUND))?;
            let change_ids: Vec<String> =
                serde_json::from_str(&release.changes).unwrap_or_default();
            let mut unapproved = Vec::new();
            let mut ci_ids: Vec<String> = Vec::new();
            for change_id in &change_ids {
                if let Some(change) = changes::find(conn, change_id)? {
                    let approved =
                        ChangeState::parse(&change.state).is_some_and(|s| APPROVED.contains(&s));
                    if !approved {
                        unapproved.push(format!("{} ({})", change.number, change.state));
                    }
                    ci_ids.extend(changes::cis_of(&change));
                }
            }
            if !unapproved.is_empty() {
                return Err(Problem::new(codes::RELEASE_NOT_APPROVED)
                    .detail(format!("not approved: {}", unapproved.join(", "))));
            }
            ci_ids.sort();
            ci_ids.dedup();
            let ctx = Context {
                actor: &actor,
                now,
                correlation_id: correlation.as_deref(),
            };
            let baseline = store::take_baseline(
                conn,
                Uuid::now_v7().to_string(),
                format!(
                    "{} {} to {}",
                    release.name, release.version, body.environment
                ),
                &ci_ids,
                ctx,
            )?;
            let outcome = match body.outcome {
                Outcome::Succeeded => "succeeded",
                Outcome::Failed => "failed",
            };
            let row = DeploymentRow {
                id: Uuid::now_v7().to_string(),
                release_id: release.id.clone(),
                environment: body.environment.trim().to_owned(),
                outcome: outcome.to_owned(),
                notes: body.notes,
                baseline_id: baseline.id.clone(),
                deployed_by: actor.clone(),
                deployed_at: now.naive_utc(),
            };
            store::deploy(conn, &row, ctx)?;
            let payload = DeploymentRecorded {
                deployment_id: row.id.clone(),
                release_id: release.id.clone(),
                release_name: release.name.clone(),
                version: release.version.clone(),
                environment: row.environment.clone(),
                outcome: outcome.to_owned(),
                notes: row.notes.clone(),
                configuration_items: ci_ids,
                changes: change_ids,
                baseline_id: baseline.id,
            }
            .encode_to_vec();
            let mut types = vec!["control.deployment.recorded"];
            if body.outcome == Outcome::Failed {
                types.push("control.deployment.failed");
            }
            let events: Vec<Envelope> = types
                .into_iter()
                .map(|event_type| Envelope {
                    id: Uuid::now_v7(),
                    event_type: event_type.to_owned(),
                    source: SOURCE.to_owned(),
                    subject: row.id.clone(),
                    time: now,
                    correlation_id: correlation.clone(),
                    causation_id: None,
                    actor: Some(actor.clone()),
                    payload: payload.clone(),
                })
                .collect();
            outbox::enqueue_all(conn, &events)?;
            Ok(row)
        })
        .await?;
    svc.waker.wake();
    Ok(HttpResponse::Created().json(deployment))
}

/// A baseline and how the CIs differ from it now.
#[derive(Debug, Serialize, ToSchema)]
pub struct BaselineView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Who took it.
    pub taken_by: String,
    /// When.
    pub taken_at: DateTime<Utc>,
    /// The CIs as they were.
    #[schema(value_type = Vec<Object>)]
    pub cis: Vec<Value>,
    /// What differs now: per CI, the fields changed (then, now), or `removed`.
    #[schema(value_type = Vec<Object>)]
    pub differences: Vec<Value>,
}

/// How the CIs of a snapshot differ now: per CI, the fields changed (then, now), or `removed`.
///
/// # Errors
/// A query failing.
pub(crate) fn differences(
    conn: &mut meridian_chassis::db::AnyConnection,
    then: &[CiRow],
) -> diesel::QueryResult<Vec<Value>> {
    let mut differences = Vec::new();
    for old in then {
        match cis_store::find(conn, &old.id)? {
            None => differences.push(json!({"ci": old.id, "removed": true})),
            Some(now) => {
                let before = serde_json::to_value(old).unwrap_or_default();
                let after = serde_json::to_value(&now).unwrap_or_default();
                let mut changed = serde_json::Map::new();
                for field in [
                    "name",
                    "owner",
                    "status",
                    "environment",
                    "criticality",
                    "attributes",
                ] {
                    if before[field] != after[field] {
                        changed.insert(
                            field.to_owned(),
                            json!({"then": before[field], "now": after[field]}),
                        );
                    }
                }
                if !changed.is_empty() {
                    differences.push(json!({"ci": old.id, "changed": changed}));
                }
            }
        }
    }
    Ok(differences)
}

/// `GET /v1/baselines/{id}`: a baseline and its difference from now.
#[utoipa::path(get, path = "/v1/baselines/{id}", tag = "releases", params(("id" = String, Path)),
    responses(
        (status = 200, description = "The baseline", body = BaselineView),
        (status = 404, description = "No such baseline", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_baseline(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let baseline = svc
        .db
        .run(move |conn| -> Result<BaselineView, Problem> {
            let row = store::baseline(conn, &id)?
                .ok_or_else(|| Problem::new(codes::BASELINE_NOT_FOUND))?;
            let then: Vec<CiRow> = serde_json::from_str(&row.snapshot).unwrap_or_default();
            let differences = differences(conn, &then)?;
            Ok(BaselineView {
                id: row.id,
                name: row.name,
                taken_by: row.taken_by,
                taken_at: utc(row.taken_at),
                cis: then
                    .iter()
                    .map(|c| serde_json::to_value(c).unwrap_or_default())
                    .collect(),
                differences,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(baseline))
}

/// The body of `POST /v1/baselines`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TakeBaseline {
    /// e.g. `before the Q4 upgrade`.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// The CIs to keep as they are now (at least one).
    pub configuration_items: Vec<String>,
}

/// `POST /v1/baselines`: a snapshot of some CIs as they are now, to compare with later.
#[utoipa::path(post, path = "/v1/baselines", tag = "releases", request_body = TakeBaseline,
    responses(
        (status = 201, description = "Taken", body = BaselineView),
        (status = 400, description = "Bad fields, named (an unknown CI is `configuration_items[i]`)", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn take_baseline(
    who: Authenticated<super::ConfigurationManager>,
    req: HttpRequest,
    body: Json<TakeBaseline>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let body = body.0;
    super::required("name", &body.name, SHORT)?;
    if body.configuration_items.is_empty() {
        return Err(Problem::field(
            "configuration_items",
            "name at least one CI",
        ));
    }
    let now = meridian_chassis::clock::to_micros(svc.clock.now());
    let actor = who.subject.clone();
    let correlation = correlation(&req);
    let row = svc
        .db
        .transaction(move |conn| -> Result<store::BaselineRow, Problem> {
            for (i, id) in body.configuration_items.iter().enumerate() {
                if cis_store::find(conn, id)?.is_none() {
                    return Err(Problem::field(
                        format!("configuration_items[{i}]"),
                        "no CI has this id",
                    ));
                }
            }
            let ctx = Context {
                actor: &actor,
                now,
                correlation_id: correlation.as_deref(),
            };
            Ok(store::take_baseline(
                conn,
                Uuid::now_v7().to_string(),
                body.name.trim().to_owned(),
                &body.configuration_items,
                ctx,
            )?)
        })
        .await?;
    let cis: Vec<CiRow> = serde_json::from_str(&row.snapshot).unwrap_or_default();
    Ok(HttpResponse::Created().json(BaselineView {
        id: row.id,
        name: row.name,
        taken_by: row.taken_by,
        taken_at: utc(row.taken_at),
        cis: cis
            .iter()
            .map(|c| serde_json::to_value(c).unwrap_or_default())
            .collect(),
        differences: Vec::new(),
    }))
}
