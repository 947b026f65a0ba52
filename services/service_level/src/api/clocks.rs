//! `/v1/sla-clocks` and `/v1/breaches`: where each ticket stands against its agreements, and the
//! breaches with their investigation (8.3.3: breaches are investigated).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated};
use meridian_chassis::problem::{InvalidParam, Json, Query, codes};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ServiceLevelManager, checked, text};
use crate::ServiceLevel;
use crate::store::clocks::{self as store, BreachRow, ClockRow, Filter};

fn utc(at: chrono::NaiveDateTime) -> DateTime<Utc> {
    meridian_chassis::clock::utc(at)
}

/// A clock.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClockView {
    /// Id.
    pub id: String,
    /// The ticket.
    pub ticket_id: String,
    /// Its number.
    pub number: String,
    /// The agreement.
    pub agreement_id: String,
    /// `response` or `resolution`.
    pub metric: String,
    /// The service.
    pub service: String,
    /// The ticket's priority.
    pub priority: i32,
    /// The target, seconds of working time.
    pub target_seconds: i64,
    /// Counted so far (at `computed_at`).
    pub elapsed_seconds: i64,
    /// `running`, `paused`, `met`, `breached` or `cancelled`.
    pub stage: String,
    /// When it breaches, while it runs.
    pub due_at: Option<DateTime<Utc>>,
    /// When it warns, while it runs.
    pub warn_at: Option<DateTime<Utc>>,
    /// When it stopped.
    pub stopped_at: Option<DateTime<Utc>>,
    /// The warning was raised.
    pub warned: bool,
    /// The breach was raised.
    pub breached: bool,
    /// When it was computed.
    pub computed_at: DateTime<Utc>,
}

impl From<ClockRow> for ClockView {
    fn from(r: ClockRow) -> Self {
        Self {
            id: r.id,
            ticket_id: r.ticket_id,
            number: r.number,
            agreement_id: r.agreement_id,
            metric: r.metric,
            service: r.service,
            priority: r.priority,
            target_seconds: r.target_seconds,
            elapsed_seconds: r.elapsed_seconds,
            stage: r.stage,
            due_at: r.due_at.map(utc),
            warn_at: r.warn_at.map(utc),
            stopped_at: r.stopped_at.map(utc),
            warned: r.warned,
            breached: r.breached,
            computed_at: utc(r.computed_at),
        }
    }
}

/// `GET /v1/sla-clocks` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ClockQuery {
    /// A ticket's id or number.
    pub ticket: Option<String>,
    /// A service.
    pub service: Option<String>,
    /// `running`, `paused`, `met`, `breached` or `cancelled`.
    pub stage: Option<String>,
    /// The cursor: the last id of the previous page.
    pub after: Option<String>,
    /// Page size, 1–500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// A page of clocks.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClockPage {
    /// By id.
    pub items: Vec<ClockView>,
    /// The next page's cursor.
    pub next: Option<String>,
}

