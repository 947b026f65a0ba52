//! Supplier management (8.3.4, 8.2.3): suppliers and what they operate, contracts and internal
//! agreements with their targets, measurements, disputes, and supplier reviews.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated};
use meridian_chassis::db::AnyConnection;
use meridian_chassis::problem::{InvalidParam, Json, Query, codes};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{SupplierManager, checked, days, one_of, page_limit, slug, text, utc};
use crate::Relationship;
use crate::domain::{self, Target};
use crate::events;
use crate::store::customers as customer_store;
use crate::store::suppliers::{
    self as store, ContractFilter, ContractRow, DisputeRow, MeasurementRow, SupplierRow,
};
use crate::store::{audit, json as parse};

/// What a supplier operates: a process or a service component (8.2.3).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Operated {
    /// `process` or `service_component`.
    pub kind: String,
    /// What it is, e.g. `service desk (first line)`, `object storage`.
    pub name: String,
    /// The catalogue service it is part of.
    pub service: Option<String>,
    /// How it is controlled (the contract, the agreement, the reports received).
    #[serde(default)]
    pub controls: String,
}

/// A supplier as written.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupplierInput {
    /// Id (a slug; `POST` only).
    pub id: Option<String>,
    /// Name.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// `external`, `internal` (a group acting as a supplier) or `customer` (a customer acting
    /// as a supplier).
    pub kind: String,
    /// The customer, for `customer`.
    pub customer: Option<String>,
    /// The supplier manager.
    #[schema(min_length = 1, max_length = 200)]
    pub manager: String,
    /// Their contact address.
    #[serde(default)]
    pub contact_email: String,
    /// The processes and service components they operate.
    #[serde(default)]
    pub operates: Vec<Operated>,
    /// `active` (default) or `inactive`.
    #[serde(default = "active")]
    pub status: String,
}

fn active() -> String {
    "active".to_owned()
}

/// A supplier with its contracts.
#[derive(Debug, Serialize, ToSchema)]
pub struct SupplierView {
    /// The supplier.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub supplier: Value,
    /// What it operates.
    #[schema(value_type = Vec<Object>)]
    pub operates: Value,
    /// Its contracts and agreements (on `GET /v1/suppliers/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contracts: Option<Vec<ContractView>>,
    /// Its open disputes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub open_disputes: Option<Vec<DisputeRow>>,
}

fn supplier_view(
    conn: &mut AnyConnection,
    row: SupplierRow,
    detail: bool,
    today: NaiveDate,
) -> Result<SupplierView, Problem> {
    let (contracts, disputes) = if detail {
        let contracts = store::contracts(
            conn,
            ContractFilter {
                supplier: Some(row.id.clone()),
                ..ContractFilter::default()
            },
            200,
        )?;
        let disputes = store::disputes(conn, Some(row.id.clone()), Some("open".to_owned()), 200)?;
        (
            Some(
                contracts
                    .into_iter()
                    .map(|c| contract_view(c, today))
                    .collect(),
            ),
            Some(disputes),
        )
    } else {
        (None, None)
    };
    let mut supplier = serde_json::to_value(&row).unwrap_or_default();
    if let Some(map) = supplier.as_object_mut() {
        map.remove("operates");
    }
    Ok(SupplierView {
        operates: parse(&row.operates),
        supplier,
        contracts,
        open_disputes: disputes,
    })
}

fn check_supplier(input: &SupplierInput, params: &mut Vec<InvalidParam>) {
    text("name", &input.name, 200, true, params);
    one_of(
        "kind",
        &input.kind,
        &["external", "internal", "customer"],
        params,
    );
    text("manager", &input.manager, 200, true, params);
    text("contact_email", &input.contact_email, 254, false, params);
    one_of("status", &input.status, &["active", "inactive"], params);
    match (&input.kind[..], &input.customer) {
        ("customer", None) => params.push(InvalidParam::new(
            "customer",
            "a customer acting as a supplier names the customer",
        )),
        ("external" | "internal", Some(_)) => params.push(InvalidParam::new(
            "customer",
            "only a supplier of kind customer names one",
        )),
        _ => {}
    }
    if input.operates.len() > 100 {
        params.push(InvalidParam::new("operates", "at most 100"));
    }
    for (i, o) in input.operates.iter().enumerate() {
        one_of(
            &format!("operates[{i}].kind"),
            &o.kind,
            &["process", "service_component"],
            params,
        );
        text(&format!("operates[{i}].name"), &o.name, 200, true, params);
        text(
            &format!("operates[{i}].controls"),
            &o.controls,
            2000,
            false,
            params,
        );
    }
}

