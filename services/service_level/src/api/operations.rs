//! Availability (8.7.1), continuity (8.7.2), capacity and demand (8.4.1, 8.4.2), budgeting and
//! accounting (8.4.3).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated};
use meridian_chassis::db::AnyConnection;
use meridian_chassis::problem::{InvalidParam, Json, Query, codes};
use meridian_proto::Message;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{ServiceLevelManager, checked, slug, text};
use crate::ServiceLevel;
use crate::domain::operations::{self as domain, Availability, Outage, Threshold};
use crate::store::operations::{
    self as store, BudgetRow, CapacityRow, CostRow, ForecastRow, MeasurementRow, OutageRow,
    PlanEventRow, PlanRow,
};
use crate::store::{SOURCE, catalogue};

fn utc(at: chrono::NaiveDateTime) -> DateTime<Utc> {
    meridian_chassis::clock::utc(at)
}

fn known_service(conn: &mut AnyConnection, field: &str, service: &str) -> Result<(), Problem> {
    if catalogue::find(conn, service)?.is_none() {
        return Err(Problem::field(
            field,
            format!("{service} is not in the catalogue"),
        ));
    }
    Ok(())
}

fn audit<T: Serialize>(
    conn: &mut AnyConnection,
    actor: &str,
    action: &str,
    kind: &str,
    id: &str,
    after: &T,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    meridian_chassis::audit::record_after(conn, actor, action, kind, id, after, now)?;
    Ok(())
}

/// A window `[from, to)`: the query's, or the last 30 days.
fn window(
    now: DateTime<Utc>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), Problem> {
    let to = to.unwrap_or(now);
    let from = from.unwrap_or(to - chrono::Duration::days(30));
    if from >= to {
        return Err(Problem::field("from", "must be before to"));
    }
    if to - from > chrono::Duration::days(3700) {
        return Err(Problem::field("from", "the window is at most ten years"));
    }
    Ok((from, to))
}

/// `PUT /v1/services/{id}/availability-target`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetInput {
    /// The agreed availability, e.g. 99.9.
    pub target_percent: f64,
}

/// `PUT /v1/services/{id}/availability-target`: the agreed availability of a service.
#[utoipa::path(put, path = "/v1/services/{id}/availability-target", tag = "availability",
    params(("id" = String, Path, description = "Service id")), request_body = TargetInput,
    responses(
        (status = 200, description = "Saved"),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "Not in the catalogue", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn put_target(
    who: Authenticated<ServiceLevelManager>,
    id: web::Path<String>,
    body: Json<TargetInput>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let percent = body.0.target_percent;
    if !(percent > 0.0 && percent <= 100.0) {
        return Err(Problem::field(
            "target_percent",
            "must be above 0 and at most 100",
        ));
    }
    let (id, actor, now) = (id.into_inner(), who.subject.clone(), svc.clock.now());
    svc.db
        .transaction(move |conn| -> Result<(), Problem> {
            catalogue::find(conn, &id)?.ok_or_else(|| Problem::new(codes::SERVICE_NOT_FOUND))?;
            store::set_target(conn, &id, percent, now.naive_utc())?;
            audit(
                conn,
                &actor,
                "availability.target_set",
                "service",
                &id,
                &json!({"target_percent": percent}),
                now,
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({"target_percent": percent})))
}

/// An outage as written.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutageInput {
    /// The service.
    #[schema(pattern = "^[a-z0-9-]{1,50}$")]
    pub service: String,
    /// Began.
    pub started_at: DateTime<Utc>,
    /// Ended (absent while still down).
    pub ended_at: Option<DateTime<Utc>>,
    /// Planned maintenance.
    #[serde(default)]
    pub planned: bool,
    /// What happened.
    #[schema(min_length = 1, max_length = 5000)]
    pub description: String,
    /// The investigation of an unplanned outage.
    pub investigation: Option<String>,
}

/// An outage.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutageView {
    /// Id.
    pub id: String,
    /// The service.
    pub service: String,
    /// Began.
    pub started_at: DateTime<Utc>,
    /// Ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Planned.
    pub planned: bool,
    /// `manual` or `major_incident`.
    pub source: String,
    /// The major incident.
    pub ticket_id: Option<String>,
    /// What happened.
    pub description: String,
    /// Its investigation.
    pub investigation: Option<String>,
    /// An unplanned outage not yet investigated.
    pub needs_investigation: bool,
}

