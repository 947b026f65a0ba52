//! `/v1/cis`: configuration items, their relations and impact analysis.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated};
use meridian_chassis::clock::utc;
use meridian_chassis::problem::{InvalidParam, Json, Query, codes};
use meridian_chassis::telemetry::trace_id_of as correlation;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::ConfigurationManager;
use crate::Control;
use crate::domain::ci::{Criticality, RelationKind, Status, check_attributes};
use crate::store::cis::{self as store, CiRow, Context, Filter, RelationRow};
use crate::store::impact::{self, Direction};

const SHORT: usize = 200;

fn not_found() -> Problem {
    Problem::new(codes::CI_NOT_FOUND)
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// A CI as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CiView {
    /// Id.
    pub id: String,
    /// Its type.
    pub ci_type: String,
    /// Name.
    pub name: String,
    /// Who is accountable for it.
    pub owner: String,
    /// Where it is in its life.
    pub status: Status,
    /// e.g. `production`.
    pub environment: String,
    /// How much depends on it.
    pub criticality: Criticality,
    /// Attributes, as its type declares them.
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, Value>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Increases with every change (the ETag).
    pub version: i64,
}

impl From<&CiRow> for CiView {
    fn from(row: &CiRow) -> Self {
        Self {
            id: row.id.clone(),
            ci_type: row.ci_type.clone(),
            name: row.name.clone(),
            owner: row.owner.clone(),
            status: Status::parse(&row.status).unwrap_or(Status::InService),
            environment: row.environment.clone(),
            criticality: Criticality::parse(&row.criticality).unwrap_or(Criticality::Medium),
            attributes: serde_json::from_str(&row.attributes).unwrap_or_default(),
            created_at: utc(row.created_at),
            updated_at: utc(row.updated_at),
            version: row.version,
        }
    }
}

fn respond(status: actix_web::http::StatusCode, row: &CiRow) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::ETAG, etag(row.version)))
        .json(CiView::from(row))
}

/// `GET /v1/ci-types`: the CI types and their attribute schemas (`control.ci_types`).
#[utoipa::path(get, path = "/v1/ci-types", tag = "cmdb",
    responses((status = 200, description = "Types by name", body = Object)),
    security(("bearer" = [])))]
pub async fn list_types(_who: Authenticated<AnyRole>, svc: web::Data<Control>) -> HttpResponse {
    HttpResponse::Ok().json(&svc.config.ci_types)
}

/// The body of `POST /v1/cis`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCi {
    /// One of `GET /v1/ci-types`.
    pub ci_type: String,
    /// Name.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Who is accountable (a user id).
    #[schema(min_length = 1, max_length = 200)]
    pub owner: String,
    /// Default `in_service`.
    pub status: Option<Status>,
    /// Default `production`.
    pub environment: Option<String>,
    /// Default `medium`.
    pub criticality: Option<Criticality>,
    /// Checked against the type's schema.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, Value>,
}

fn text(params: &mut Vec<InvalidParam>, name: &str, value: &str) {
    if value.trim().is_empty() || value.chars().count() > SHORT {
        params.push(InvalidParam::new(
            name,
            format!("must be 1 to {SHORT} characters"),
        ));
    }
}

/// Checks a new CI and builds its row; the bad fields are named under `prefix`.
fn new_ci(
    types: &std::collections::BTreeMap<String, crate::config::CiType>,
    body: CreateCi,
    prefix: &str,
    now: DateTime<Utc>,
) -> Result<CiRow, Vec<InvalidParam>> {
    let mut params = Vec::new();
    text(&mut params, "name", &body.name);
    text(&mut params, "owner", &body.owner);
    let environment = body.environment.unwrap_or_else(|| "production".to_owned());
    text(&mut params, "environment", &environment);
    if let Err((field, reason)) = check_attributes(types, &body.ci_type, &body.attributes) {
        params.push(InvalidParam::new(field, reason));
    }
    if !params.is_empty() {
        return Err(params
            .into_iter()
            .map(|p| InvalidParam::new(format!("{prefix}{}", p.name), p.reason))
            .collect());
    }
    Ok(CiRow {
        id: Uuid::now_v7().to_string(),
        ci_type: body.ci_type,
        name: body.name.trim().to_owned(),
        owner: body.owner.trim().to_owned(),
        status: body.status.unwrap_or(Status::InService).as_str().to_owned(),
        environment,
        criticality: body
            .criticality
            .unwrap_or(Criticality::Medium)
            .as_str()
            .to_owned(),
        attributes: Value::Object(body.attributes).to_string(),
        created_at: now.naive_utc(),
        updated_at: now.naive_utc(),
        version: 1,
    })
}

