//! `/v1/calendars` and `/v1/agreements`: business calendars, SLAs with customers and OLAs with
//! internal groups (8.3.3). Saving an agreement recomputes the clocks of the service's open
//! tickets under it, so a changed SLA moves their due times at once.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated};
use meridian_chassis::problem::{InvalidParam, Json, Query, codes};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ServiceLevelManager, checked, slug, text};
use crate::ServiceLevel;
use crate::store::agreements::{
    self as store, AgreementRow, CalendarRow, DayHours, TargetMinutes, minutes,
};
use crate::store::{catalogue, clocks, strings};

/// A calendar as written.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarInput {
    /// Name.
    pub name: String,
    /// IANA time zone, e.g. `Europe/Paris`.
    pub timezone: String,
    /// Monday to Sunday (seven entries), each `null` (closed) or `{start, end}` (`HH:MM`, end
    /// may be `24:00`).
    pub week: Vec<Option<DayHours>>,
    /// Days off, `YYYY-MM-DD`.
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
}

/// A calendar.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarView {
    /// Id.
    pub id: String,
    /// The calendar.
    #[serde(flatten)]
    pub calendar: CalendarInput,
}

impl From<CalendarRow> for CalendarView {
    fn from(r: CalendarRow) -> Self {
        Self {
            calendar: CalendarInput {
                week: serde_json::from_str(&r.week).unwrap_or_default(),
                holidays: serde_json::from_str(&r.holidays).unwrap_or_default(),
                name: r.name,
                timezone: r.timezone,
            },
            id: r.id,
        }
    }
}

/// `GET /v1/calendars`.
#[utoipa::path(get, path = "/v1/calendars", tag = "service-levels",
    responses((status = 200, description = "Every calendar", body = Vec<CalendarView>)),
    security(("bearer" = [])))]
pub async fn list_calendars(
    _who: Authenticated<AnyRole>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let rows = svc
        .db
        .run(|conn| -> Result<_, Problem> { Ok(store::calendars(conn)?) })
        .await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(CalendarView::from).collect::<Vec<_>>()))
}

/// `GET /v1/calendars/{id}`.
#[utoipa::path(get, path = "/v1/calendars/{id}", tag = "service-levels",
    params(("id" = String, Path, description = "Calendar id")),
    responses(
        (status = 200, description = "The calendar", body = CalendarView),
        (status = 404, description = "No such calendar", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_calendar(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let row = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(store::calendar(conn, &id)?) })
        .await?
        .ok_or_else(|| Problem::new(codes::CALENDAR_NOT_FOUND))?;
    Ok(HttpResponse::Ok().json(CalendarView::from(row)))
}