impl From<OutageRow> for OutageView {
    fn from(r: OutageRow) -> Self {
        Self {
            needs_investigation: !r.planned && r.investigation.is_none(),
            id: r.id,
            service: r.service,
            started_at: utc(r.started_at),
            ended_at: r.ended_at.map(utc),
            planned: r.planned,
            source: r.source,
            ticket_id: r.ticket_id,
            description: r.description,
            investigation: r.investigation,
        }
    }
}

fn check_outage(input: &OutageInput) -> Result<(), Problem> {
    let mut params = Vec::new();
    slug("service", &input.service, &mut params);
    text("description", &input.description, 5000, true, &mut params);
    if let Some(i) = &input.investigation {
        text("investigation", i, 10_000, true, &mut params);
    }
    if input.ended_at.is_some_and(|e| e <= input.started_at) {
        params.push(InvalidParam::new("ended_at", "must be after started_at"));
    }
    checked(params)
}

async fn save_outage(
    svc: &ServiceLevel,
    actor: String,
    id: Option<String>,
    input: OutageInput,
) -> Result<OutageRow, Problem> {
    check_outage(&input)?;
    let now = svc.clock.now();
    svc.db
        .transaction(move |conn| -> Result<OutageRow, Problem> {
            known_service(conn, "service", &input.service)?;
            let before = match &id {
                Some(id) => Some(
                    store::outage(conn, id)?
                        .ok_or_else(|| Problem::new(codes::NOT_FOUND).detail("no such outage"))?,
                ),
                None => None,
            };
            let row = OutageRow {
                id: id
                    .clone()
                    .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
                service: input.service.clone(),
                started_at: input.started_at.naive_utc(),
                ended_at: input.ended_at.map(|e| e.naive_utc()),
                planned: input.planned,
                source: before
                    .as_ref()
                    .map_or_else(|| "manual".to_owned(), |b| b.source.clone()),
                ticket_id: before.as_ref().and_then(|b| b.ticket_id.clone()),
                description: input.description.clone(),
                investigation: input.investigation.clone(),
                recorded_by: before
                    .as_ref()
                    .map_or_else(|| actor.clone(), |b| b.recorded_by.clone()),
            };
            store::save_outage(conn, &row)?;
            audit(conn, &actor, "outage.saved", "outage", &row.id, &row, now)?;
            Ok(row)
        })
        .await
}