/// `POST /v1/cis`: records a CI.
#[utoipa::path(post, path = "/v1/cis", tag = "cmdb", request_body = CreateCi,
    responses(
        (status = 201, description = "Recorded", body = CiView, headers(("ETag" = String), ("Location" = String))),
        (status = 400, description = "Bad fields, named (attributes checked against the type)", body = meridian_chassis::problem::ProblemBody),
        (status = 403, description = "Not a configuration manager", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn create_ci(
    who: Authenticated<ConfigurationManager>,
    req: HttpRequest,
    body: Json<CreateCi>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let now = meridian_chassis::clock::to_micros(svc.clock.now());
    let row = new_ci(&svc.config.ci_types, body.0, "", now)
        .map_err(|params| Problem::invalid(codes::INVALID_BODY, params))?;
    let actor = who.subject.clone();
    let correlation = correlation(&req);
    let stored = row.clone();
    svc.db
        .transaction(move |conn| -> Result<(), Problem> {
            let ctx = Context {
                actor: &actor,
                now,
                correlation_id: correlation.as_deref(),
            };
            Ok(store::insert(conn, &stored, ctx)?)
        })
        .await?;
    svc.waker.wake();
    let mut response = respond(actix_web::http::StatusCode::CREATED, &row);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/cis/{}", row.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /v1/cis` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CiQuery {
    /// Of this type.
    #[serde(rename = "type")]
    pub ci_type: Option<String>,
    /// Owned by (`me` for the caller).
    pub owner: Option<String>,
    /// In this status.
    pub status: Option<Status>,
    /// Whose name contains this.
    pub name: Option<String>,
    /// The cursor: the last id of the previous page.
    pub after: Option<String>,
    /// Page size, 1–500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// A page of CIs.
#[derive(Debug, Serialize, ToSchema)]
pub struct CiPage {
    /// The CIs, by id.
    pub items: Vec<CiView>,
    /// The cursor of the next page, if there is one.
    pub next: Option<String>,
}

/// `GET /v1/cis`: CIs with filters and cursor pagination.
#[utoipa::path(get, path = "/v1/cis", tag = "cmdb", params(CiQuery),
    responses((status = 200, description = "A page of CIs", body = CiPage)),
    security(("bearer" = [])))]
pub async fn list_cis(
    who: Authenticated<AnyRole>,
    query: Query<CiQuery>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::field("limit", "must be 1 to 500"));
    }
    let filter = Filter {
        ci_type: query.ci_type,
        owner: query
            .owner
            .map(|o| if o == "me" { who.subject.clone() } else { o }),
        status: query.status.map(|s| s.as_str().to_owned()),
        name: query.name,
        after: query.after,
        limit: limit + 1,
    };
    let page = svc
        .db
        .run(move |conn| -> Result<CiPage, Problem> {
            let mut rows = store::list(conn, &filter)?;
            let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            let next = more.then(|| rows.last().map(|r| r.id.clone())).flatten();
            Ok(CiPage {
                items: rows.iter().map(CiView::from).collect(),
                next,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// One entry of a CI's history (`CiHistoryEntry` in the document, which every service shares).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CiHistoryEntry)]
pub struct HistoryEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// `ci.created`, `ci.updated`, `ci.related`, `ci.unrelated`.
    pub action: String,
    /// Before (JSON).
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    /// After (JSON).
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

/// A CI with its relations and history.
#[derive(Debug, Serialize, ToSchema)]
pub struct CiDetail {
    /// The CI.
    #[serde(flatten)]
    pub ci: CiView,
    /// Its relations, both ways.
    pub relations: Vec<RelationRow>,
    /// Every change, oldest first.
    pub history: Vec<HistoryEntry>,
}

/// `GET /v1/cis/{id}`: the CI, its relations and its history (who, when, before, after).
#[utoipa::path(get, path = "/v1/cis/{id}", tag = "cmdb", params(("id" = String, Path)),
    responses(
        (status = 200, description = "The CI", body = CiDetail, headers(("ETag" = String))),
        (status = 404, description = "No such CI", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_ci(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let (row, relations, history) = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            let row = store::find(conn, &id)?.ok_or_else(not_found)?;
            let relations = store::relations_of(conn, &id)?;
            let history = meridian_chassis::audit::list_for(conn, "ci", &id)?;
            Ok((row, relations, history))
        })
        .await?;
    let parse = |json: Option<String>| json.and_then(|j| serde_json::from_str(&j).ok());
    let history = history
        .into_iter()
        .map(|entry| HistoryEntry {
            at: utc(entry.at),
            actor: entry.actor,
            action: entry.action,
            before: parse(entry.before),
            after: parse(entry.after),
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(row.version)))
        .json(CiDetail {
            ci: CiView::from(&row),
            relations,
            history,
        }))
}

/// The body of `PATCH /v1/cis/{id}`: the fields to change (attributes are replaced whole).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCi {
    /// Name.
    pub name: Option<String>,
    /// Owner.
    #[schema(max_length = 200)]
    pub owner: Option<String>,
    /// Status.
    pub status: Option<Status>,
    /// Environment.
    pub environment: Option<String>,
    /// Criticality.
    pub criticality: Option<Criticality>,
    /// All the attributes, checked against the type.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<serde_json::Map<String, Value>>,
}

/// `PATCH /v1/cis/{id}`: changes a CI; send `If-Match` with its ETag to refuse a stale write.
#[utoipa::path(patch, path = "/v1/cis/{id}", tag = "cmdb", params(("id" = String, Path)), request_body = UpdateCi,
    responses(
        (status = 200, description = "Changed", body = CiView, headers(("ETag" = String))),
        (status = 400, description = "Bad fields, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such CI", body = meridian_chassis::problem::ProblemBody),
        (status = 412, description = "Changed since it was read", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn update_ci(
    who: Authenticated<ConfigurationManager>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<UpdateCi>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let body = body.0;
    let mut params = Vec::new();
    for (name, value) in [
        ("name", &body.name),
        ("owner", &body.owner),
        ("environment", &body.environment),
    ] {
        if let Some(value) = value {
            text(&mut params, name, value);
        }
    }
    if !params.is_empty() {
        return Err(Problem::invalid(codes::INVALID_BODY, params));
    }
    let expected = match req.headers().get(header::IF_MATCH) {
        None => None,
        Some(value) => {
            let value = value.to_str().unwrap_or_default().trim();
            if value == "*" {
                None
            } else {
                Some(
                    value
                        .trim_matches('"')
                        .parse::<i64>()
                        .map_err(|_| Problem::field("If-Match", "must be an ETag of this CI"))?,
                )
            }
        }
    };
    let id = id.into_inner();
    let now = meridian_chassis::clock::to_micros(svc.clock.now());
    let actor = who.subject.clone();
    let correlation = correlation(&req);
    let types = svc.config.ci_types.clone();
    let row = svc
        .db
        .transaction(move |conn| -> Result<CiRow, Problem> {
            let before = store::load_for_update(conn, &id)?.ok_or_else(not_found)?;
            if expected.is_some_and(|v| v != before.version) {
                return Err(Problem::new(codes::PRECONDITION_FAILED)
                    .detail(format!("the CI is at version {}", before.version)));
            }
            let mut after = before.clone();
            if let Some(attributes) = body.attributes {
                check_attributes(&types, &after.ci_type, &attributes)
                    .map_err(|(field, reason)| Problem::field(field, reason))?;
                after.attributes = Value::Object(attributes).to_string();
            }
            if let Some(name) = body.name {
                after.name = name.trim().to_owned();
            }
            if let Some(owner) = body.owner {
                after.owner = owner.trim().to_owned();
            }
            if let Some(environment) = body.environment {
                after.environment = environment;
            }
            if let Some(status) = body.status {
                after.status = status.as_str().to_owned();
            }
            if let Some(criticality) = body.criticality {
                after.criticality = criticality.as_str().to_owned();
            }
            if after == before {
                return Ok(before);
            }
            after.version += 1;
            after.updated_at = now.naive_utc();
            let ctx = Context {
                actor: &actor,
                now,
                correlation_id: correlation.as_deref(),
            };
            store::update(conn, &before, &after, ctx)?;
            Ok(after)
        })
        .await?;
    svc.waker.wake();
    Ok(respond(actix_web::http::StatusCode::OK, &row))
}

/// The body of `POST /v1/cis/{id}/relations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Relate {
    /// How this CI relates to the target.
    pub kind: RelationKind,
    /// The other CI's id.
    pub target: String,
}

/// `POST /v1/cis/{id}/relations`: records `{id} <kind> {target}`.
#[utoipa::path(post, path = "/v1/cis/{id}/relations", tag = "cmdb", params(("id" = String, Path)), request_body = Relate,
    responses(
        (status = 201, description = "Recorded", body = RelationRow),
        (status = 400, description = "A CI related to itself, or an unknown target", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such CI", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Already related this way", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn relate_ci(
    who: Authenticated<ConfigurationManager>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<Relate>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let body = body.0;
    if body.target == id {
        return Err(Problem::field("target", "a CI cannot be related to itself"));
    }
    let now = meridian_chassis::clock::to_micros(svc.clock.now());
    let actor = who.subject.clone();
    let correlation = correlation(&req);
    let row = svc
        .db
        .transaction(move |conn| -> Result<RelationRow, Problem> {
            store::find(conn, &id)?.ok_or_else(not_found)?;
            if store::find(conn, &body.target)?.is_none() {
                return Err(Problem::field("target", "no CI has this id"));
            }
            if store::related(conn, &id, body.kind.as_str(), &body.target)? {
                return Err(Problem::new(codes::CI_RELATION_EXISTS));
            }
            let row = RelationRow {
                id: Uuid::now_v7().to_string(),
                source: id,
                kind: body.kind.as_str().to_owned(),
                target: body.target,
                created_by: actor.clone(),
                created_at: now.naive_utc(),
            };
            let ctx = Context {
                actor: &actor,
                now,
                correlation_id: correlation.as_deref(),
            };
            store::relate(conn, &row, ctx)?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Created().json(row))
}

/// `DELETE /v1/relations/{id}`: removes a relation (on the source CI's history).
#[utoipa::path(delete, path = "/v1/relations/{id}", tag = "cmdb", params(("id" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such relation", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_relation(
    who: Authenticated<ConfigurationManager>,
    req: HttpRequest,
    id: web::Path<String>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let now = meridian_chassis::clock::to_micros(svc.clock.now());
    let actor = who.subject.clone();
    let correlation = correlation(&req);
    let removed = svc
        .db
        .transaction(move |conn| -> Result<bool, Problem> {
            let ctx = Context {
                actor: &actor,
                now,
                correlation_id: correlation.as_deref(),
            };
            Ok(store::unrelate(conn, &id, ctx)?)
        })
        .await?;
    if removed {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(Problem::new(codes::CI_RELATION_NOT_FOUND))
    }
}

/// `GET /v1/cis/{id}/impact` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImpactQuery {
    /// `up` (default): what is affected if the CI fails; `down`: what the CI needs.
    pub direction: Option<String>,
    /// Relations to follow, 1–10 (default 5).
    #[param(minimum = 1, maximum = 10)]
    pub depth: Option<usize>,
}

/// A step of an impact path.
#[derive(Debug, Serialize, ToSchema)]
pub struct PathStep {
    /// A CI.
    pub id: String,
    /// The relation kind that led to it (none for the start).
    pub kind: Option<String>,
}

/// An affected CI.
#[derive(Debug, Serialize, ToSchema)]
pub struct Affected {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Type.
    pub ci_type: String,
    /// Criticality.
    pub criticality: String,
    /// Relations from the start.
    pub depth: usize,
    /// A shortest path from the start to it.
    pub path: Vec<PathStep>,
}

/// The result of an impact analysis.
#[derive(Debug, Serialize, ToSchema)]
pub struct Impact {
    /// The CI analysed.
    pub ci: String,
    /// `up` or `down`.
    pub direction: String,
    /// The depth asked for.
    pub depth: usize,
    /// Every CI reached, nearest first.
    pub affected: Vec<Affected>,
    /// The business services among them (CIs of type `service`).
    pub services: Vec<Affected>,
}

/// `GET /v1/cis/{id}/impact`: the CIs and business services affected, with the paths to them.
#[utoipa::path(get, path = "/v1/cis/{id}/impact", tag = "cmdb", params(("id" = String, Path), ImpactQuery),
    responses(
        (status = 200, description = "What is affected", body = Impact),
        (status = 400, description = "A bad direction or depth", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such CI", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn impact(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    query: Query<ImpactQuery>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let direction = match query.direction.as_deref().unwrap_or("up") {
        "up" => Direction::Up,
        "down" => Direction::Down,
        _ => return Err(Problem::field("direction", "must be up or down")),
    };
    let depth = query.depth.unwrap_or(5);
    if !(1..=10).contains(&depth) {
        return Err(Problem::field("depth", "must be 1 to 10"));
    }
    let id = id.into_inner();
    let start = id.clone();
    let reached = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            store::find(conn, &start)?.ok_or_else(not_found)?;
            Ok(impact::analyse(conn, &start, direction, depth)?)
        })
        .await?;
    let affected: Vec<Affected> = reached
        .into_iter()
        .map(|r| Affected {
            id: r.ci.id,
            name: r.ci.name,
            ci_type: r.ci.ci_type,
            criticality: r.ci.criticality,
            depth: r.depth,
            path: r
                .path
                .into_iter()
                .map(|(id, kind)| PathStep { id, kind })
                .collect(),
        })
        .collect();
    let services = affected
        .iter()
        .filter(|a| a.ci_type == "service")
        .map(|a| Affected {
            id: a.id.clone(),
            name: a.name.clone(),
            ci_type: a.ci_type.clone(),
            criticality: a.criticality.clone(),
            depth: a.depth,
            path: a
                .path
                .iter()
                .map(|p| PathStep {
                    id: p.id.clone(),
                    kind: p.kind.clone(),
                })
                .collect(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(Impact {
        ci: id,
        direction: match direction {
            Direction::Up => "up".to_owned(),
            Direction::Down => "down".to_owned(),
        },
        depth,
        affected,
        services,
    }))
}

/// The most rows one import takes.
const IMPORT_MAX: usize = 10_000;

/// The CSV columns of import and export; `attributes` is a JSON object.
const CSV_COLUMNS: [&str; 7] = [
    "ci_type",
    "name",
    "owner",
    "status",
    "environment",
    "criticality",
    "attributes",
];

/// What an import did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Imported {
    /// CIs recorded.
    pub imported: usize,
    /// Their ids, in the order of the rows.
    pub ids: Vec<String>,
}

fn content_type(req: &HttpRequest) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Reads CSV rows into CI bodies; a row that cannot be read is an error named `rows[i]`.
fn read_csv(bytes: &[u8]) -> Result<Vec<Result<CreateCi, InvalidParam>>, Problem> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| Problem::field("body", format!("the CSV header cannot be read: {e}")))?
        .clone();
    for required in ["ci_type", "name", "owner"] {
        if !headers.iter().any(|h| h == required) {
            return Err(Problem::field(
                "body",
                format!("the CSV header has no `{required}` column"),
            ));
        }
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let row = record
            .map_err(|e| InvalidParam::new(format!("rows[{i}]"), format!("cannot be read: {e}")))
            .and_then(|record| {
                let mut object = serde_json::Map::new();
                for (header, value) in headers.iter().zip(record.iter()) {
                    if value.is_empty() {
                        continue;
                    }
                    let value = if header == "attributes" {
                        serde_json::from_str(value).map_err(|e| {
                            InvalidParam::new(
                                format!("rows[{i}].attributes"),
                                format!("is not a JSON object: {e}"),
                            )
                        })?
                    } else {
                        Value::String(value.to_owned())
                    };
                    object.insert(header.to_owned(), value);
                }
                serde_json::from_value::<CreateCi>(Value::Object(object))
                    .map_err(|e| InvalidParam::new(format!("rows[{i}]"), e.to_string()))
            });
        rows.push(row);
    }
    Ok(rows)
}

/// `POST /v1/cis/import`: records many CIs at once, from a JSON array of `POST /v1/cis` bodies
/// or from CSV (columns `ci_type,name,owner,status,environment,criticality,attributes`, the last
/// a JSON object). Every row is checked first: any bad row refuses the whole import, each bad
/// field named `rows[i].<field>`, and nothing is recorded.
#[utoipa::path(post, path = "/v1/cis/import", tag = "cmdb",
    request_body(content = Vec<CreateCi>, description = "application/json, or text/csv"),
    responses(
        (status = 201, description = "All recorded", body = Imported),
        (status = 400, description = "Every bad row and field, named; nothing recorded", body = meridian_chassis::problem::ProblemBody),
        (status = 415, description = "Neither JSON nor CSV", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn import_cis(
    who: Authenticated<ConfigurationManager>,
    req: HttpRequest,
    body: web::Bytes,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let rows: Vec<Result<CreateCi, InvalidParam>> = match content_type(&req).as_str() {
        "application/json" => {
            let values: Vec<Value> = meridian_chassis::problem::from_json(&body)?;
            values
                .into_iter()
                .enumerate()
                .map(|(i, value)| {
                    serde_json::from_value::<CreateCi>(value)
                        .map_err(|e| InvalidParam::new(format!("rows[{i}]"), e.to_string()))
                })
                .collect()
        }
        "text/csv" => read_csv(&body)?,
        _ => {
            return Err(Problem::new(codes::UNSUPPORTED_MEDIA_TYPE)
                .detail("send application/json (an array of CIs) or text/csv"));
        }
    };
    if rows.is_empty() || rows.len() > IMPORT_MAX {
        return Err(Problem::field(
            "rows",
            format!("send 1 to {IMPORT_MAX} rows"),
        ));
    }
    let now = meridian_chassis::clock::to_micros(svc.clock.now());
    let mut params = Vec::new();
    let mut cis = Vec::new();
    for (i, row) in rows.into_iter().enumerate() {
        match row
            .map_err(|p| vec![p])
            .and_then(|body| new_ci(&svc.config.ci_types, body, &format!("rows[{i}]."), now))
        {
            Ok(ci) => cis.push(ci),
            Err(bad) => params.extend(bad),
        }
    }
    if !params.is_empty() {
        return Err(Problem::invalid(codes::INVALID_BODY, params));
    }
    let actor = who.subject.clone();
    let correlation = correlation(&req);
    let ids: Vec<String> = cis.iter().map(|c| c.id.clone()).collect();
    svc.db
        .transaction(move |conn| -> Result<(), Problem> {
            let ctx = Context {
                actor: &actor,
                now,
                correlation_id: correlation.as_deref(),
            };
            for ci in &cis {
                store::insert(conn, ci, ctx)?;
            }
            Ok(())
        })
        .await?;
    svc.waker.wake();
    Ok(HttpResponse::Created().json(Imported {
        imported: ids.len(),
        ids,
    }))
}

/// `GET /v1/cis/export` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
    /// Only CIs of this type.
    #[serde(rename = "type")]
    pub ci_type: Option<String>,
}

/// `GET /v1/cis/export`: every CI (of a type), as JSON or as CSV that `POST /v1/cis/import`
/// reads back.
#[utoipa::path(get, path = "/v1/cis/export", tag = "cmdb", params(ExportQuery),
    responses(
        (status = 200, description = "The CIs", body = Vec<CiView>),
        (status = 400, description = "An unknown format", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn export_cis(
    _who: Authenticated<AnyRole>,
    query: Query<ExportQuery>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let format = query.format.unwrap_or_else(|| "json".to_owned());
    if format != "json" && format != "csv" {
        return Err(Problem::field("format", "must be json or csv"));
    }
    let mut rows: Vec<CiRow> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let filter = Filter {
            ci_type: query.ci_type.clone(),
            after: after.clone(),
            limit: 5_000,
            ..Filter::default()
        };
        let page = svc
            .db
            .run(move |conn| -> Result<Vec<CiRow>, Problem> { Ok(store::list(conn, &filter)?) })
            .await?;
        let done = page.len() < 5_000;
        after = page.last().map(|r| r.id.clone());
        rows.extend(page);
        if done || rows.len() >= 1_000_000 {
            break;
        }
    }
    if format == "json" {
        return Ok(HttpResponse::Ok().json(rows.iter().map(CiView::from).collect::<Vec<_>>()));
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    let written = writer.write_record(CSV_COLUMNS).and_then(|()| {
        rows.iter().try_for_each(|row| {
            writer.write_record([
                row.ci_type.as_str(),
                row.name.as_str(),
                row.owner.as_str(),
                row.status.as_str(),
                row.environment.as_str(),
                row.criticality.as_str(),
                row.attributes.as_str(),
            ])
        })
    });
    let bytes = written
        .and_then(|()| {
            writer
                .into_inner()
                .map_err(|e| csv::Error::from(e.into_error()))
        })
        .map_err(|e| Problem::internal(&e))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .body(bytes))
}