/// `PUT /v1/calendars/{id}`: creates or replaces a calendar.
#[utoipa::path(put, path = "/v1/calendars/{id}", tag = "service-levels",
    params(("id" = String, Path, description = "Calendar id")), request_body = CalendarInput,
    responses(
        (status = 200, description = "Saved", body = CalendarView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn put_calendar(
    who: Authenticated<ServiceLevelManager>,
    id: web::Path<String>,
    body: Json<CalendarInput>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let input = body.0;
    let mut params = Vec::new();
    slug("id", &id, &mut params);
    text("name", &input.name, 200, true, &mut params);
    if input.timezone.parse::<chrono_tz::Tz>().is_err() {
        params.push(InvalidParam::new(
            "timezone",
            "must be an IANA time zone, e.g. Europe/Paris",
        ));
    }
    if input.week.len() != 7 {
        params.push(InvalidParam::new(
            "week",
            "must have seven entries, Monday first",
        ));
    }
    for (i, day) in input.week.iter().enumerate() {
        if let Some(day) = day {
            match (minutes(&day.start), minutes(&day.end)) {
                (Some(s), Some(e)) if s < e => {}
                (Some(_), Some(_)) => params.push(InvalidParam::new(
                    format!("week[{i}].end"),
                    "must be after start",
                )),
                (None, _) => params.push(InvalidParam::new(
                    format!("week[{i}].start"),
                    "must be HH:MM",
                )),
                (_, None) => params.push(InvalidParam::new(
                    format!("week[{i}].end"),
                    "must be HH:MM or 24:00",
                )),
            }
        }
    }
    if input.week.iter().all(Option::is_none) && input.week.len() == 7 {
        params.push(InvalidParam::new(
            "week",
            "must have at least one working day",
        ));
    }
    if input.holidays.len() > 1000 {
        params.push(InvalidParam::new("holidays", "at most 1000"));
    }
    checked(params)?;
    let now = svc.clock.now();
    let actor = who.subject.clone();
    let row = CalendarRow {
        id: id.clone(),
        name: input.name.trim().to_owned(),
        timezone: input.timezone.clone(),
        week: serde_json::to_string(&input.week).unwrap_or_default(),
        holidays: serde_json::to_string(&input.holidays).unwrap_or_default(),
        updated_at: now.naive_utc(),
    };
    let saved = row.clone();
    svc.db
        .transaction(move |conn| -> Result<(), Problem> {
            let before = store::calendar(conn, &saved.id)?;
            store::save_calendar(conn, &saved)?;
            meridian_chassis::audit::record(
                conn,
                meridian_chassis::audit::Entry {
                    actor: &actor,
                    action: "calendar.saved",
                    entity_type: "calendar",
                    entity_id: &saved.id,
                    before: before.as_ref(),
                    after: Some(&saved),
                    at: now,
                },
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::Ok().json(CalendarView::from(row)))
}

/// An agreement as written.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgreementInput {
    /// `sla` (with a customer) or `ola` (with an internal group).
    pub kind: String,
    /// Name.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// The service (catalogue id).
    #[schema(pattern = "^[a-z0-9-]{1,50}$")]
    pub service: String,
    /// The customer (SLA).
    pub customer: Option<String>,
    /// The internal group (OLA): its clocks count while the ticket is with this group.
    pub group: Option<String>,
    /// The business calendar.
    #[schema(pattern = "^[a-z0-9-]{1,50}$")]
    pub calendar: String,
    /// Targets by priority ("1" … "5"), in minutes of working time.
    #[schema(value_type = Object)]
    pub targets: BTreeMap<String, TargetMinutes>,
    /// A warning at this share of a target (1–99; default 75).
    #[serde(default = "seventy_five")]
    pub warning_percent: i32,
    /// Pending reasons that pause the clocks (default: on the customer or a supplier).
    #[serde(default = "pause_reasons")]
    pub pause_reasons: Vec<String>,
    /// Workload limits agreed.
    #[serde(default)]
    pub workload_limit: String,
    /// Exceptions agreed.
    #[serde(default)]
    pub exceptions: String,
    /// In force (default true).
    #[serde(default = "yes")]
    pub active: bool,
    /// The tickets it times: `incident`, `request` (default both).
    #[serde(default = "both_kinds")]
    pub applies_to: Vec<String>,
}

fn both_kinds() -> Vec<String> {
    vec!["incident".to_owned(), "request".to_owned()]
}

fn seventy_five() -> i32 {
    75
}

fn pause_reasons() -> Vec<String> {
    vec!["awaiting_caller".to_owned(), "awaiting_supplier".to_owned()]
}

fn yes() -> bool {
    true
}

/// An agreement.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgreementView {
    /// Id.
    pub id: String,
    /// The agreement.
    #[serde(flatten)]
    pub agreement: AgreementInput,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<AgreementRow> for AgreementView {
    fn from(r: AgreementRow) -> Self {
        Self {
            agreement: AgreementInput {
                targets: r
                    .targets()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                pause_reasons: strings(&r.pause_reasons),
                kind: r.kind,
                name: r.name,
                service: r.service,
                customer: r.customer,
                group: r.group_name,
                calendar: r.calendar_id,
                warning_percent: r.warning_percent,
                workload_limit: r.workload_limit,
                exceptions: r.exceptions,
                active: r.active,
                applies_to: strings(&r.applies_to),
            },
            id: r.id,
            created_at: meridian_chassis::clock::utc(r.created_at),
            updated_at: meridian_chassis::clock::utc(r.updated_at),
        }
    }
}

fn check(input: &AgreementInput) -> Vec<InvalidParam> {
    let mut params = Vec::new();
    match input.kind.as_str() {
        "sla" => {}
        "ola" => {
            if input.group.as_deref().is_none_or(|g| g.trim().is_empty()) {
                params.push(InvalidParam::new(
                    "group",
                    "an OLA names the internal group it is agreed with",
                ));
            }
        }
        _ => params.push(InvalidParam::new("kind", "must be sla or ola")),
    }
    text("name", &input.name, 200, true, &mut params);
    if input.applies_to.is_empty() {
        params.push(InvalidParam::new(
            "applies_to",
            "name incident, request or both",
        ));
    }
    for (i, kind) in input.applies_to.iter().enumerate() {
        if !matches!(kind.as_str(), "incident" | "request") {
            params.push(InvalidParam::new(
                format!("applies_to[{i}]"),
                "must be incident or request",
            ));
        } else if input.applies_to[..i].contains(kind) {
            params.push(InvalidParam::new(
                format!("applies_to[{i}]"),
                "is named twice",
            ));
        }
    }
    slug("service", &input.service, &mut params);
    slug("calendar", &input.calendar, &mut params);
    if input.targets.is_empty() {
        params.push(InvalidParam::new(
            "targets",
            "must set targets for at least one priority",
        ));
    }
    for (priority, target) in &input.targets {
        if !matches!(priority.as_str(), "1" | "2" | "3" | "4" | "5") {
            params.push(InvalidParam::new(
                format!("targets.{priority}"),
                "priorities are 1 to 5",
            ));
        }
        for (name, value) in [
            ("response_minutes", target.response_minutes),
            ("resolution_minutes", target.resolution_minutes),
        ] {
            if value.is_some_and(|v| !(1..=525_600).contains(&v)) {
                params.push(InvalidParam::new(
                    format!("targets.{priority}.{name}"),
                    "must be 1 to 525600 (a year)",
                ));
            }
        }
        if target.response_minutes.is_none() && target.resolution_minutes.is_none() {
            params.push(InvalidParam::new(
                format!("targets.{priority}"),
                "must set a response or a resolution target",
            ));
        }
    }
    if !(1..=99).contains(&input.warning_percent) {
        params.push(InvalidParam::new("warning_percent", "must be 1 to 99"));
    }
    text(
        "workload_limit",
        &input.workload_limit,
        2000,
        false,
        &mut params,
    );
    text("exceptions", &input.exceptions, 5000, false, &mut params);
    params
}

async fn save(
    svc: &ServiceLevel,
    actor: String,
    id: String,
    input: AgreementInput,
    creating: bool,
) -> Result<AgreementRow, Problem> {
    checked(check(&input))?;
    let now = svc.clock.now();
    let row = svc
        .db
        .transaction(move |conn| -> Result<AgreementRow, Problem> {
            if catalogue::find(conn, &input.service)?.is_none() {
                return Err(Problem::field(
                    "service",
                    format!("{} is not in the catalogue", input.service),
                ));
            }
            if store::calendar(conn, &input.calendar)?.is_none() {
                return Err(Problem::field(
                    "calendar",
                    format!("no calendar {}", input.calendar),
                ));
            }
            let before = store::find(conn, &id)?;
            if !creating && before.is_none() {
                return Err(Problem::new(codes::AGREEMENT_NOT_FOUND));
            }
            let row = AgreementRow {
                id: id.clone(),
                kind: input.kind.clone(),
                name: input.name.trim().to_owned(),
                service: input.service.clone(),
                customer: input.customer.clone(),
                group_name: input.group.clone(),
                calendar_id: input.calendar.clone(),
                targets: serde_json::to_string(&input.targets).unwrap_or_default(),
                warning_percent: input.warning_percent,
                pause_reasons: serde_json::to_string(&input.pause_reasons).unwrap_or_default(),
                workload_limit: input.workload_limit.clone(),
                exceptions: input.exceptions.clone(),
                active: input.active,
                created_at: before.as_ref().map_or(now.naive_utc(), |b| b.created_at),
                updated_at: now.naive_utc(),
                applies_to: serde_json::to_string(&input.applies_to).unwrap_or_default(),
            };
            store::save(conn, &row)?;
            meridian_chassis::audit::record(
                conn,
                meridian_chassis::audit::Entry {
                    actor: &actor,
                    action: if before.is_some() {
                        "agreement.updated"
                    } else {
                        "agreement.created"
                    },
                    entity_type: "agreement",
                    entity_id: &row.id,
                    before: before.as_ref(),
                    after: Some(&row),
                    at: now,
                },
            )?;
            // The service's open tickets are measured under the agreement as it is now.
            for ticket in clocks::open_tickets(conn, &row.service)? {
                clocks::recompute(conn, &ticket, now)?;
            }
            Ok(row)
        })
        .await?;
    svc.waker.wake();
    svc.checks.notify_one();
    Ok(row)
}

/// `GET /v1/agreements` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AgreementQuery {
    /// Only those of this service.
    pub service: Option<String>,
}

/// `GET /v1/agreements`.
#[utoipa::path(get, path = "/v1/agreements", tag = "service-levels", params(AgreementQuery),
    responses((status = 200, description = "The agreements", body = Vec<AgreementView>)),
    security(("bearer" = [])))]