/// `GET /v1/sla-clocks`.
#[utoipa::path(get, path = "/v1/sla-clocks", tag = "service-levels", params(ClockQuery),
    responses(
        (status = 200, description = "A page of clocks", body = ClockPage),
        (status = 400, description = "A bad filter, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_clocks(
    _who: Authenticated<AnyRole>,
    query: Query<ClockQuery>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::field("limit", "must be 1 to 500"));
    }
    if let Some(stage) = &query.stage
        && !matches!(
            stage.as_str(),
            "running" | "paused" | "met" | "breached" | "cancelled"
        )
    {
        return Err(Problem::field(
            "stage",
            "must be running, paused, met, breached or cancelled",
        ));
    }
    let filter = Filter {
        ticket: query.ticket,
        service: query.service,
        stage: query.stage,
        after: query.after,
        limit: limit + 1,
    };
    let page = svc
        .db
        .run(move |conn| -> Result<ClockPage, Problem> {
            let mut rows = store::list(conn, &filter)?;
            let max = usize::try_from(limit).unwrap_or(usize::MAX);
            let more = rows.len() > max;
            rows.truncate(max);
            let next = more.then(|| rows.last().map(|r| r.id.clone())).flatten();
            Ok(ClockPage {
                items: rows.into_iter().map(ClockView::from).collect(),
                next,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// A breach.
#[derive(Debug, Serialize, ToSchema)]
pub struct BreachView {
    /// Id.
    pub id: String,
    /// The clock.
    pub clock_id: String,
    /// The ticket.
    pub ticket_id: String,
    /// Its number.
    pub number: String,
    /// The agreement.
    pub agreement_id: String,
    /// `response` or `resolution`.
    pub metric: String,
    /// The service.
    pub service: String,
    /// When the target was due.
    pub due_at: DateTime<Utc>,
    /// When it was detected.
    pub detected_at: DateTime<Utc>,
    /// The cause, once investigated.
    pub cause: Option<String>,
    /// The cause's category.
    pub cause_category: Option<String>,
    /// Who investigated.
    pub investigated_by: Option<String>,
    /// When.
    pub investigated_at: Option<DateTime<Utc>>,
}

impl From<BreachRow> for BreachView {
    fn from(r: BreachRow) -> Self {
        Self {
            id: r.id,
            clock_id: r.clock_id,
            ticket_id: r.ticket_id,
            number: r.number,
            agreement_id: r.agreement_id,
            metric: r.metric,
            service: r.service,
            due_at: utc(r.due_at),
            detected_at: utc(r.detected_at),
            cause: r.cause,
            cause_category: r.cause_category,
            investigated_by: r.investigated_by,
            investigated_at: r.investigated_at.map(utc),
        }
    }
}

/// `GET /v1/breaches` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BreachQuery {
    /// A service.
    pub service: Option<String>,
    /// From (RFC 3339; default 30 days ago).
    pub from: Option<DateTime<Utc>>,
    /// To (RFC 3339; default now).
    pub to: Option<DateTime<Utc>>,
    /// Only those not yet investigated.
    pub open: Option<bool>,
}

/// `GET /v1/breaches`: breaches due in a period, oldest first.
#[utoipa::path(get, path = "/v1/breaches", tag = "service-levels", params(BreachQuery),
    responses(
        (status = 200, description = "The breaches", body = Vec<BreachView>),
        (status = 400, description = "A bad filter, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_breaches(
    _who: Authenticated<AnyRole>,
    query: Query<BreachQuery>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let to = query
        .to
        .unwrap_or_else(|| svc.clock.now() + chrono::Duration::seconds(1));
    let from = query.from.unwrap_or(to - chrono::Duration::days(30));
    if from >= to {
        return Err(Problem::field("from", "must be before to"));
    }
    let service = query.service;
    let open = query.open;
    let rows = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            Ok(store::breaches(
                conn,
                service.as_deref(),
                from.naive_utc(),
                to.naive_utc(),
            )?)
        })
        .await?;
    let rows: Vec<BreachView> = rows
        .into_iter()
        .filter(|b| open.is_none_or(|o| o == b.cause.is_none()))
        .map(BreachView::from)
        .collect();
    Ok(HttpResponse::Ok().json(rows))
}

/// The body of `PUT /v1/breaches/{id}/investigation`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Investigation {
    /// What caused it.
    #[schema(min_length = 1, max_length = 5000)]
    pub cause: String,
    /// `capacity`, `supplier`, `process`, `knowledge`, `priority`, `tooling` or `other`.
    pub category: String,
}

/// `PUT /v1/breaches/{id}/investigation`: records the cause of a breach.
#[utoipa::path(put, path = "/v1/breaches/{id}/investigation", tag = "service-levels",
    params(("id" = String, Path, description = "Breach id")), request_body = Investigation,
    responses(
        (status = 200, description = "Recorded", body = BreachView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such breach", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn investigate_breach(
    who: Authenticated<ServiceLevelManager>,
    id: web::Path<String>,
    body: Json<Investigation>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    text("cause", &input.cause, 5000, true, &mut params);
    if !matches!(
        input.category.as_str(),
        "capacity" | "supplier" | "process" | "knowledge" | "priority" | "tooling" | "other"
    ) {
        params.push(InvalidParam::new(
            "category",
            "must be capacity, supplier, process, knowledge, priority, tooling or other",
        ));
    }
    checked(params)?;
    let id = id.into_inner();
    let actor = who.subject.clone();
    let now = svc.clock.now();
    let row = svc
        .db
        .transaction(move |conn| -> Result<BreachRow, Problem> {
            let before =
                store::breach(conn, &id)?.ok_or_else(|| Problem::new(codes::BREACH_NOT_FOUND))?;
            Ok(store::investigate(
                conn,
                &before,
                input.cause.trim(),
                &input.category,
                &actor,
                now,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(BreachView::from(row)))
}