async fn save_supplier(
    svc: &Relationship,
    actor: String,
    id: String,
    new: bool,
    input: SupplierInput,
) -> Result<SupplierView, Problem> {
    let now = svc.clock.now();
    svc.db
        .transaction(move |conn| -> Result<SupplierView, Problem> {
            let before = store::supplier(conn, &id)?;
            match (&before, new) {
                (Some(_), true) => return Err(Problem::new(codes::SUPPLIER_EXISTS)),
                (None, false) => return Err(Problem::new(codes::SUPPLIER_NOT_FOUND)),
                _ => {}
            }
            if let Some(customer) = &input.customer
                && customer_store::customer(conn, customer)?.is_none()
            {
                return Err(Problem::field(
                    "customer",
                    format!("no customer {customer}"),
                ));
            }
            let services: Vec<String> = input
                .operates
                .iter()
                .filter_map(|o| o.service.clone())
                .collect();
            if let Some(unknown) = customer_store::unknown_services(conn, &services)?.first() {
                let i = input
                    .operates
                    .iter()
                    .position(|o| o.service.as_ref() == Some(unknown))
                    .unwrap_or(0);
                return Err(Problem::field(
                    format!("operates[{i}].service"),
                    format!("{unknown} is not a live service of the catalogue"),
                ));
            }
            let row = SupplierRow {
                id: id.clone(),
                name: input.name,
                kind: input.kind,
                customer_id: input.customer,
                manager: input.manager,
                contact_email: input.contact_email,
                operates: serde_json::to_string(&input.operates).unwrap_or_default(),
                status: input.status,
                created_at: before
                    .as_ref()
                    .map_or_else(|| now.naive_utc(), |b| b.created_at),
                updated_at: now.naive_utc(),
            };
            store::save_supplier(conn, &row, new)?;
            audit(conn, &actor, "supplier.saved", "supplier", &id, &row, now)?;
            supplier_view(conn, row, true, now.date_naive())
        })
        .await
}

