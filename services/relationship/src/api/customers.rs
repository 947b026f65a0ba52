//! Customers and their parties, service reviews with their performance figures, and the
//! follow-up actions of every review (8.3.2).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated};
use meridian_chassis::db::AnyConnection;
use meridian_chassis::problem::{InvalidParam, Json, Query, codes};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{RelationshipManager, checked, days, one_of, page_limit, slug, text, utc};
use crate::Relationship;
use crate::store::customers::{
    self as store, ActionFilter, ActionRow, CustomerRow, PartyRow, ReviewRow,
};
use crate::store::{audit, json as parse};

/// A customer as written.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    /// Id (a slug; `POST` only, the path's on `PUT`).
    pub id: Option<String>,
    /// Name.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// `external` (default) or `internal`.
    #[serde(default = "external")]
    pub kind: String,
    /// Who looks after the relationship.
    #[schema(min_length = 1, max_length = 200)]
    pub account_manager: String,
    /// The catalogue services it receives.
    #[serde(default)]
    pub services: Vec<String>,
    /// Service reviews at least this often, days (default 90).
    #[serde(default = "ninety")]
    pub review_interval_days: i32,
    /// Periodic satisfaction surveys this often, days (none when absent).
    pub survey_interval_days: Option<i32>,
    /// Notes.
    #[serde(default)]
    pub notes: String,
}

fn external() -> String {
    "external".to_owned()
}

fn ninety() -> i32 {
    90
}

/// A customer, with its parties and where its reviews stand.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `external` or `internal`.
    pub kind: String,
    /// Account manager.
    pub account_manager: String,
    /// The services it receives.
    pub services: Vec<String>,
    /// Review interval, days.
    pub review_interval_days: i32,
    /// Survey interval, days.
    pub survey_interval_days: Option<i32>,
    /// Notes.
    pub notes: String,
    /// The last review held.
    pub last_review_at: Option<DateTime<Utc>>,
    /// The next review is due by (the last one, or the customer's recording, plus the
    /// interval).
    pub next_review_due: NaiveDate,
    /// The review is overdue.
    pub review_overdue: bool,
    /// Its contacts, users and interested parties (on `GET /v1/customers/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub parties: Option<Vec<PartyRow>>,
    /// Recorded.
    pub created_at: DateTime<Utc>,
}

fn view(
    conn: &mut AnyConnection,
    row: CustomerRow,
    today: NaiveDate,
    with_parties: bool,
) -> Result<CustomerView, Problem> {
    let last = store::last_held(conn, &row.id)?;
    let since = last.unwrap_or(row.created_at).date();
    let next = since + chrono::Duration::days(i64::from(row.review_interval_days));
    let parties = if with_parties {
        Some(store::parties(conn, Some(row.id.clone()), None)?)
    } else {
        None
    };
    Ok(CustomerView {
        services: serde_json::from_str(&row.services).unwrap_or_default(),
        last_review_at: last.map(utc),
        next_review_due: next,
        review_overdue: next < today,
        parties,
        created_at: utc(row.created_at),
        id: row.id,
        name: row.name,
        kind: row.kind,
        account_manager: row.account_manager,
        review_interval_days: row.review_interval_days,
        survey_interval_days: row.survey_interval_days,
        notes: row.notes,
    })
}

fn check_customer(input: &CustomerInput, params: &mut Vec<InvalidParam>) {
    text("name", &input.name, 200, true, params);
    one_of("kind", &input.kind, &["external", "internal"], params);
    text("account_manager", &input.account_manager, 200, true, params);
    days(
        "review_interval_days",
        input.review_interval_days,
        7..=730,
        params,
    );
    if let Some(d) = input.survey_interval_days {
        days("survey_interval_days", d, 7..=730, params);
    }
    text("notes", &input.notes, 10_000, false, params);
    if input.services.len() > 100 {
        params.push(InvalidParam::new("services", "at most 100"));
    }
}

