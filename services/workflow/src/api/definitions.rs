//! `/v1/definitions`: deployed versions; deploying a new one.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated};
use meridian_chassis::problem::{InvalidParam, Query, codes};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::WorkflowAdmin;
use crate::Workflow;
use crate::definition::load;
use crate::store::definitions::{self as store, VersionRow};

/// `GET /v1/definitions` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DefinitionQuery {
    /// Only the versions of this definition.
    pub id: Option<String>,
}

/// `GET /v1/definitions`: every deployed version, newest first within each definition.
#[utoipa::path(get, path = "/v1/definitions", tag = "definitions", params(DefinitionQuery),
    responses((status = 200, description = "Versions", body = [VersionRow])),
    security(("bearer" = [])))]
pub async fn list_definitions(
    _who: Authenticated<AnyRole>,
    query: Query<DefinitionQuery>,
    svc: web::Data<Workflow>,
) -> Result<HttpResponse, Problem> {
    let id = query.0.id;
    let rows = svc
        .db
        .run(move |conn| store::list(conn, id.as_deref()).map_err(Problem::from))
        .await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// A version with its source.
#[derive(Debug, Serialize, ToSchema)]
pub struct DefinitionSource {
    /// The definition's id.
    pub id: String,
    /// The version.
    pub version: String,
    /// The YAML.
    pub source: String,
}

/// `GET /v1/definitions/{id}/{version}`: one version's YAML.
#[utoipa::path(get, path = "/v1/definitions/{id}/{version}", tag = "definitions",
    params(("id" = String, Path), ("version" = String, Path)),
    responses(
        (status = 200, description = "The version", body = DefinitionSource),
        (status = 404, description = "No such version", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_definition(
    _who: Authenticated<AnyRole>,
    path: web::Path<(String, String)>,
    svc: web::Data<Workflow>,
) -> Result<HttpResponse, Problem> {
    let (id, version) = path.into_inner();
    let (id2, version2) = (id.clone(), version.clone());
    let source = svc
        .db
        .run(move |conn| store::source(conn, &id2, &version2).map_err(Problem::from))
        .await?
        .ok_or_else(|| Problem::new(codes::WORKFLOW_DEFINITION_NOT_FOUND))?;
    Ok(HttpResponse::Ok().json(DefinitionSource {
        id,
        version,
        source,
    }))
}

/// The JSON body of `POST /v1/definitions` (or send the YAML itself as `application/yaml`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// The definition's YAML.
    pub source: String,
}

/// What a deployment did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deployed {
    /// The definition's id.
    pub id: String,
    /// The version (hash of the content).
    pub version: String,
    /// Whether this content is new (`false`: it already was the newest version).
    pub created: bool,
}

/// `POST /v1/definitions`: validates and deploys a definition; its content becomes the newest
/// version. Running instances keep the version they started with.
#[utoipa::path(post, path = "/v1/definitions", tag = "definitions",
    request_body(content = Deploy, description = "JSON, or the YAML itself as application/yaml"),
    responses(
        (status = 201, description = "A new version", body = Deployed),
        (status = 200, description = "Already the newest version", body = Deployed),
        (status = 400, description = "Every problem of the definition, with line and column", body = meridian_chassis::problem::ProblemBody),
        (status = 403, description = "Not a workflow admin", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn deploy_definition(
    who: Authenticated<WorkflowAdmin>,
    req: HttpRequest,
    body: web::Bytes,
    svc: web::Data<Workflow>,
) -> Result<HttpResponse, Problem> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let source = match content_type.as_str() {
        "application/json" => meridian_chassis::problem::from_json::<Deploy>(&body)?.source,
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => {
            String::from_utf8(body.to_vec()).map_err(|_| Problem::field("body", "is not UTF-8"))?
        }
        _ => {
            return Err(Problem::new(codes::UNSUPPORTED_MEDIA_TYPE)
                .detail("send application/json ({\"source\": …}) or application/yaml"));
        }
    };
    let compiled = Arc::new(load(&source).map_err(|diagnostics| {
        Problem::invalid(
            codes::WORKFLOW_DEFINITION_INVALID,
            diagnostics
                .iter()
                .map(|d| InvalidParam::new("source", d.to_string()))
                .collect(),
        )
    })?);
    // Listen for what it waits for before it can start (binding twice does no harm).
    svc.listen_for(&compiled).await.map_err(|error| {
        tracing::warn!(%error, "the bus could not bind a deployed definition's events");
        Problem::new(codes::UNAVAILABLE).detail("the bus is not reachable; deploy again")
    })?;
    let now = svc.clock.now();
    let registry = svc.registry.clone();
    let by = who.subject.clone();
    let deployed = compiled.clone();
    let created = svc
        .db
        .transaction(move |conn| {
            store::deploy(conn, &registry, &deployed, "api", &by, now).map_err(Problem::from)
        })
        .await?;
    let status = if created {
        actix_web::http::StatusCode::CREATED
    } else {
        actix_web::http::StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(Deployed {
        id: compiled.definition.id.clone(),
        version: compiled.version.clone(),
        created,
    }))
}