/// `POST /v1/suppliers`: records a supplier.
#[utoipa::path(post, path = "/v1/suppliers", tag = "suppliers", request_body = SupplierInput,
    responses(
        (status = 201, description = "Recorded", body = SupplierView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "The id is taken", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn create_supplier(
    who: Authenticated<SupplierManager>,
    body: Json<SupplierInput>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    let id = input.id.clone().unwrap_or_default();
    slug("id", &id, &mut params);
    check_supplier(&input, &mut params);
    checked(params)?;
    let view = save_supplier(&svc, who.subject.clone(), id, true, input).await?;
    Ok(HttpResponse::Created().json(view))
}

/// `PUT /v1/suppliers/{id}`: changes a supplier.
#[utoipa::path(put, path = "/v1/suppliers/{id}", tag = "suppliers", request_body = SupplierInput,
    params(("id" = String, Path, description = "Supplier id")),
    responses(
        (status = 200, description = "Saved", body = SupplierView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such supplier", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn put_supplier(
    who: Authenticated<SupplierManager>,
    id: web::Path<String>,
    body: Json<SupplierInput>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    if input.id.as_ref().is_some_and(|i| *i != *id) {
        params.push(InvalidParam::new("id", "must be the path's id, or absent"));
    }
    check_supplier(&input, &mut params);
    checked(params)?;
    let view = save_supplier(&svc, who.subject.clone(), id.into_inner(), false, input).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /v1/suppliers` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SupplierQuery {
    /// `external`, `internal` or `customer`.
    pub kind: Option<String>,
    /// The cursor: the last id of the previous page.
    pub after: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// `GET /v1/suppliers`: suppliers and what they operate.
#[utoipa::path(get, path = "/v1/suppliers", tag = "suppliers", params(SupplierQuery),
    responses(
        (status = 200, description = "A page of suppliers", body = Vec<SupplierView>),
        (status = 400, description = "A bad filter, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_suppliers(
    _who: Authenticated<AnyRole>,
    query: Query<SupplierQuery>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let limit = page_limit(query.limit)?;
    if let Some(kind) = &query.kind
        && !["external", "internal", "customer"].contains(&kind.as_str())
    {
        return Err(Problem::field(
            "kind",
            "must be external, internal or customer",
        ));
    }
    let today = svc.clock.now().date_naive();
    let views = svc
        .db
        .run(move |conn| -> Result<Vec<SupplierView>, Problem> {
            store::suppliers(conn, query.kind, query.after, limit)?
                .into_iter()
                .map(|row| supplier_view(conn, row, false, today))
                .collect()
        })
        .await?;
    Ok(HttpResponse::Ok().json(views))
}

/// `GET /v1/suppliers/{id}`: a supplier with its contracts and open disputes.
#[utoipa::path(get, path = "/v1/suppliers/{id}", tag = "suppliers",
    params(("id" = String, Path, description = "Supplier id")),
    responses(
        (status = 200, description = "The supplier", body = SupplierView),
        (status = 404, description = "No such supplier", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_supplier(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let key = id.into_inner();
    let today = svc.clock.now().date_naive();
    let view = svc
        .db
        .run(move |conn| -> Result<SupplierView, Problem> {
            let row = store::supplier(conn, &key)?
                .ok_or_else(|| Problem::new(codes::SUPPLIER_NOT_FOUND))?;
            supplier_view(conn, row, true, today)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A contract or internal agreement as written.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContractInput {
    /// The supplier.
    #[schema(pattern = "^[a-z0-9-]{1,50}$")]
    pub supplier: String,
    /// `contract` (external suppliers) or `internal_agreement` (internal ones).
    pub kind: String,
    /// Title.
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// Scope: what is supplied.
    #[schema(min_length = 1, max_length = 20000)]
    pub scope: String,
    /// The catalogue services it supports.
    #[serde(default)]
    pub services: Vec<String>,
    /// Service level targets.
    #[serde(default)]
    pub targets: Vec<Target>,
    /// Roles and responsibilities of the parties.
    #[serde(default)]
    pub roles: String,
    /// Interfaces between the parties.
    #[serde(default)]
    pub interfaces: String,
    /// Starts.
    pub starts_on: NaiveDate,
    /// Ends (open-ended when absent).
    pub ends_on: Option<NaiveDate>,
    /// Notice period, days (default 90).
    #[serde(default = "ninety")]
    pub notice_days: i32,
    /// Value.
    pub value: Option<f64>,
    /// ISO 4217 code of the value.
    #[serde(default)]
    pub currency: String,
    /// The contract owner, who signs off its reviews.
    #[schema(min_length = 1, max_length = 200)]
    pub owner: String,
    /// Reviewed at least this often, days (default 180).
    #[serde(default = "one_eighty")]
    pub review_interval_days: i32,
}

fn ninety() -> i32 {
    90
}

fn one_eighty() -> i32 {
    180
}

/// A contract.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContractView {
    /// The contract.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub contract: Value,
    /// Its services.
    #[schema(value_type = Vec<String>)]
    pub services: Value,
    /// Its targets.
    pub targets: Vec<Target>,
    /// The last day notice can be given.
    pub notice_by: Option<NaiveDate>,
    /// Days until it ends.
    pub days_left: Option<i64>,
}

fn contract_view(row: ContractRow, today: NaiveDate) -> ContractView {
    let targets = events::targets(&row);
    let services = parse(&row.services);
    let notice_by = row.ends_on.map(|e| domain::notice_by(e, row.notice_days));
    let days_left = row.ends_on.map(|e| (e - today).num_days());
    let mut contract = serde_json::to_value(&row).unwrap_or_default();
    if let Some(map) = contract.as_object_mut() {
        map.remove("services");
        map.remove("targets");
    }
    ContractView {
        contract,
        services,
        targets,
        notice_by,
        days_left,
    }
}

fn check_contract(input: &ContractInput) -> Result<(), Problem> {
    let mut params = Vec::new();
    slug("supplier", &input.supplier, &mut params);
    one_of(
        "kind",
        &input.kind,
        &["contract", "internal_agreement"],
        &mut params,
    );
    text("title", &input.title, 200, true, &mut params);
    text("scope", &input.scope, 20_000, true, &mut params);
    text("roles", &input.roles, 20_000, false, &mut params);
    text("interfaces", &input.interfaces, 20_000, false, &mut params);
    text("owner", &input.owner, 200, true, &mut params);
    days("notice_days", input.notice_days, 0..=730, &mut params);
    days(
        "review_interval_days",
        input.review_interval_days,
        30..=730,
        &mut params,
    );
    if input.ends_on.is_some_and(|e| e <= input.starts_on) {
        params.push(InvalidParam::new("ends_on", "must be after starts_on"));
    }
    if input.value.is_some_and(|v| !v.is_finite() || v < 0.0) {
        params.push(InvalidParam::new("value", "must be a non-negative amount"));
    }
    if input.value.is_some()
        && !(input.currency.len() == 3 && input.currency.bytes().all(|b| b.is_ascii_uppercase()))
    {
        params.push(InvalidParam::new(
            "currency",
            "must be an ISO 4217 code such as EUR",
        ));
    }
    if input.targets.len() > 50 {
        params.push(InvalidParam::new("targets", "at most 50"));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, t) in input.targets.iter().enumerate() {
        slug(
            &format!("targets[{i}].metric"),
            &t.metric.replace('_', "-"),
            &mut params,
        );
        if !seen.insert(t.metric.as_str()) {
            params.push(InvalidParam::new(
                format!("targets[{i}].metric"),
                "each metric once",
            ));
        }
        if !t.target.is_finite() {
            params.push(InvalidParam::new(
                format!("targets[{i}].target"),
                "must be a number",
            ));
        }
        one_of(
            &format!("targets[{i}].comparison"),
            &t.comparison,
            &["at_least", "at_most"],
            &mut params,
        );
        text(
            &format!("targets[{i}].unit"),
            &t.unit,
            20,
            false,
            &mut params,
        );
    }
    checked(params)
}

/// An external supplier is under a contract, an internal one under an agreement (8.3.4).
fn check_kind(supplier: &SupplierRow, kind: &str) -> Result<(), Problem> {
    match (supplier.kind.as_str(), kind) {
        ("external", "internal_agreement") => Err(Problem::field(
            "kind",
            "an external supplier is under a contract",
        )),
        ("internal", "contract") => Err(Problem::field(
            "kind",
            "an internal supplier is under an internal_agreement",
        )),
        _ => Ok(()),
    }
}

async fn save_contract(
    svc: &Relationship,
    actor: String,
    key: Option<String>,
    input: ContractInput,
) -> Result<ContractView, Problem> {
    check_contract(&input)?;
    let now = svc.clock.now();
    svc.db
        .transaction(move |conn| -> Result<ContractView, Problem> {
            let before = match &key {
                Some(key) => Some(
                    store::contract(conn, key, true)?
                        .ok_or_else(|| Problem::new(codes::CONTRACT_NOT_FOUND))?,
                ),
                None => None,
            };
            let supplier = store::supplier(conn, &input.supplier)?.ok_or_else(|| {
                Problem::field("supplier", format!("no supplier {}", input.supplier))
            })?;
            check_kind(&supplier, &input.kind)?;
            if let Some(unknown) = customer_store::unknown_services(conn, &input.services)?.first()
            {
                let i = input
                    .services
                    .iter()
                    .position(|s| s == unknown)
                    .unwrap_or(0);
                return Err(Problem::field(
                    format!("services[{i}]"),
                    format!("{unknown} is not a live service of the catalogue"),
                ));
            }
            let today = now.date_naive();
            let first_due = input.starts_on.max(today)
                + chrono::Duration::days(i64::from(input.review_interval_days));
            let row = ContractRow {
                id: before
                    .as_ref()
                    .map_or_else(|| uuid::Uuid::now_v7().to_string(), |b| b.id.clone()),
                number: match &before {
                    Some(b) => b.number.clone(),
                    None => crate::store::next_number(conn, "contract", "CON")?,
                },
                supplier_id: supplier.id,
                kind: input.kind,
                title: input.title,
                scope: input.scope,
                services: serde_json::to_string(&input.services).unwrap_or_default(),
                targets: serde_json::to_string(&input.targets).unwrap_or_default(),
                roles: input.roles,
                interfaces: input.interfaces,
                starts_on: input.starts_on,
                ends_on: input.ends_on,
                notice_days: input.notice_days,
                value: input.value,
                currency: input.currency,
                owner: input.owner,
                review_interval_days: input.review_interval_days,
                next_review_due: before.as_ref().map_or(first_due, |b| b.next_review_due),
                state: before
                    .as_ref()
                    .map_or_else(|| "active".to_owned(), |b| b.state.clone()),
                // A new end date or notice period is announced again.
                expiry_notified: before.as_ref().is_some_and(|b| {
                    b.expiry_notified
                        && b.ends_on == input.ends_on
                        && b.notice_days == input.notice_days
                }),
                created_by: before
                    .as_ref()
                    .map_or_else(|| actor.clone(), |b| b.created_by.clone()),
                created_at: before
                    .as_ref()
                    .map_or_else(|| now.naive_utc(), |b| b.created_at),
                updated_at: now.naive_utc(),
            };
            store::save_contract(conn, &row, before.is_none())?;
            audit(
                conn,
                &actor,
                "contract.saved",
                "contract",
                &row.id,
                &row,
                now,
            )?;
            Ok(contract_view(row, today))
        })
        .await
}

/// `POST /v1/contracts`: records a contract or internal agreement.
#[utoipa::path(post, path = "/v1/contracts", tag = "suppliers", request_body = ContractInput,
    responses(
        (status = 201, description = "Recorded", body = ContractView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn create_contract(
    who: Authenticated<SupplierManager>,
    body: Json<ContractInput>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let view = save_contract(&svc, who.subject.clone(), None, body.0).await?;
    Ok(HttpResponse::Created().json(view))
}

/// `PUT /v1/contracts/{id}`: changes a contract (a new end date or notice period is announced
/// again when it nears).
#[utoipa::path(put, path = "/v1/contracts/{id}", tag = "suppliers", request_body = ContractInput,
    params(("id" = String, Path, description = "Id or number")),
    responses(
        (status = 200, description = "Saved", body = ContractView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such contract", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn put_contract(
    who: Authenticated<SupplierManager>,
    id: web::Path<String>,
    body: Json<ContractInput>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let view = save_contract(&svc, who.subject.clone(), Some(id.into_inner()), body.0).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /v1/contracts` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ContractQuery {
    /// Of this supplier.
    pub supplier: Option<String>,
    /// `active`, `expired` or `terminated`.
    pub state: Option<String>,
    /// Ending within this many days.
    pub expiring_within_days: Option<i64>,
    /// The cursor: the last id of the previous page.
    pub after: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// `GET /v1/contracts`: contracts and agreements.
#[utoipa::path(get, path = "/v1/contracts", tag = "suppliers", params(ContractQuery),
    responses(
        (status = 200, description = "A page of contracts", body = Vec<ContractView>),
        (status = 400, description = "A bad filter, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_contracts(
    _who: Authenticated<AnyRole>,
    query: Query<ContractQuery>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let limit = page_limit(query.limit)?;
    if let Some(state) = &query.state
        && !["active", "expired", "terminated"].contains(&state.as_str())
    {
        return Err(Problem::field(
            "state",
            "must be active, expired or terminated",
        ));
    }
    if query
        .expiring_within_days
        .is_some_and(|d| !(0..=3650).contains(&d))
    {
        return Err(Problem::field("expiring_within_days", "must be 0 to 3650"));
    }
    let today = svc.clock.now().date_naive();
    let filter = ContractFilter {
        supplier: query.supplier,
        state: query.state,
        ends_by: query
            .expiring_within_days
            .map(|d| today + chrono::Duration::days(d)),
        after: query.after,
    };
    let rows = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(store::contracts(conn, filter, limit)?) })
        .await?;
    Ok(HttpResponse::Ok().json(
        rows.into_iter()
            .map(|r| contract_view(r, today))
            .collect::<Vec<_>>(),
    ))
}

/// `GET /v1/contracts/{id}`: a contract.
#[utoipa::path(get, path = "/v1/contracts/{id}", tag = "suppliers",
    params(("id" = String, Path, description = "Id or number")),
    responses(
        (status = 200, description = "The contract", body = ContractView),
        (status = 404, description = "No such contract", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_contract(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let key = id.into_inner();
    let today = svc.clock.now().date_naive();
    let row = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            store::contract(conn, &key, false)?
                .ok_or_else(|| Problem::new(codes::CONTRACT_NOT_FOUND))
        })
        .await?;
    Ok(HttpResponse::Ok().json(contract_view(row, today)))
}

/// A renewal.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewInput {
    /// The new end date.
    pub ends_on: NaiveDate,
    /// Why, and on what terms.
    #[schema(min_length = 1, max_length = 5000)]
    pub notes: String,
}

/// `POST /v1/contracts/{id}/renew`: extends a contract (an expired one becomes active again).
#[utoipa::path(post, path = "/v1/contracts/{id}/renew", tag = "suppliers", request_body = RenewInput,
    params(("id" = String, Path, description = "Id or number")),
    responses(
        (status = 200, description = "Renewed", body = ContractView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such contract", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Terminated", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn renew_contract(
    who: Authenticated<SupplierManager>,
    id: web::Path<String>,
    body: Json<RenewInput>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    super::one_text("notes", &input.notes, 5000)?;
    let (now, actor, key) = (svc.clock.now(), who.subject.clone(), id.into_inner());
    let view = svc
        .db
        .transaction(move |conn| -> Result<ContractView, Problem> {
            let mut row = store::contract(conn, &key, true)?
                .ok_or_else(|| Problem::new(codes::CONTRACT_NOT_FOUND))?;
            if row.state == "terminated" {
                return Err(Problem::new(codes::CONTRACT_NOT_ACTIVE)
                    .detail("a terminated contract is not renewed"));
            }
            if row.ends_on.is_some_and(|e| input.ends_on <= e) || input.ends_on <= now.date_naive()
            {
                return Err(Problem::field(
                    "ends_on",
                    "must be after the current end date and today",
                ));
            }
            row.ends_on = Some(input.ends_on);
            row.state = "active".to_owned();
            row.expiry_notified = false;
            row.updated_at = now.naive_utc();
            store::save_contract(conn, &row, false)?;
            audit(
                conn,
                &actor,
                "contract.renewed",
                "contract",
                &row.id,
                &serde_json::json!({"contract": &row, "notes": input.notes}),
                now,
            )?;
            Ok(contract_view(row, now.date_naive()))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A termination.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminateInput {
    /// Why.
    #[schema(min_length = 1, max_length = 5000)]
    pub reason: String,
}

/// `POST /v1/contracts/{id}/terminate`: ends a contract now.
#[utoipa::path(post, path = "/v1/contracts/{id}/terminate", tag = "suppliers", request_body = TerminateInput,
    params(("id" = String, Path, description = "Id or number")),
    responses(
        (status = 200, description = "Terminated", body = ContractView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such contract", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Not active", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn terminate_contract(
    who: Authenticated<SupplierManager>,
    id: web::Path<String>,
    body: Json<TerminateInput>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    super::one_text("reason", &body.0.reason, 5000)?;
    let (now, actor, key, reason) = (
        svc.clock.now(),
        who.subject.clone(),
        id.into_inner(),
        body.0.reason,
    );
    let view = svc
        .db
        .transaction(move |conn| -> Result<ContractView, Problem> {
            let mut row = store::contract(conn, &key, true)?
                .ok_or_else(|| Problem::new(codes::CONTRACT_NOT_FOUND))?;
            if row.state != "active" {
                return Err(Problem::new(codes::CONTRACT_NOT_ACTIVE));
            }
            row.state = "terminated".to_owned();
            row.updated_at = now.naive_utc();
            store::save_contract(conn, &row, false)?;
            audit(
                conn,
                &actor,
                "contract.terminated",
                "contract",
                &row.id,
                &serde_json::json!({"contract": &row, "reason": reason}),
                now,
            )?;
            Ok(contract_view(row, now.date_naive()))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A measurement as recorded.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ContractMeasurementInput)]
#[serde(deny_unknown_fields)]
pub struct MeasurementInput {
    /// One of the contract's target metrics.
    pub metric: String,
    /// The value.
    pub value: f64,
    /// The period measured.
    pub period_from: NaiveDate,
    /// Its end.
    pub period_to: NaiveDate,
    /// Notes.
    #[serde(default)]
    pub notes: String,
}

/// `POST /v1/contracts/{id}/measurements`: records supplier performance against a target.
#[utoipa::path(post, path = "/v1/contracts/{id}/measurements", tag = "suppliers", request_body = MeasurementInput,
    params(("id" = String, Path, description = "Id or number")),
    responses(
        (status = 201, description = "Recorded, with whether it met the target", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such contract", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Not active", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn add_measurement(
    who: Authenticated<SupplierManager>,
    id: web::Path<String>,
    body: Json<MeasurementInput>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    if !input.value.is_finite() {
        params.push(InvalidParam::new("value", "must be a number"));
    }
    if input.period_to < input.period_from {
        params.push(InvalidParam::new(
            "period_to",
            "must not be before period_from",
        ));
    }
    text("notes", &input.notes, 5000, false, &mut params);
    checked(params)?;
    let (now, actor, key) = (svc.clock.now(), who.subject.clone(), id.into_inner());
    let row = svc
        .db
        .transaction(move |conn| -> Result<MeasurementRow, Problem> {
            let contract = store::contract(conn, &key, false)?
                .ok_or_else(|| Problem::new(codes::CONTRACT_NOT_FOUND))?;
            if contract.state != "active" {
                return Err(Problem::new(codes::CONTRACT_NOT_ACTIVE));
            }
            let targets = events::targets(&contract);
            let Some(target) = targets.iter().find(|t| t.metric == input.metric) else {
                let known: Vec<&str> = targets.iter().map(|t| t.metric.as_str()).collect();
                return Err(Problem::field(
                    "metric",
                    format!(
                        "must be one of the contract's targets: {}",
                        known.join(", ")
                    ),
                ));
            };
            let row = MeasurementRow {
                id: uuid::Uuid::now_v7().to_string(),
                contract_id: contract.id,
                met: target.met_by(input.value),
                metric: input.metric,
                value: input.value,
                period_from: input.period_from,
                period_to: input.period_to,
                notes: input.notes,
                recorded_by: actor.clone(),
                recorded_at: now.naive_utc(),
            };
            store::add_measurement(conn, &row)?;
            audit(
                conn,
                &actor,
                "measurement.recorded",
                "contract",
                &row.contract_id,
                &row,
                now,
            )?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Created().json(row))
}

/// `GET /v1/contracts/{id}/measurements` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MeasurementQuery {
    /// Periods ending on or after (default a year before `to`).
    pub from: Option<NaiveDate>,
    /// Periods ending on or before (default today).
    pub to: Option<NaiveDate>,
}

/// `GET /v1/contracts/{id}/measurements`: the measurements, with the scorecard they make.
#[utoipa::path(get, path = "/v1/contracts/{id}/measurements", tag = "suppliers", params(("id" = String, Path, description = "Id or number"), MeasurementQuery),
    responses(
        (status = 200, description = "Measurements and scorecard", body = Object),
        (status = 404, description = "No such contract", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_measurements(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    query: Query<MeasurementQuery>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let to = query.0.to.unwrap_or_else(|| svc.clock.now().date_naive());
    let from = query.0.from.unwrap_or(to - chrono::Duration::days(365));
    let key = id.into_inner();
    let (rows, card) = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            let contract = store::contract(conn, &key, false)?
                .ok_or_else(|| Problem::new(codes::CONTRACT_NOT_FOUND))?;
            let rows = store::measurements(conn, &contract.id, from, to)?;
            let measured: Vec<(String, f64)> =
                rows.iter().map(|m| (m.metric.clone(), m.value)).collect();
            let card = domain::scorecard(&events::targets(&contract), &measured);
            Ok((rows, card))
        })
        .await?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({"from": from, "to": to, "scorecard": card, "measurements": rows})))
}

/// `POST /v1/contracts/{id}/reviews`: starts a supplier review now (the scheduler starts one
/// when the contract's review falls due).
#[utoipa::path(post, path = "/v1/contracts/{id}/reviews", tag = "suppliers",
    params(("id" = String, Path, description = "Id or number")),
    responses(
        (status = 201, description = "Started; the supplier-review workflow takes it from here", body = Object),
        (status = 404, description = "No such contract", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Not active, or a review is in progress", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn start_review(
    who: Authenticated<SupplierManager>,
    id: web::Path<String>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let (now, actor, key) = (svc.clock.now(), who.subject.clone(), id.into_inner());
    let review = svc
        .db
        .transaction(move |conn| -> Result<_, Problem> {
            let contract = store::contract(conn, &key, true)?
                .ok_or_else(|| Problem::new(codes::CONTRACT_NOT_FOUND))?;
            if contract.state != "active" {
                return Err(Problem::new(codes::CONTRACT_NOT_ACTIVE));
            }
            if store::review_in_progress(conn, &contract.id)?.is_some() {
                return Err(Problem::new(codes::SUPPLIER_REVIEW_IN_PROGRESS));
            }
            let supplier = store::supplier(conn, &contract.supplier_id)?
                .ok_or_else(|| Problem::new(codes::SUPPLIER_NOT_FOUND))?;
            Ok(events::start_supplier_review(
                conn, &contract, &supplier, &actor, now,
            )?)
        })
        .await?;
    svc.waker.wake();
    Ok(HttpResponse::Created().json(review_view(review)))
}

/// A dispute as raised.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisputeInput {
    /// The contract.
    #[schema(min_length = 1, max_length = 50)]
    pub contract: String,
    /// In a line.
    #[schema(min_length = 1, max_length = 200)]
    pub summary: String,
    /// In full.
    #[schema(min_length = 1, max_length = 20000)]
    pub details: String,
}

/// `POST /v1/disputes`: records a dispute with a supplier.
#[utoipa::path(post, path = "/v1/disputes", tag = "suppliers", request_body = DisputeInput,
    responses(
        (status = 201, description = "Recorded", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn raise_dispute(
    who: Authenticated<SupplierManager>,
    body: Json<DisputeInput>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    text("contract", &input.contract, 50, true, &mut params);
    text("summary", &input.summary, 200, true, &mut params);
    text("details", &input.details, 20_000, true, &mut params);
    checked(params)?;
    let (now, actor) = (svc.clock.now(), who.subject.clone());
    let row = svc
        .db
        .transaction(move |conn| -> Result<DisputeRow, Problem> {
            let contract = store::contract(conn, &input.contract, false)?.ok_or_else(|| {
                Problem::field("contract", format!("no contract {}", input.contract))
            })?;
            let row = DisputeRow {
                id: uuid::Uuid::now_v7().to_string(),
                number: crate::store::next_number(conn, "dispute", "DSP")?,
                contract_id: contract.id,
                supplier_id: contract.supplier_id,
                summary: input.summary,
                details: input.details,
                state: "open".to_owned(),
                raised_by: actor.clone(),
                raised_at: now.naive_utc(),
                resolution: String::new(),
                resolved_by: None,
                resolved_at: None,
            };
            store::save_dispute(conn, &row, true)?;
            audit(
                conn,
                &actor,
                "dispute.raised",
                "dispute",
                &row.id,
                &row,
                now,
            )?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Created().json(row))
}

/// A resolution.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveDisputeInput {
    /// How it was resolved.
    #[schema(min_length = 1, max_length = 20000)]
    pub resolution: String,
}

/// `POST /v1/disputes/{id}/resolve`: records how a dispute was resolved.
#[utoipa::path(post, path = "/v1/disputes/{id}/resolve", tag = "suppliers", request_body = ResolveDisputeInput,
    params(("id" = String, Path, description = "Id or number")),
    responses(
        (status = 200, description = "Resolved", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such dispute", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Resolved already", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn resolve_dispute(
    who: Authenticated<SupplierManager>,
    id: web::Path<String>,
    body: Json<ResolveDisputeInput>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    super::one_text("resolution", &body.0.resolution, 20_000)?;
    let (now, actor, key, resolution) = (
        svc.clock.now(),
        who.subject.clone(),
        id.into_inner(),
        body.0.resolution,
    );
    let row = svc
        .db
        .transaction(move |conn| -> Result<DisputeRow, Problem> {
            let mut row = store::dispute(conn, &key)?
                .ok_or_else(|| Problem::new(codes::DISPUTE_NOT_FOUND))?;
            if row.state != "open" {
                return Err(Problem::new(codes::DISPUTE_RESOLVED));
            }
            row.state = "resolved".to_owned();
            row.resolution = resolution;
            row.resolved_by = Some(actor.clone());
            row.resolved_at = Some(now.naive_utc());
            store::save_dispute(conn, &row, false)?;
            audit(
                conn,
                &actor,
                "dispute.resolved",
                "dispute",
                &row.id,
                &row,
                now,
            )?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(row))
}

/// `GET /v1/disputes` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DisputeQuery {
    /// Of this supplier.
    pub supplier: Option<String>,
    /// `open` or `resolved`.
    pub state: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// `GET /v1/disputes`: disputes, newest first.
#[utoipa::path(get, path = "/v1/disputes", tag = "suppliers", params(DisputeQuery),
    responses(
        (status = 200, description = "Disputes", body = Vec<Object>),
        (status = 400, description = "A bad filter, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_disputes(
    _who: Authenticated<AnyRole>,
    query: Query<DisputeQuery>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let limit = page_limit(query.limit)?;
    if let Some(state) = &query.state
        && !["open", "resolved"].contains(&state.as_str())
    {
        return Err(Problem::field("state", "must be open or resolved"));
    }
    let rows = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            Ok(store::disputes(conn, query.supplier, query.state, limit)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// A supplier review.
#[derive(Debug, Serialize, ToSchema)]
pub struct SupplierReviewView {
    /// The review.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub review: Value,
    /// The scorecard assembled from the measurements.
    pub scorecard: Vec<domain::ScoreLine>,
    /// The ratings given in the scorecard task.
    #[schema(value_type = Object)]
    pub ratings: Value,
    /// Started.
    pub started_at: DateTime<Utc>,
    /// Completed.
    pub completed_at: Option<DateTime<Utc>>,
}

fn review_view(row: store::SupplierReviewRow) -> SupplierReviewView {
    let scorecard = serde_json::from_str(&row.scorecard).unwrap_or_default();
    let ratings = parse(&row.ratings);
    let (started_at, completed_at) = (utc(row.started_at), row.completed_at.map(utc));
    let mut review = serde_json::to_value(&row).unwrap_or_default();
    if let Some(map) = review.as_object_mut() {
        for k in ["scorecard", "ratings", "started_at", "completed_at"] {
            map.remove(k);
        }
    }
    SupplierReviewView {
        review,
        scorecard,
        ratings,
        started_at,
        completed_at,
    }
}

/// `GET /v1/supplier-reviews` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SupplierReviewQuery {
    /// Of this supplier.
    pub supplier: Option<String>,
    /// `in_progress`, `completed` or `cancelled`.
    pub state: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// `GET /v1/supplier-reviews`: supplier reviews, newest first.
#[utoipa::path(get, path = "/v1/supplier-reviews", tag = "suppliers", params(SupplierReviewQuery),
    responses(
        (status = 200, description = "Reviews", body = Vec<SupplierReviewView>),
        (status = 400, description = "A bad filter, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_reviews(
    _who: Authenticated<AnyRole>,
    query: Query<SupplierReviewQuery>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let limit = page_limit(query.limit)?;
    if let Some(state) = &query.state
        && !["in_progress", "completed", "cancelled"].contains(&state.as_str())
    {
        return Err(Problem::field(
            "state",
            "must be in_progress, completed or cancelled",
        ));
    }
    let rows = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            Ok(store::reviews(conn, query.supplier, query.state, limit)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(review_view).collect::<Vec<_>>()))
}

/// `GET /v1/supplier-reviews/{id}`: a review with its scorecard, ratings, assessment, sign-off
/// and follow-up actions — the evidence of 8.3.4.
#[utoipa::path(get, path = "/v1/supplier-reviews/{id}", tag = "suppliers",
    params(("id" = String, Path, description = "Review id")),
    responses(
        (status = 200, description = "The review", body = Object),
        (status = 404, description = "No such review", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_review(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let key = id.into_inner();
    let (row, actions) = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            let row = store::review(conn, &key)?
                .ok_or_else(|| Problem::new(codes::SUPPLIER_REVIEW_NOT_FOUND))?;
            let actions = customer_store::actions(
                conn,
                customer_store::ActionFilter {
                    source_id: Some(row.id.clone()),
                    ..customer_store::ActionFilter::default()
                },
                500,
            )?;
            Ok((row, actions))
        })
        .await?;
    let mut view = serde_json::to_value(review_view(row)).unwrap_or_default();
    view["follow_up_actions"] = serde_json::to_value(actions).unwrap_or_default();
    Ok(HttpResponse::Ok().json(view))
}