/// Refuses services the catalogue does not offer, naming each.
fn known_services(
    conn: &mut AnyConnection,
    field: &str,
    services: &[String],
) -> Result<(), Problem> {
    let unknown = store::unknown_services(conn, services)?;
    if unknown.is_empty() {
        return Ok(());
    }
    let params = services
        .iter()
        .enumerate()
        .filter(|(_, s)| unknown.contains(s))
        .map(|(i, s)| {
            InvalidParam::new(
                format!("{field}[{i}]"),
                format!("{s} is not a live service of the catalogue"),
            )
        })
        .collect();
    Err(Problem::invalid(codes::INVALID_BODY, params))
}

async fn save_customer(
    svc: &Relationship,
    actor: String,
    id: String,
    new: bool,
    input: CustomerInput,
) -> Result<CustomerView, Problem> {
    let now = svc.clock.now();
    svc.db
        .transaction(move |conn| -> Result<CustomerView, Problem> {
            let before = store::customer(conn, &id)?;
            match (&before, new) {
                (Some(_), true) => return Err(Problem::new(codes::CUSTOMER_EXISTS)),
                (None, false) => return Err(Problem::new(codes::CUSTOMER_NOT_FOUND)),
                _ => {}
            }
            known_services(conn, "services", &input.services)?;
            let row = CustomerRow {
                id: id.clone(),
                name: input.name,
                kind: input.kind,
                account_manager: input.account_manager,
                services: serde_json::to_string(&input.services).unwrap_or_default(),
                review_interval_days: input.review_interval_days,
                survey_interval_days: input.survey_interval_days,
                notes: input.notes,
                last_survey_at: before.as_ref().and_then(|b| b.last_survey_at),
                created_by: before
                    .as_ref()
                    .map_or_else(|| actor.clone(), |b| b.created_by.clone()),
                created_at: before
                    .as_ref()
                    .map_or_else(|| now.naive_utc(), |b| b.created_at),
                updated_at: now.naive_utc(),
            };
            store::save_customer(conn, &row, new)?;
            audit(conn, &actor, "customer.saved", "customer", &id, &row, now)?;
            view(conn, row, now.date_naive(), true)
        })
        .await
}

