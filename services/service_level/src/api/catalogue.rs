//! `/v1/services`: the service catalogue (8.2.4). Each change is published on the bus
//! (`service_level.service.published`) with the request items users may order.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated};
use meridian_chassis::fields::Field;
use meridian_chassis::problem::{InvalidParam, Json, Query, codes};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ServiceLevelManager, checked, slug, text};
use crate::ServiceLevel;
use crate::store::catalogue::{self as store, ServiceRow};
use crate::store::strings;

/// Something users may order under a service.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestItem {
    /// Id (1 to 50 of a-z, 0-9, -).
    pub id: String,
    /// Name.
    pub name: String,
    /// What it is.
    #[serde(default)]
    pub description: String,
    /// The form users fill in (name → field).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: BTreeMap<String, Field>,
    /// The workflow definition that fulfils it.
    pub workflow: Option<String>,
    /// Whether it needs approval before fulfilment.
    #[serde(default)]
    pub needs_approval: bool,
}

/// A catalogue entry as written.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceInput {
    /// Name.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Accountable owner.
    #[schema(min_length = 1, max_length = 200)]
    pub owner: String,
    /// What it is.
    #[serde(default)]
    pub description: String,
    /// The outcome it delivers.
    #[serde(default)]
    pub outcome: String,
    /// Its customers.
    #[serde(default)]
    pub customers: Vec<String>,
    /// The services it depends on (ids).
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// The CIs it is made of.
    #[serde(default)]
    pub configuration_items: Vec<String>,
    /// `low`, `medium`, `high` or `critical`.
    pub criticality: String,
    /// `pipeline`, `live` or `retired`.
    pub status: String,
    /// What users may order.
    #[serde(default)]
    pub request_items: Vec<RequestItem>,
}

/// `POST /v1/services`: a new entry with its id.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewService {
    /// Id (1 to 50 of a-z, 0-9, -), e.g. `email`.
    pub id: String,
    /// The entry.
    #[serde(flatten)]
    pub service: ServiceInput,
}

/// A catalogue entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Owner.
    pub owner: String,
    /// What it is.
    pub description: String,
    /// Its outcome.
    pub outcome: String,
    /// Customers.
    pub customers: Vec<String>,
    /// Services it depends on.
    pub depends_on: Vec<String>,
    /// Its CIs.
    pub configuration_items: Vec<String>,
    /// Criticality.
    pub criticality: String,
    /// Lifecycle status.
    pub status: String,
    /// What users may order.
    pub request_items: Vec<RequestItem>,
    /// Revision.
    pub revision: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<ServiceRow> for ServiceView {
    fn from(r: ServiceRow) -> Self {
        Self {
            customers: strings(&r.customers),
            depends_on: strings(&r.depends_on),
            configuration_items: strings(&r.configuration_items),
            request_items: serde_json::from_str(&r.request_items).unwrap_or_default(),
            id: r.id,
            name: r.name,
            owner: r.owner,
            description: r.description,
            outcome: r.outcome,
            criticality: r.criticality,
            status: r.status,
            revision: r.revision,
            created_at: meridian_chassis::clock::utc(r.created_at),
            updated_at: meridian_chassis::clock::utc(r.updated_at),
        }
    }
}

fn check(id: &str, input: &ServiceInput) -> Vec<InvalidParam> {
    let mut params = Vec::new();
    text("name", &input.name, 200, true, &mut params);
    text("owner", &input.owner, 200, true, &mut params);
    text("description", &input.description, 5000, false, &mut params);
    text("outcome", &input.outcome, 2000, false, &mut params);
    if !matches!(
        input.criticality.as_str(),
        "low" | "medium" | "high" | "critical"
    ) {
        params.push(InvalidParam::new(
            "criticality",
            "must be low, medium, high or critical",
        ));
    }
    if !matches!(input.status.as_str(), "pipeline" | "live" | "retired") {
        params.push(InvalidParam::new(
            "status",
            "must be pipeline, live or retired",
        ));
    }
    for (list, values) in [
        ("customers", &input.customers),
        ("configuration_items", &input.configuration_items),
    ] {
        for (i, v) in values.iter().enumerate() {
            text(&format!("{list}[{i}]"), v, 200, true, &mut params);
        }
    }
    for (i, dep) in input.depends_on.iter().enumerate() {
        slug(&format!("depends_on[{i}]"), dep, &mut params);
        if dep == id {
            params.push(InvalidParam::new(
                format!("depends_on[{i}]"),
                "a service cannot depend on itself",
            ));
        }
    }
    let mut ids = std::collections::BTreeSet::new();
    for (i, item) in input.request_items.iter().enumerate() {
        slug(&format!("request_items[{i}].id"), &item.id, &mut params);
        if !ids.insert(item.id.clone()) {
            params.push(InvalidParam::new(
                format!("request_items[{i}].id"),
                "is used twice",
            ));
        }
        text(
            &format!("request_items[{i}].name"),
            &item.name,
            200,
            true,
            &mut params,
        );
    }
    params
}