/// `POST /v1/outages`: records an outage (major incidents record theirs).
#[utoipa::path(post, path = "/v1/outages", tag = "availability", request_body = OutageInput,
    responses(
        (status = 201, description = "Recorded", body = OutageView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn create_outage(
    who: Authenticated<ServiceLevelManager>,
    body: Json<OutageInput>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let row = save_outage(&svc, who.subject.clone(), None, body.0).await?;
    Ok(HttpResponse::Created().json(OutageView::from(row)))
}

/// `PUT /v1/outages/{id}`: ends or investigates an outage.
#[utoipa::path(put, path = "/v1/outages/{id}", tag = "availability",
    params(("id" = String, Path, description = "Outage id")), request_body = OutageInput,
    responses(
        (status = 200, description = "Saved", body = OutageView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such outage", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn put_outage(
    who: Authenticated<ServiceLevelManager>,
    id: web::Path<String>,
    body: Json<OutageInput>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let row = save_outage(&svc, who.subject.clone(), Some(id.into_inner()), body.0).await?;
    Ok(HttpResponse::Ok().json(OutageView::from(row)))
}

/// A window of a service.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WindowQuery {
    /// From (RFC 3339; default 30 days before `to`).
    pub from: Option<DateTime<Utc>>,
    /// To (RFC 3339; default now).
    pub to: Option<DateTime<Utc>>,
}

/// Availability of a service over a window.
#[derive(Debug, Serialize, ToSchema)]
pub struct AvailabilityView {
    /// The service.
    pub service: String,
    /// From.
    pub from: DateTime<Utc>,
    /// To.
    pub to: DateTime<Utc>,
    /// The agreed availability.
    pub target_percent: Option<f64>,
    /// What was measured.
    #[serde(flatten)]
    pub measured: Availability,
    /// Whether the target was met.
    pub met: Option<bool>,
    /// The outages of the window.
    pub outages: Vec<OutageView>,
}

/// Availability of `service` in the window (for the API and reports).
///
/// # Errors
/// A query failing.
pub fn availability_of(
    conn: &mut AnyConnection,
    service: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<AvailabilityView, Problem> {
    let rows = store::outages(conn, service, from.naive_utc(), to.naive_utc())?;
    let outages: Vec<Outage> = rows
        .iter()
        .map(|r| Outage {
            start: utc(r.started_at),
            end: r.ended_at.map(utc),
            planned: r.planned,
        })
        .collect();
    let measured = domain::availability(from, to, &outages);
    let target = store::target(conn, service)?;
    Ok(AvailabilityView {
        service: service.to_owned(),
        from,
        to,
        target_percent: target,
        met: target.map(|t| measured.percent >= t),
        measured,
        outages: rows.into_iter().map(OutageView::from).collect(),
    })
}

/// `GET /v1/services/{id}/availability`: availability against target, with the outages.
#[utoipa::path(get, path = "/v1/services/{id}/availability", tag = "availability",
    params(("id" = String, Path, description = "Service id"), WindowQuery),
    responses(
        (status = 200, description = "Availability", body = AvailabilityView),
        (status = 404, description = "Not in the catalogue", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_availability(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    query: Query<WindowQuery>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let (from, to) = window(svc.clock.now(), query.0.from, query.0.to)?;
    let id = id.into_inner();
    let view = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            catalogue::find(conn, &id)?.ok_or_else(|| Problem::new(codes::SERVICE_NOT_FOUND))?;
            availability_of(conn, &id, from, to)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A continuity plan as written.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    /// The service.
    #[schema(pattern = "^[a-z0-9-]{1,50}$")]
    pub service: String,
    /// Name.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// How service continues.
    #[schema(min_length = 1, max_length = 20000)]
    pub strategy: String,
    /// Recovery time objective, minutes.
    pub rto_minutes: i32,
    /// Recovery point objective, minutes.
    pub rpo_minutes: i32,
    /// Test at least every this many days.
    pub test_interval_days: i32,
    /// Owner.
    #[schema(min_length = 1, max_length = 200)]
    pub owner: String,
}

/// A continuity plan with its record.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    /// The plan.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub plan: Value,
    /// Its tests and invocations, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub record: Vec<Value>,
    /// The last test.
    pub last_tested: Option<NaiveDate>,
    /// Not tested within its interval.
    pub test_overdue: bool,
}

fn plan_view(plan: PlanRow, events: Vec<PlanEventRow>, today: NaiveDate) -> PlanView {
    let last_tested = events
        .iter()
        .filter(|e| e.kind == "test")
        .map(|e| e.at.date())
        .max();
    PlanView {
        test_overdue: domain::test_overdue(last_tested, i64::from(plan.test_interval_days), today),
        last_tested,
        plan: serde_json::to_value(&plan).unwrap_or_default(),
        record: events
            .iter()
            .map(|e| serde_json::to_value(e).unwrap_or_default())
            .collect(),
    }
}

/// `POST /v1/continuity-plans`.
#[utoipa::path(post, path = "/v1/continuity-plans", tag = "continuity", request_body = PlanInput,
    responses(
        (status = 201, description = "Created", body = PlanView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn create_plan(
    who: Authenticated<ServiceLevelManager>,
    body: Json<PlanInput>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    slug("service", &input.service, &mut params);
    text("name", &input.name, 200, true, &mut params);
    text("strategy", &input.strategy, 20_000, true, &mut params);
    text("owner", &input.owner, 200, true, &mut params);
    for (name, value) in [
        ("rto_minutes", input.rto_minutes),
        ("rpo_minutes", input.rpo_minutes),
    ] {
        if !(0..=525_600).contains(&value) {
            params.push(InvalidParam::new(name, "must be 0 to 525600"));
        }
    }
    if !(1..=1095).contains(&input.test_interval_days) {
        params.push(InvalidParam::new("test_interval_days", "must be 1 to 1095"));
    }
    checked(params)?;
    let (actor, now) = (who.subject.clone(), svc.clock.now());
    let row = svc
        .db
        .transaction(move |conn| -> Result<PlanRow, Problem> {
            known_service(conn, "service", &input.service)?;
            let row = PlanRow {
                id: uuid::Uuid::now_v7().to_string(),
                service: input.service,
                name: input.name,
                strategy: input.strategy,
                rto_minutes: input.rto_minutes,
                rpo_minutes: input.rpo_minutes,
                test_interval_days: input.test_interval_days,
                owner: input.owner,
                updated_at: now.naive_utc(),
            };
            store::save_plan(conn, &row)?;
            audit(
                conn,
                &actor,
                "continuity_plan.created",
                "continuity_plan",
                &row.id,
                &row,
                now,
            )?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Created().json(plan_view(row, Vec::new(), now.date_naive())))
}

/// `GET /v1/continuity-plans` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PlanQuery {
    /// Of this service.
    pub service: Option<String>,
    /// Only those overdue for a test.
    pub overdue: Option<bool>,
}

/// `GET /v1/continuity-plans`: plans with their record; those not tested within their interval
/// are flagged.
#[utoipa::path(get, path = "/v1/continuity-plans", tag = "continuity", params(PlanQuery),
    responses((status = 200, description = "The plans", body = Vec<PlanView>)),
    security(("bearer" = [])))]
pub async fn list_plans(
    _who: Authenticated<AnyRole>,
    query: Query<PlanQuery>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let today = svc.clock.now().date_naive();
    let views = svc
        .db
        .run(move |conn| -> Result<Vec<PlanView>, Problem> {
            let mut views = Vec::new();
            for plan in store::plans(conn, query.service.as_deref())? {
                let events = store::plan_events(conn, &plan.id)?;
                let view = plan_view(plan, events, today);
                if query.overdue.is_none_or(|o| o == view.test_overdue) {
                    views.push(view);
                }
            }
            Ok(views)
        })
        .await?;
    Ok(HttpResponse::Ok().json(views))
}

/// A test or an invocation of a plan.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanEventInput {
    /// When.
    pub at: DateTime<Utc>,
    /// The scenario tested, or the disruption that invoked the plan.
    #[schema(min_length = 1, max_length = 5000)]
    pub scenario: String,
    /// Tests: `passed`, `partial` or `failed`; invocations: `recovered` or `ongoing`.
    pub result: String,
    /// Findings and actions.
    #[serde(default)]
    pub notes: String,
}

async fn plan_event(
    svc: &ServiceLevel,
    actor: String,
    plan_id: String,
    kind: &'static str,
    input: PlanEventInput,
) -> Result<PlanView, Problem> {
    let mut params = Vec::new();
    text("scenario", &input.scenario, 5000, true, &mut params);
    text("notes", &input.notes, 20_000, false, &mut params);
    let results: &[&str] = if kind == "test" {
        &["passed", "partial", "failed"]
    } else {
        &["recovered", "ongoing"]
    };
    if !results.contains(&input.result.as_str()) {
        params.push(InvalidParam::new(
            "result",
            format!("must be {}", results.join(", ")),
        ));
    }
    let now = svc.clock.now();
    if input.at > now + chrono::Duration::minutes(5) {
        params.push(InvalidParam::new("at", "must not be in the future"));
    }
    checked(params)?;
    svc.db
        .transaction(move |conn| -> Result<PlanView, Problem> {
            let plan = store::plan(conn, &plan_id)?
                .ok_or_else(|| Problem::new(codes::NOT_FOUND).detail("no such continuity plan"))?;
            let row = PlanEventRow {
                id: uuid::Uuid::now_v7().to_string(),
                plan_id: plan.id.clone(),
                kind: kind.to_owned(),
                at: input.at.naive_utc(),
                scenario: input.scenario,
                result: input.result,
                notes: input.notes,
                recorded_by: actor.clone(),
            };
            store::add_plan_event(conn, &row)?;
            audit(
                conn,
                &actor,
                &format!("continuity_plan.{kind}"),
                "continuity_plan",
                &plan.id,
                &row,
                now,
            )?;
            let events = store::plan_events(conn, &plan.id)?;
            Ok(plan_view(plan, events, now.date_naive()))
        })
        .await
}

/// `POST /v1/continuity-plans/{id}/tests`: a test of the plan, with its scenario and result.
#[utoipa::path(post, path = "/v1/continuity-plans/{id}/tests", tag = "continuity",
    params(("id" = String, Path, description = "Plan id")), request_body = PlanEventInput,
    responses(
        (status = 201, description = "Recorded", body = PlanView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such plan", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn test_plan(
    who: Authenticated<ServiceLevelManager>,
    id: web::Path<String>,
    body: Json<PlanEventInput>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let view = plan_event(&svc, who.subject.clone(), id.into_inner(), "test", body.0).await?;
    Ok(HttpResponse::Created().json(view))
}

/// `POST /v1/continuity-plans/{id}/invocations`: the plan was invoked.
#[utoipa::path(post, path = "/v1/continuity-plans/{id}/invocations", tag = "continuity",
    params(("id" = String, Path, description = "Plan id")), request_body = PlanEventInput,
    responses(
        (status = 201, description = "Recorded", body = PlanView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such plan", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn invoke_plan(
    who: Authenticated<ServiceLevelManager>,
    id: web::Path<String>,
    body: Json<PlanEventInput>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let view = plan_event(
        &svc,
        who.subject.clone(),
        id.into_inner(),
        "invocation",
        body.0,
    )
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// A capacity plan as written.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapacityInput {
    /// The service.
    #[schema(pattern = "^[a-z0-9-]{1,50}$")]
    pub service: String,
    /// Name.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Human resources required.
    #[serde(default)]
    pub human: String,
    /// Technical resources required.
    #[serde(default)]
    pub technical: String,
    /// Financial resources required.
    #[serde(default)]
    pub financial: String,
    /// Thresholds that raise `service_level.capacity.threshold_crossed`.
    #[serde(default)]
    pub thresholds: Vec<Threshold>,
    /// Owner.
    #[schema(min_length = 1, max_length = 200)]
    pub owner: String,
}

/// `POST /v1/capacity-plans`.
#[utoipa::path(post, path = "/v1/capacity-plans", tag = "capacity", request_body = CapacityInput,
    responses(
        (status = 201, description = "Created"),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn create_capacity(
    who: Authenticated<ServiceLevelManager>,
    body: Json<CapacityInput>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    slug("service", &input.service, &mut params);
    text("name", &input.name, 200, true, &mut params);
    text("owner", &input.owner, 200, true, &mut params);
    for (name, value) in [
        ("human", &input.human),
        ("technical", &input.technical),
        ("financial", &input.financial),
    ] {
        text(name, value, 10_000, false, &mut params);
    }
    for (i, t) in input.thresholds.iter().enumerate() {
        text(
            &format!("thresholds[{i}].metric"),
            &t.metric,
            200,
            true,
            &mut params,
        );
        if !(t.warning.is_finite() && t.critical.is_finite() && t.warning <= t.critical) {
            params.push(InvalidParam::new(
                format!("thresholds[{i}].critical"),
                "must be finite and at least the warning",
            ));
        }
    }
    checked(params)?;
    let (actor, now) = (who.subject.clone(), svc.clock.now());
    let row = svc
        .db
        .transaction(move |conn| -> Result<CapacityRow, Problem> {
            known_service(conn, "service", &input.service)?;
            let row = CapacityRow {
                id: uuid::Uuid::now_v7().to_string(),
                service: input.service,
                name: input.name,
                human: input.human,
                technical: input.technical,
                financial: input.financial,
                thresholds: serde_json::to_string(&input.thresholds).unwrap_or_default(),
                owner: input.owner,
                updated_at: now.naive_utc(),
            };
            store::save_capacity(conn, &row)?;
            audit(
                conn,
                &actor,
                "capacity_plan.created",
                "capacity_plan",
                &row.id,
                &row,
                now,
            )?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Created().json(row))
}

/// One measurement.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasurementInput {
    /// The service.
    pub service: String,
    /// The metric.
    pub metric: String,
    /// Its value.
    pub value: f64,
    /// When (default now).
    pub at: Option<DateTime<Utc>>,
}

/// Records measurements and raises the thresholds they reach; the levels.
fn record_measurements(
    conn: &mut AnyConnection,
    rows: &[MeasurementRow],
    now: DateTime<Utc>,
) -> Result<Vec<Value>, Problem> {
    store::add_measurements(conn, rows)?;
    let mut levels = Vec::new();
    for row in rows {
        for plan in store::capacity_plans(conn, Some(&row.service))? {
            let thresholds: Vec<Threshold> =
                serde_json::from_str(&plan.thresholds).unwrap_or_default();
            let level = domain::level(&thresholds, &row.metric, row.value);
            if level == "ok" {
                continue;
            }
            let threshold = thresholds
                .iter()
                .find(|t| t.metric == row.metric)
                .map_or(0.0, |t| {
                    if level == "critical" {
                        t.critical
                    } else {
                        t.warning
                    }
                });
            levels.push(json!({"service": row.service, "metric": row.metric, "value": row.value, "level": level, "plan": plan.id}));
            meridian_chassis::outbox::enqueue(
                conn,
                &meridian_chassis::bus::Envelope {
                    id: uuid::Uuid::now_v7(),
                    event_type: "service_level.capacity.threshold_crossed".to_owned(),
                    source: SOURCE.to_owned(),
                    subject: row.service.clone(),
                    time: now,
                    correlation_id: None,
                    causation_id: None,
                    actor: Some("system:capacity".to_owned()),
                    payload: meridian_proto::service_level::v1::CapacityThresholdCrossed {
                        service: row.service.clone(),
                        plan_id: plan.id.clone(),
                        metric: row.metric.clone(),
                        value: row.value,
                        level: level.to_owned(),
                        threshold,
                        at: Some(meridian_proto::common::v1::Timestamp {
                            unix_micros: row.at.and_utc().timestamp_micros(),
                        }),
                    }
                    .encode_to_vec(),
                },
            )?;
        }
    }
    Ok(levels)
}

/// `POST /v1/measurements`: utilisation measurements (JSON), checked against capacity
/// thresholds.
#[utoipa::path(post, path = "/v1/measurements", tag = "capacity", request_body = Vec<MeasurementInput>,
    responses(
        (status = 201, description = "Recorded, with the thresholds reached"),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn post_measurements(
    _who: Authenticated<ServiceLevelManager>,
    body: Json<Vec<MeasurementInput>>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let now = svc.clock.now();
    let mut params = Vec::new();
    if input.is_empty() || input.len() > 10_000 {
        params.push(InvalidParam::new(
            "body",
            "must hold 1 to 10000 measurements",
        ));
    }
    for (i, m) in input.iter().enumerate() {
        slug(&format!("[{i}].service"), &m.service, &mut params);
        text(&format!("[{i}].metric"), &m.metric, 200, true, &mut params);
        if !m.value.is_finite() {
            params.push(InvalidParam::new(
                format!("[{i}].value"),
                "must be a finite number",
            ));
        }
    }
    checked(params)?;
    let rows: Vec<MeasurementRow> = input
        .into_iter()
        .map(|m| MeasurementRow {
            id: uuid::Uuid::now_v7().to_string(),
            service: m.service,
            metric: m.metric,
            value: m.value,
            at: m.at.unwrap_or(now).naive_utc(),
            source: "rest".to_owned(),
        })
        .collect();
    let count = rows.len();
    let levels = svc
        .db
        .transaction(move |conn| -> Result<Vec<Value>, Problem> {
            for (i, row) in rows.iter().enumerate() {
                known_service(conn, &format!("[{i}].service"), &row.service)?;
            }
            record_measurements(conn, &rows, now)
        })
        .await?;
    svc.waker.wake();
    Ok(HttpResponse::Created().json(json!({"recorded": count, "thresholds": levels})))
}

/// `POST /v1/measurements/prometheus`: samples in the Prometheus text exposition format; each
/// names its service with a `service` label.
#[utoipa::path(post, path = "/v1/measurements/prometheus", tag = "capacity",
    request_body(content = String, content_type = "text/plain", description = "Prometheus text exposition"),
    responses(
        (status = 201, description = "Recorded, with the thresholds reached"),
        (status = 400, description = "A malformed line or a sample without a known service, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn post_prometheus(
    _who: Authenticated<ServiceLevelManager>,
    body: web::Bytes,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let text =
        std::str::from_utf8(&body).map_err(|_| Problem::field("body", "must be UTF-8 text"))?;
    let samples = domain::parse_prometheus(text).map_err(|e| Problem::field("body", e))?;
    if samples.is_empty() {
        return Err(Problem::field("body", "holds no samples"));
    }
    let now = svc.clock.now();
    let mut rows = Vec::new();
    for (i, sample) in samples.into_iter().enumerate() {
        let service = sample
            .labels
            .get("service")
            .cloned()
            .ok_or_else(|| Problem::field(format!("samples[{i}]"), "needs a service label"))?;
        rows.push(MeasurementRow {
            id: uuid::Uuid::now_v7().to_string(),
            service,
            metric: sample.metric,
            value: sample.value,
            at: sample.at.unwrap_or(now).naive_utc(),
            source: "prometheus".to_owned(),
        });
    }
    let count = rows.len();
    let levels = svc
        .db
        .transaction(move |conn| -> Result<Vec<Value>, Problem> {
            for (i, row) in rows.iter().enumerate() {
                known_service(conn, &format!("samples[{i}].service"), &row.service)?;
            }
            record_measurements(conn, &rows, now)
        })
        .await?;
    svc.waker.wake();
    Ok(HttpResponse::Created().json(json!({"recorded": count, "thresholds": levels})))
}

/// A demand forecast as written.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForecastInput {
    /// The service.
    #[schema(pattern = "^[a-z0-9-]{1,50}$")]
    pub service: String,
    /// `YYYY-MM` or `YYYY`.
    pub period: String,
    /// What is forecast, e.g. `incidents`, `users`, `mailboxes`.
    #[schema(min_length = 1, max_length = 200)]
    pub metric: String,
    /// The expected value.
    pub expected: f64,
    /// Notes.
    #[serde(default)]
    pub notes: String,
}

fn valid_period(period: &str) -> bool {
    let year_ok = |y: &str| y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit());
    match period.split_once('-') {
        None => year_ok(period),
        Some((y, m)) => {
            year_ok(y) && m.len() == 2 && m.parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
        }
    }
}

/// `PUT /v1/demand-forecasts`: the forecast of a service's demand for a period (one per metric).
#[utoipa::path(put, path = "/v1/demand-forecasts", tag = "capacity", request_body = ForecastInput,
    responses(
        (status = 200, description = "Saved"),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn put_forecast(
    who: Authenticated<ServiceLevelManager>,
    body: Json<ForecastInput>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    slug("service", &input.service, &mut params);
    if !valid_period(&input.period) {
        params.push(InvalidParam::new("period", "must be YYYY or YYYY-MM"));
    }
    text("metric", &input.metric, 200, true, &mut params);
    if !input.expected.is_finite() || input.expected < 0.0 {
        params.push(InvalidParam::new(
            "expected",
            "must be a finite number, not negative",
        ));
    }
    checked(params)?;
    let (actor, now) = (who.subject.clone(), svc.clock.now());
    let row = svc
        .db
        .transaction(move |conn| -> Result<ForecastRow, Problem> {
            known_service(conn, "service", &input.service)?;
            let row = store::save_forecast(
                conn,
                &ForecastRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    service: input.service,
                    period: input.period,
                    metric: input.metric,
                    expected: input.expected,
                    notes: input.notes,
                },
            )?;
            audit(
                conn,
                &actor,
                "forecast.saved",
                "forecast",
                &row.id,
                &row,
                now,
            )?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(row))
}

/// A budget as written.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetInput {
    /// Amount.
    pub amount: f64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
}

/// `PUT /v1/budgets/{service}/{period}`: a service's budget for a period.
#[utoipa::path(put, path = "/v1/budgets/{service}/{period}", tag = "budgeting",
    params(("service" = String, Path, description = "Service id"), ("period" = String, Path, description = "YYYY or YYYY-MM")),
    request_body = BudgetInput,
    responses(
        (status = 200, description = "Saved"),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn put_budget(
    who: Authenticated<ServiceLevelManager>,
    path: web::Path<(String, String)>,
    body: Json<BudgetInput>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let (service, period) = path.into_inner();
    let input = body.0;
    let mut params = Vec::new();
    if !valid_period(&period) {
        params.push(InvalidParam::new("period", "must be YYYY or YYYY-MM"));
    }
    if !input.amount.is_finite() || input.amount < 0.0 {
        params.push(InvalidParam::new(
            "amount",
            "must be a finite number, not negative",
        ));
    }
    if !(input.currency.len() == 3 && input.currency.bytes().all(|b| b.is_ascii_uppercase())) {
        params.push(InvalidParam::new(
            "currency",
            "must be an ISO 4217 code, e.g. EUR",
        ));
    }
    checked(params)?;
    let (actor, now) = (who.subject.clone(), svc.clock.now());
    let row = BudgetRow {
        service,
        period,
        amount: input.amount,
        currency: input.currency,
    };
    let saved = row.clone();
    svc.db
        .transaction(move |conn| -> Result<(), Problem> {
            known_service(conn, "service", &saved.service)?;
            store::set_budget(conn, &saved)?;
            audit(
                conn,
                &actor,
                "budget.set",
                "budget",
                &format!("{}/{}", saved.service, saved.period),
                &saved,
                now,
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(row))
}

/// A cost as written.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CostInput {
    /// The service.
    #[schema(pattern = "^[a-z0-9-]{1,50}$")]
    pub service: String,
    /// The budget period it counts against.
    pub period: String,
    /// Amount (in the budget's currency).
    pub amount: f64,
    /// e.g. `licences`, `staff`, `hosting`.
    #[schema(min_length = 1, max_length = 100)]
    pub category: String,
    /// What it was.
    #[serde(default)]
    pub description: String,
    /// When it was incurred.
    pub incurred_on: NaiveDate,
}

/// `POST /v1/costs`: a cost against a service's budget.
#[utoipa::path(post, path = "/v1/costs", tag = "budgeting", request_body = CostInput,
    responses(
        (status = 201, description = "Recorded"),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn post_cost(
    who: Authenticated<ServiceLevelManager>,
    body: Json<CostInput>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    slug("service", &input.service, &mut params);
    if !valid_period(&input.period) {
        params.push(InvalidParam::new("period", "must be YYYY or YYYY-MM"));
    }
    if !input.amount.is_finite() {
        params.push(InvalidParam::new("amount", "must be a finite number"));
    }
    text("category", &input.category, 100, true, &mut params);
    text("description", &input.description, 2000, false, &mut params);
    checked(params)?;
    let (actor, now) = (who.subject.clone(), svc.clock.now());
    let row = svc
        .db
        .transaction(move |conn| -> Result<CostRow, Problem> {
            known_service(conn, "service", &input.service)?;
            if store::budget(conn, &input.service, &input.period)?.is_none() {
                return Err(Problem::field(
                    "period",
                    format!("{} has no budget for {}", input.service, input.period),
                ));
            }
            let row = CostRow {
                id: uuid::Uuid::now_v7().to_string(),
                service: input.service,
                period: input.period,
                amount: input.amount,
                category: input.category,
                description: input.description,
                incurred_on: input.incurred_on,
                recorded_by: actor.clone(),
            };
            store::add_cost(conn, &row)?;
            audit(conn, &actor, "cost.recorded", "cost", &row.id, &row, now)?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Created().json(row))
}

/// A budget against its costs.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetReport {
    /// The service.
    pub service: String,
    /// The period.
    pub period: String,
    /// The budget.
    pub budget: f64,
    /// Its currency.
    pub currency: String,
    /// Costs recorded.
    pub spent: f64,
    /// What is left (negative: over budget).
    pub remaining: f64,
    /// Spent as a share of the budget.
    pub percent_used: f64,
    /// Spent by category.
    #[schema(value_type = Object)]
    pub by_category: std::collections::BTreeMap<String, f64>,
}

/// `GET /v1/budgets/{service}/{period}`: the budget against the costs recorded.
#[utoipa::path(get, path = "/v1/budgets/{service}/{period}", tag = "budgeting",
    params(("service" = String, Path, description = "Service id"), ("period" = String, Path, description = "YYYY or YYYY-MM")),
    responses(
        (status = 200, description = "The report", body = BudgetReport),
        (status = 404, description = "No such budget", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_budget(
    _who: Authenticated<AnyRole>,
    path: web::Path<(String, String)>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let (service, period) = path.into_inner();
    let report = svc
        .db
        .run(move |conn| -> Result<BudgetReport, Problem> {
            let budget = store::budget(conn, &service, &period)?.ok_or_else(|| {
                Problem::new(codes::NOT_FOUND).detail("no budget for that service and period")
            })?;
            let costs = store::costs(conn, &service, &period)?;
            let spent: f64 = costs.iter().map(|c| c.amount).sum();
            let mut by_category = std::collections::BTreeMap::new();
            for c in &costs {
                *by_category.entry(c.category.clone()).or_insert(0.0) += c.amount;
            }
            let round = |v: f64| (v * 100.0).round() / 100.0;
            Ok(BudgetReport {
                remaining: round(budget.amount - spent),
                percent_used: if budget.amount > 0.0 {
                    round(spent * 100.0 / budget.amount)
                } else {
                    0.0
                },
                spent: round(spent),
                service,
                period,
                budget: budget.amount,
                currency: budget.currency,
                by_category,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(report))
}