/// `POST /v1/customers`: records a customer.
#[utoipa::path(post, path = "/v1/customers", tag = "customers", request_body = CustomerInput,
    responses(
        (status = 201, description = "Recorded", body = CustomerView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "The id is taken", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn create_customer(
    who: Authenticated<RelationshipManager>,
    body: Json<CustomerInput>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    let id = input.id.clone().unwrap_or_default();
    slug("id", &id, &mut params);
    check_customer(&input, &mut params);
    checked(params)?;
    let view = save_customer(&svc, who.subject.clone(), id, true, input).await?;
    Ok(HttpResponse::Created().json(view))
}

/// `PUT /v1/customers/{id}`: changes a customer.
#[utoipa::path(put, path = "/v1/customers/{id}", tag = "customers", request_body = CustomerInput,
    params(("id" = String, Path, description = "Customer id")),
    responses(
        (status = 200, description = "Saved", body = CustomerView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such customer", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn put_customer(
    who: Authenticated<RelationshipManager>,
    id: web::Path<String>,
    body: Json<CustomerInput>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    if input.id.as_ref().is_some_and(|i| *i != *id) {
        params.push(InvalidParam::new("id", "must be the path's id, or absent"));
    }
    check_customer(&input, &mut params);
    checked(params)?;
    let view = save_customer(&svc, who.subject.clone(), id.into_inner(), false, input).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /v1/customers` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CustomerQuery {
    /// Only those whose service review is overdue.
    pub review_overdue: Option<bool>,
    /// The cursor: the last id of the previous page.
    pub after: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// `GET /v1/customers`: customers, with where their reviews stand.
#[utoipa::path(get, path = "/v1/customers", tag = "customers", params(CustomerQuery),
    responses(
        (status = 200, description = "A page of customers", body = Vec<CustomerView>),
        (status = 400, description = "A bad filter, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_customers(
    _who: Authenticated<AnyRole>,
    query: Query<CustomerQuery>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let limit = page_limit(query.limit)?;
    let today = svc.clock.now().date_naive();
    let views = svc
        .db
        .run(move |conn| -> Result<Vec<CustomerView>, Problem> {
            let rows = store::customers(conn, query.after, limit)?;
            let mut views = Vec::new();
            for row in rows {
                let v = view(conn, row, today, false)?;
                if query.review_overdue.is_none_or(|o| o == v.review_overdue) {
                    views.push(v);
                }
            }
            Ok(views)
        })
        .await?;
    Ok(HttpResponse::Ok().json(views))
}

/// `GET /v1/customers/{id}`: a customer with its parties.
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "Customer id")),
    responses(
        (status = 200, description = "The customer", body = CustomerView),
        (status = 404, description = "No such customer", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_customer(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let today = svc.clock.now().date_naive();
    let id = id.into_inner();
    let view = svc
        .db
        .run(move |conn| -> Result<CustomerView, Problem> {
            let row = store::customer(conn, &id)?
                .ok_or_else(|| Problem::new(codes::CUSTOMER_NOT_FOUND))?;
            view(conn, row, today, true)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A party as written.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartyInput {
    /// The customer (absent for an interested party of no customer).
    pub customer: Option<String>,
    /// `contact`, `user` or `interested_party`.
    pub kind: String,
    /// Name.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// E-mail address.
    #[serde(default)]
    pub email: String,
    /// Their Meridian user id, if any.
    #[serde(default)]
    pub user_id: String,
    /// Their requirements.
    #[serde(default)]
    pub requirements: String,
}

fn check_party(input: &PartyInput) -> Result<(), Problem> {
    let mut params = Vec::new();
    one_of(
        "kind",
        &input.kind,
        &["contact", "user", "interested_party"],
        &mut params,
    );
    text("name", &input.name, 200, true, &mut params);
    text("email", &input.email, 254, false, &mut params);
    if !input.email.is_empty() && !input.email.contains('@') {
        params.push(InvalidParam::new("email", "must be an e-mail address"));
    }
    text("user_id", &input.user_id, 200, false, &mut params);
    text(
        "requirements",
        &input.requirements,
        10_000,
        false,
        &mut params,
    );
    if input.kind != "interested_party" && input.customer.is_none() {
        params.push(InvalidParam::new(
            "customer",
            "a contact or user belongs to a customer",
        ));
    }
    checked(params)
}

async fn save_party(
    svc: &Relationship,
    actor: String,
    id: Option<String>,
    input: PartyInput,
) -> Result<PartyRow, Problem> {
    check_party(&input)?;
    let now = svc.clock.now();
    svc.db
        .transaction(move |conn| -> Result<PartyRow, Problem> {
            let before = match &id {
                Some(id) => Some(
                    store::party(conn, id)?.ok_or_else(|| Problem::new(codes::PARTY_NOT_FOUND))?,
                ),
                None => None,
            };
            if let Some(customer) = &input.customer
                && store::customer(conn, customer)?.is_none()
            {
                return Err(Problem::field(
                    "customer",
                    format!("no customer {customer}"),
                ));
            }
            let row = PartyRow {
                id: id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
                customer_id: input.customer,
                kind: input.kind,
                name: input.name,
                email: input.email,
                user_id: input.user_id,
                requirements: input.requirements,
                created_at: before
                    .as_ref()
                    .map_or_else(|| now.naive_utc(), |b| b.created_at),
                updated_at: now.naive_utc(),
            };
            store::save_party(conn, &row, before.is_none())?;
            audit(conn, &actor, "party.saved", "party", &row.id, &row, now)?;
            Ok(row)
        })
        .await
}

/// `POST /v1/parties`: records a contact, a user or an interested party.
#[utoipa::path(post, path = "/v1/parties", tag = "customers", request_body = PartyInput,
    responses(
        (status = 201, description = "Recorded", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn create_party(
    who: Authenticated<RelationshipManager>,
    body: Json<PartyInput>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let row = save_party(&svc, who.subject.clone(), None, body.0).await?;
    Ok(HttpResponse::Created().json(row))
}

/// `PUT /v1/parties/{id}`: changes a party.
#[utoipa::path(put, path = "/v1/parties/{id}", tag = "customers", request_body = PartyInput,
    params(("id" = String, Path, description = "Party id")),
    responses(
        (status = 200, description = "Saved", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such party", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn put_party(
    who: Authenticated<RelationshipManager>,
    id: web::Path<String>,
    body: Json<PartyInput>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let row = save_party(&svc, who.subject.clone(), Some(id.into_inner()), body.0).await?;
    Ok(HttpResponse::Ok().json(row))
}

/// `GET /v1/parties` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PartyQuery {
    /// Of this customer.
    pub customer: Option<String>,
    /// `contact`, `user` or `interested_party`.
    pub kind: Option<String>,
}

/// `GET /v1/parties`: contacts, users and interested parties.
#[utoipa::path(get, path = "/v1/parties", tag = "customers", params(PartyQuery),
    responses(
        (status = 200, description = "Parties", body = Vec<Object>),
        (status = 400, description = "A bad filter, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_parties(
    _who: Authenticated<AnyRole>,
    query: Query<PartyQuery>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    if let Some(kind) = &query.kind
        && !["contact", "user", "interested_party"].contains(&kind.as_str())
    {
        return Err(Problem::field(
            "kind",
            "must be contact, user or interested_party",
        ));
    }
    let rows = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            Ok(store::parties(conn, query.customer, query.kind)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// A service review as planned.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewInput {
    /// The customer.
    #[schema(pattern = "^[a-z0-9-]{1,50}$")]
    pub customer: String,
    /// When it is to be held.
    pub scheduled_for: DateTime<Utc>,
    /// The period reviewed (default: the review interval before `period_to`).
    pub period_from: Option<NaiveDate>,
    /// Its end (default: the day it is planned).
    pub period_to: Option<NaiveDate>,
    /// Agenda items.
    #[serde(default)]
    pub agenda: Vec<String>,
}

/// A service review.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewView {
    /// Id.
    pub id: String,
    /// The customer.
    pub customer: String,
    /// `planned` or `held`.
    pub state: String,
    /// When.
    pub scheduled_for: DateTime<Utc>,
    /// The period reviewed.
    pub period_from: NaiveDate,
    /// Its end.
    pub period_to: NaiveDate,
    /// Agenda items.
    #[schema(value_type = Vec<String>)]
    pub agenda: Value,
    /// Per service: the service report's figures, or why they could not be read.
    #[schema(value_type = Object)]
    pub performance: Value,
    /// Attendees.
    #[schema(value_type = Object)]
    pub attendees: Value,
    /// Minutes.
    pub minutes: String,
    /// Decisions.
    #[schema(value_type = Object)]
    pub decisions: Value,
    /// Held.
    pub held_at: Option<DateTime<Utc>>,
    /// Its follow-up actions.
    #[schema(value_type = Vec<Object>)]
    pub actions: Vec<ActionRow>,
    /// Planned by.
    pub created_by: String,
}

fn review_view(conn: &mut AnyConnection, row: ReviewRow) -> Result<ReviewView, Problem> {
    let actions = store::actions(
        conn,
        ActionFilter {
            source_id: Some(row.id.clone()),
            ..ActionFilter::default()
        },
        500,
    )?;
    Ok(ReviewView {
        agenda: parse(&row.agenda),
        performance: parse(&row.performance),
        attendees: parse(&row.attendees),
        decisions: parse(&row.decisions),
        scheduled_for: utc(row.scheduled_for),
        held_at: row.held_at.map(utc),
        actions,
        id: row.id,
        customer: row.customer_id,
        state: row.state,
        period_from: row.period_from,
        period_to: row.period_to,
        minutes: row.minutes,
        created_by: row.created_by,
    })
}

/// Reads the service report of each service for the period from service-level, as the caller
/// (their token is passed on); a report that cannot be read is recorded with the reason.
async fn performance(
    svc: &Relationship,
    authorization: Option<String>,
    services: Vec<String>,
    from: NaiveDate,
    to: NaiveDate,
) -> Value {
    let base = svc
        .config
        .service_level_url
        .trim_end_matches('/')
        .to_owned();
    let fetched = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        let (from, to) = (
            from.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
            (to + chrono::Duration::days(1))
                .and_hms_opt(0, 0, 0)
                .unwrap_or_default()
                .and_utc(),
        );
        let query = serde_urlencoded::to_string([
            (
                "from",
                from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            ("to", to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        ])
        .unwrap_or_default();
        services
            .into_iter()
            .map(|service| {
                let url = format!("{base}/v1/reports/services/{service}?{query}");
                let mut request = agent.get(&url);
                if let Some(authorization) = &authorization {
                    request = request.header("Authorization", authorization);
                }
                let read = request.call().map_err(|e| e.to_string()).and_then(|mut r| {
                    let status = r.status().as_u16();
                    let body = r
                        .body_mut()
                        .with_config()
                        .limit(1024 * 1024)
                        .read_to_string()
                        .map_err(|e| e.to_string())?;
                    if status == 200 {
                        serde_json::from_str::<Value>(&body).map_err(|e| e.to_string())
                    } else {
                        Err(format!("service-level answered {status}"))
                    }
                });
                match read {
                    Ok(report) => json!({"service": service, "report": report}),
                    Err(error) => json!({"service": service, "unavailable": error}),
                }
            })
            .collect::<Vec<_>>()
    })
    .await;
    fetched.map_or_else(|_| json!([]), Value::from)
}

fn bearer(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `POST /v1/service-reviews`: plans a review with a customer, with the performance figures of
/// each service it receives read from the service reports of the period.
#[utoipa::path(post, path = "/v1/service-reviews", tag = "customers", request_body = ReviewInput,
    responses(
        (status = 201, description = "Planned", body = ReviewView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn plan_review(
    who: Authenticated<RelationshipManager>,
    req: HttpRequest,
    body: Json<ReviewInput>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    slug("customer", &input.customer, &mut params);
    if input.agenda.len() > 50 {
        params.push(InvalidParam::new("agenda", "at most 50 items"));
    }
    for (i, item) in input.agenda.iter().enumerate() {
        text(&format!("agenda[{i}]"), item, 500, true, &mut params);
    }
    checked(params)?;
    let now = svc.clock.now();
    let key = input.customer.clone();
    let customer = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            store::customer(conn, &key)?
                .ok_or_else(|| Problem::field("customer", "no such customer"))
        })
        .await?;
    let to = input.period_to.unwrap_or_else(|| now.date_naive());
    let from = input
        .period_from
        .unwrap_or_else(|| to - chrono::Duration::days(i64::from(customer.review_interval_days)));
    if from >= to {
        return Err(Problem::field("period_from", "must be before period_to"));
    }
    let services: Vec<String> = serde_json::from_str(&customer.services).unwrap_or_default();
    let figures = performance(&svc, bearer(&req), services, from, to).await;
    let actor = who.subject.clone();
    let view = svc
        .db
        .transaction(move |conn| -> Result<ReviewView, Problem> {
            let row = ReviewRow {
                id: uuid::Uuid::now_v7().to_string(),
                customer_id: customer.id,
                state: "planned".to_owned(),
                scheduled_for: input.scheduled_for.naive_utc(),
                period_from: from,
                period_to: to,
                agenda: serde_json::to_string(&input.agenda).unwrap_or_default(),
                performance: figures.to_string(),
                attendees: "[]".to_owned(),
                minutes: String::new(),
                decisions: "[]".to_owned(),
                held_at: None,
                created_by: actor.clone(),
                created_at: now.naive_utc(),
                updated_at: now.naive_utc(),
            };
            store::save_review(conn, &row, true)?;
            audit(
                conn,
                &actor,
                "service_review.planned",
                "service_review",
                &row.id,
                &row,
                now,
            )?;
            review_view(conn, row)
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// `POST /v1/service-reviews/{id}/performance`: reads the figures again (before the review is
/// held).
#[utoipa::path(post, path = "/v1/service-reviews/{id}/performance", tag = "customers",
    params(("id" = String, Path, description = "Review id")),
    responses(
        (status = 200, description = "The review with fresh figures", body = ReviewView),
        (status = 404, description = "No such review", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Held already", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn refresh_performance(
    who: Authenticated<RelationshipManager>,
    req: HttpRequest,
    id: web::Path<String>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let key = id.into_inner();
    let (review, customer) = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            let review = store::review(conn, &key)?
                .ok_or_else(|| Problem::new(codes::SERVICE_REVIEW_NOT_FOUND))?;
            let customer = store::customer(conn, &review.customer_id)?
                .ok_or_else(|| Problem::new(codes::CUSTOMER_NOT_FOUND))?;
            Ok((review, customer))
        })
        .await?;
    if review.state != "planned" {
        return Err(Problem::new(codes::SERVICE_REVIEW_NOT_PLANNED));
    }
    let services: Vec<String> = serde_json::from_str(&customer.services).unwrap_or_default();
    let figures = performance(
        &svc,
        bearer(&req),
        services,
        review.period_from,
        review.period_to,
    )
    .await;
    let (now, actor) = (svc.clock.now(), who.subject.clone());
    let view = svc
        .db
        .transaction(move |conn| -> Result<ReviewView, Problem> {
            let mut row = store::review(conn, &review.id)?
                .ok_or_else(|| Problem::new(codes::SERVICE_REVIEW_NOT_FOUND))?;
            if row.state != "planned" {
                return Err(Problem::new(codes::SERVICE_REVIEW_NOT_PLANNED));
            }
            row.performance = figures.to_string();
            row.updated_at = now.naive_utc();
            store::save_review(conn, &row, false)?;
            audit(
                conn,
                &actor,
                "service_review.performance_read",
                "service_review",
                &row.id,
                &row,
                now,
            )?;
            review_view(conn, row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A follow-up action as agreed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionInput {
    /// What is to be done.
    pub description: String,
    /// Who does it.
    pub owner: String,
    /// By when.
    pub due_on: Option<NaiveDate>,
}

/// What was held.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldInput {
    /// When it was held (default now).
    pub held_at: Option<DateTime<Utc>>,
    /// Who attended.
    pub attendees: Vec<String>,
    /// The minutes.
    #[schema(min_length = 1, max_length = 50000)]
    pub minutes: String,
    /// Decisions taken.
    #[serde(default)]
    pub decisions: Vec<String>,
    /// Actions agreed, tracked to closure.
    #[serde(default)]
    pub actions: Vec<ActionInput>,
}

fn check_hold(input: &HoldInput) -> Result<(), Problem> {
    let mut params = Vec::new();
    if input.attendees.is_empty() || input.attendees.len() > 100 {
        params.push(InvalidParam::new("attendees", "must name 1 to 100 people"));
    }
    for (i, a) in input.attendees.iter().enumerate() {
        text(&format!("attendees[{i}]"), a, 200, true, &mut params);
    }
    text("minutes", &input.minutes, 50_000, true, &mut params);
    for (i, d) in input.decisions.iter().enumerate() {
        text(&format!("decisions[{i}]"), d, 2000, true, &mut params);
    }
    if input.actions.len() > 100 {
        params.push(InvalidParam::new("actions", "at most 100"));
    }
    for (i, a) in input.actions.iter().enumerate() {
        text(
            &format!("actions[{i}].description"),
            &a.description,
            2000,
            true,
            &mut params,
        );
        text(
            &format!("actions[{i}].owner"),
            &a.owner,
            200,
            true,
            &mut params,
        );
    }
    checked(params)
}

/// `POST /v1/service-reviews/{id}/hold`: records the review as held, with its minutes,
/// decisions and actions.
#[utoipa::path(post, path = "/v1/service-reviews/{id}/hold", tag = "customers", request_body = HoldInput,
    params(("id" = String, Path, description = "Review id")),
    responses(
        (status = 200, description = "Held", body = ReviewView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such review", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Held already", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn hold_review(
    who: Authenticated<RelationshipManager>,
    id: web::Path<String>,
    body: Json<HoldInput>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    check_hold(&input)?;
    let (now, actor, key) = (svc.clock.now(), who.subject.clone(), id.into_inner());
    let view = svc
        .db
        .transaction(move |conn| -> Result<ReviewView, Problem> {
            let mut row = store::review(conn, &key)?
                .ok_or_else(|| Problem::new(codes::SERVICE_REVIEW_NOT_FOUND))?;
            if row.state != "planned" {
                return Err(Problem::new(codes::SERVICE_REVIEW_NOT_PLANNED));
            }
            row.state = "held".to_owned();
            row.held_at = Some(input.held_at.unwrap_or(now).naive_utc());
            row.attendees = serde_json::to_string(&input.attendees).unwrap_or_default();
            row.minutes = input.minutes;
            row.decisions = serde_json::to_string(&input.decisions).unwrap_or_default();
            row.updated_at = now.naive_utc();
            let actions: Vec<ActionRow> = input
                .actions
                .into_iter()
                .map(|a| ActionRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    source_kind: "service_review".to_owned(),
                    source_id: row.id.clone(),
                    description: a.description,
                    owner: a.owner,
                    due_on: a.due_on,
                    state: "open".to_owned(),
                    outcome: String::new(),
                    closed_by: None,
                    closed_at: None,
                    created_at: now.naive_utc(),
                })
                .collect();
            store::save_review(conn, &row, false)?;
            store::add_actions(conn, &actions)?;
            audit(
                conn,
                &actor,
                "service_review.held",
                "service_review",
                &row.id,
                &row,
                now,
            )?;
            review_view(conn, row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /v1/service-reviews` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReviewQuery {
    /// Of this customer.
    pub customer: Option<String>,
    /// `planned` or `held`.
    pub state: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// `GET /v1/service-reviews`: reviews, newest first.
#[utoipa::path(get, path = "/v1/service-reviews", tag = "customers", params(ReviewQuery),
    responses(
        (status = 200, description = "Reviews", body = Vec<ReviewView>),
        (status = 400, description = "A bad filter, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_reviews(
    _who: Authenticated<AnyRole>,
    query: Query<ReviewQuery>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let limit = page_limit(query.limit)?;
    if let Some(state) = &query.state
        && !["planned", "held"].contains(&state.as_str())
    {
        return Err(Problem::field("state", "must be planned or held"));
    }
    let views = svc
        .db
        .run(move |conn| -> Result<Vec<ReviewView>, Problem> {
            store::reviews(conn, query.customer, query.state, limit)?
                .into_iter()
                .map(|row| review_view(conn, row))
                .collect()
        })
        .await?;
    Ok(HttpResponse::Ok().json(views))
}

/// `GET /v1/service-reviews/{id}`: a review with its figures and actions.
#[utoipa::path(get, path = "/v1/service-reviews/{id}", tag = "customers",
    params(("id" = String, Path, description = "Review id")),
    responses(
        (status = 200, description = "The review", body = ReviewView),
        (status = 404, description = "No such review", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_review(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let key = id.into_inner();
    let view = svc
        .db
        .run(move |conn| -> Result<ReviewView, Problem> {
            let row = store::review(conn, &key)?
                .ok_or_else(|| Problem::new(codes::SERVICE_REVIEW_NOT_FOUND))?;
            review_view(conn, row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /v1/follow-up-actions` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ActionQuery {
    /// `open` or `done`.
    pub state: Option<String>,
    /// Owned by (`me` for the caller).
    pub owner: Option<String>,
    /// Of this review.
    pub source: Option<String>,
    /// Only open actions past their due date.
    pub overdue: Option<bool>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// `GET /v1/follow-up-actions`: the actions of service and supplier reviews.
#[utoipa::path(get, path = "/v1/follow-up-actions", tag = "customers", params(ActionQuery),
    responses(
        (status = 200, description = "Actions", body = Vec<Object>),
        (status = 400, description = "A bad filter, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_actions(
    who: Authenticated<AnyRole>,
    query: Query<ActionQuery>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let limit = page_limit(query.limit)?;
    if let Some(state) = &query.state
        && !["open", "done"].contains(&state.as_str())
    {
        return Err(Problem::field("state", "must be open or done"));
    }
    let overdue = query.overdue == Some(true);
    let filter = ActionFilter {
        state: if overdue {
            Some("open".to_owned())
        } else {
            query.state
        },
        owner: query
            .owner
            .map(|o| if o == "me" { who.subject.clone() } else { o }),
        source_id: query.source,
        due_before: overdue.then(|| svc.clock.now().date_naive()),
    };
    let rows = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(store::actions(conn, filter, limit)?) })
        .await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// How an action was closed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseActionInput {
    /// What was done.
    #[schema(min_length = 1, max_length = 5000)]
    pub outcome: String,
}

/// `POST /v1/follow-up-actions/{id}/close`: closes an action with its outcome (its owner, a
/// relationship or supplier manager).
#[utoipa::path(post, path = "/v1/follow-up-actions/{id}/close", tag = "customers", request_body = CloseActionInput,
    params(("id" = String, Path, description = "Action id")),
    responses(
        (status = 200, description = "Closed", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 403, description = "Neither its owner nor a manager", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such action", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Closed already", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn close_action(
    who: Authenticated<AnyRole>,
    id: web::Path<String>,
    body: Json<CloseActionInput>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    super::one_text("outcome", &body.0.outcome, 5000)?;
    let manager = who.has("relationship-manager") || who.has("supplier-manager");
    let (now, actor, key, outcome) = (
        svc.clock.now(),
        who.subject.clone(),
        id.into_inner(),
        body.0.outcome,
    );
    let row = svc
        .db
        .transaction(move |conn| -> Result<ActionRow, Problem> {
            let mut row = store::action(conn, &key)?
                .ok_or_else(|| Problem::new(codes::FOLLOW_UP_ACTION_NOT_FOUND))?;
            if !manager && row.owner != actor {
                return Err(Problem::new(codes::FORBIDDEN).detail(
                    "only its owner or a relationship or supplier manager closes an action",
                ));
            }
            if row.state != "open" {
                return Err(Problem::new(codes::FOLLOW_UP_ACTION_CLOSED));
            }
            row.state = "done".to_owned();
            row.outcome = outcome;
            row.closed_by = Some(actor.clone());
            row.closed_at = Some(now.naive_utc());
            store::save_action(conn, &row)?;
            audit(
                conn,
                &actor,
                "follow_up_action.closed",
                "follow_up_action",
                &row.id,
                &row,
                now,
            )?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(row))
}