pub async fn list_agreements(
    _who: Authenticated<AnyRole>,
    query: Query<AgreementQuery>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let service = query.0.service;
    let rows = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(store::list(conn, service.as_deref())?) })
        .await?;
    Ok(HttpResponse::Ok().json(
        rows.into_iter()
            .map(AgreementView::from)
            .collect::<Vec<_>>(),
    ))
}

/// `POST /v1/agreements`: a new SLA or OLA.
#[utoipa::path(post, path = "/v1/agreements", tag = "service-levels", request_body = AgreementInput,
    responses(
        (status = 201, description = "Created", body = AgreementView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 403, description = "Not a service level manager", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn create_agreement(
    who: Authenticated<ServiceLevelManager>,
    body: Json<AgreementInput>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let row = save(
        &svc,
        who.subject.clone(),
        uuid::Uuid::now_v7().to_string(),
        body.0,
        true,
    )
    .await?;
    Ok(HttpResponse::Created().json(AgreementView::from(row)))
}

/// `GET /v1/agreements/{id}`.
#[utoipa::path(get, path = "/v1/agreements/{id}", tag = "service-levels",
    params(("id" = String, Path, description = "Agreement id")),
    responses(
        (status = 200, description = "The agreement", body = AgreementView),
        (status = 404, description = "No such agreement", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_agreement(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let row = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(store::find(conn, &id)?) })
        .await?
        .ok_or_else(|| Problem::new(codes::AGREEMENT_NOT_FOUND))?;
    Ok(HttpResponse::Ok().json(AgreementView::from(row)))
}

/// `PUT /v1/agreements/{id}`: changes an agreement; the open tickets' clocks follow at once.
#[utoipa::path(put, path = "/v1/agreements/{id}", tag = "service-levels",
    params(("id" = String, Path, description = "Agreement id")), request_body = AgreementInput,
    responses(
        (status = 200, description = "Saved", body = AgreementView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such agreement", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn put_agreement(
    who: Authenticated<ServiceLevelManager>,
    id: web::Path<String>,
    body: Json<AgreementInput>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let row = save(&svc, who.subject.clone(), id.into_inner(), body.0, false).await?;
    Ok(HttpResponse::Ok().json(AgreementView::from(row)))
}