async fn save(
    svc: &ServiceLevel,
    actor: String,
    id: String,
    input: ServiceInput,
    creating: bool,
) -> Result<ServiceRow, Problem> {
    let mut params = Vec::new();
    slug("id", &id, &mut params);
    params.extend(check(&id, &input));
    checked(params)?;
    let now = svc.clock.now();
    let row = svc
        .db
        .transaction(move |conn| -> Result<ServiceRow, Problem> {
            let before = store::find(conn, &id)?;
            if creating && before.is_some() {
                return Err(Problem::field(
                    "id",
                    format!("{id} is already in the catalogue"),
                ));
            }
            for (i, dep) in input.depends_on.iter().enumerate() {
                if store::find(conn, dep)?.is_none() {
                    return Err(Problem::field(
                        format!("depends_on[{i}]"),
                        format!("{dep} is not in the catalogue"),
                    ));
                }
            }
            let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_default();
            let row = ServiceRow {
                id: id.clone(),
                name: input.name.trim().to_owned(),
                owner: input.owner.clone(),
                description: input.description.clone(),
                outcome: input.outcome.clone(),
                customers: json(&input.customers),
                depends_on: json(&input.depends_on),
                configuration_items: json(&input.configuration_items),
                criticality: input.criticality.clone(),
                status: input.status.clone(),
                request_items: serde_json::to_string(&input.request_items).unwrap_or_default(),
                revision: before.as_ref().map_or(1, |b| b.revision + 1),
                created_at: before.as_ref().map_or(now.naive_utc(), |b| b.created_at),
                updated_at: now.naive_utc(),
            };
            store::save(conn, before.as_ref(), &row, &actor, now)?;
            Ok(row)
        })
        .await?;
    svc.waker.wake();
    Ok(row)
}

/// `GET /v1/services` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ServiceQuery {
    /// Only in this status.
    pub status: Option<String>,
}

/// `GET /v1/services`: the catalogue.
#[utoipa::path(get, path = "/v1/services", tag = "catalogue", params(ServiceQuery),
    responses((status = 200, description = "The catalogue", body = Vec<ServiceView>)),
    security(("bearer" = [])))]
pub async fn list_services(
    _who: Authenticated<AnyRole>,
    query: Query<ServiceQuery>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let status = query.0.status;
    if let Some(s) = &status
        && !matches!(s.as_str(), "pipeline" | "live" | "retired")
    {
        return Err(Problem::field(
            "status",
            "must be pipeline, live or retired",
        ));
    }
    let rows = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(store::list(conn, status.as_deref())?) })
        .await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(ServiceView::from).collect::<Vec<_>>()))
}

/// `POST /v1/services`: a new catalogue entry.
#[utoipa::path(post, path = "/v1/services", tag = "catalogue", request_body = NewService,
    responses(
        (status = 201, description = "Created and published", body = ServiceView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 403, description = "Not a service level manager", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn create_service(
    who: Authenticated<ServiceLevelManager>,
    body: Json<NewService>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let body = body.0;
    let row = save(&svc, who.subject.clone(), body.id, body.service, true).await?;
    Ok(HttpResponse::Created().json(ServiceView::from(row)))
}

/// `GET /v1/services/{id}`.
#[utoipa::path(get, path = "/v1/services/{id}", tag = "catalogue",
    params(("id" = String, Path, description = "Service id")),
    responses(
        (status = 200, description = "The entry", body = ServiceView),
        (status = 404, description = "Not in the catalogue", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_service(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let row = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(store::find(conn, &id)?) })
        .await?
        .ok_or_else(|| Problem::new(codes::SERVICE_NOT_FOUND))?;
    Ok(HttpResponse::Ok().json(ServiceView::from(row)))
}

/// `PUT /v1/services/{id}`: creates or replaces an entry (a new revision, published).
#[utoipa::path(put, path = "/v1/services/{id}", tag = "catalogue",
    params(("id" = String, Path, description = "Service id")), request_body = ServiceInput,
    responses(
        (status = 200, description = "Saved and published", body = ServiceView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 403, description = "Not a service level manager", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn put_service(
    who: Authenticated<ServiceLevelManager>,
    id: web::Path<String>,
    body: Json<ServiceInput>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let row = save(&svc, who.subject.clone(), id.into_inner(), body.0, false).await?;
    Ok(HttpResponse::Ok().json(ServiceView::from(row)))
}
