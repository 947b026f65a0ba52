//! `/v1/changes`: change records and their lifecycle (ISO/IEC 20000-1 8.5.1). Approval is the
//! workflow engine's: submitting publishes `control.change.submitted`, and the decision comes
//! back over the bus (see `events`).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated, Role};
use meridian_chassis::clock::utc;
use meridian_chassis::problem::{InvalidParam, Json, Query, codes};
use meridian_chassis::telemetry::trace_id_of as correlation;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::Control;
use crate::config::{ControlConfig, FreezeWindow};
use crate::domain::change::{Category, ChangeAction, ChangeState};
use crate::domain::ci::Criticality;
use crate::domain::risk::{self, Risk};
use crate::store::changes::{self as store, ChangeRow};
use crate::store::cis::{self as cis, Context};
use crate::store::impact::{self, Direction};

/// Raises and works changes.
#[derive(Debug)]
pub struct ChangeRequester;
impl Role for ChangeRequester {
    const ANY_OF: &'static [&'static str] = &["agent", "change-manager", "configuration-manager"];
}

const SHORT: usize = 200;
const LONG: usize = 20_000;

fn not_found() -> Problem {
    Problem::new(codes::CHANGE_NOT_FOUND)
}

fn state_of(row: &ChangeRow) -> ChangeState {
    ChangeState::parse(&row.state).unwrap_or(ChangeState::Draft)
}

/// The 409 of an action the state does not allow, with the actions it does.
pub fn not_allowed(state: ChangeState, action: ChangeAction) -> Problem {
    Problem::new(codes::CHANGE_TRANSITION_NOT_ALLOWED)
        .detail(format!(
            "a {} change cannot {}",
            state.as_str(),
            action.as_str()
        ))
        .allowed_actions(
            state
                .allowed()
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect(),
        )
}

/// A change as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeView {
    /// Id.
    pub id: String,
    /// `CHG0001000` onwards.
    pub number: String,
    /// What.
    pub title: String,
    /// Why.
    pub reason: String,
    /// How it is approved.
    pub category: Category,
    /// A standard change's template.
    pub template: Option<String>,
    /// Who asked for it.
    pub requester: String,
    /// The affected CIs.
    pub configuration_items: Vec<String>,
    /// The planned window.
    pub window_start: Option<DateTime<Utc>>,
    /// Its end.
    pub window_end: Option<DateTime<Utc>>,
    /// How.
    pub implementation_plan: String,
    /// How it is tested.
    pub test_plan: String,
    /// How it is undone.
    pub backout_plan: String,
    /// Where it stands.
    pub state: ChangeState,
    /// The actions its state allows.
    pub allowed_actions: Vec<ChangeAction>,
    /// The decision: outcome, the workflow that took it, who decided, the votes.
    #[schema(value_type = Option<Object>)]
    pub decision: Option<Value>,
    /// The post-implementation review.
    #[schema(value_type = Option<Object>)]
    pub review: Option<Value>,
    /// The risk, scored on submit and explained factor by factor.
    #[schema(value_type = Option<Object>)]
    pub risk: Option<Value>,
    /// Service design and transition (8.5.2): `required`, `reasons`, `plan`,
    /// `acceptance_criteria`, `acceptance`.
    #[schema(value_type = Option<Object>)]
    pub design: Option<Value>,
    /// Where it came from when another record raised it (`problem:PRB0001000`).
    pub origin: Option<String>,
    /// Active changes whose window overlaps this one's on the same CIs or on CIs in their
    /// impact paths (on `GET /v1/changes/{id}` and the calendar).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflicts: Option<Vec<Conflict>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Increases with every change (the ETag).
    pub version: i64,
}

impl From<&ChangeRow> for ChangeView {
    fn from(row: &ChangeRow) -> Self {
        let state = state_of(row);
        Self {
            id: row.id.clone(),
            number: row.number.clone(),
            title: row.title.clone(),
            reason: row.reason.clone(),
            category: Category::parse(&row.category).unwrap_or(Category::Normal),
            template: row.template.clone(),
            requester: row.requester.clone(),
            configuration_items: serde_json::from_str(&row.configuration_items).unwrap_or_default(),
            window_start: row.window_start.map(utc),
            window_end: row.window_end.map(utc),
            implementation_plan: row.implementation_plan.clone(),
            test_plan: row.test_plan.clone(),
            backout_plan: row.backout_plan.clone(),
            state,
            allowed_actions: state.allowed().to_vec(),
            decision: row
                .decision
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok()),
            review: row
                .review
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok()),
            risk: row
                .risk
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok()),
            design: row
                .design
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok()),
            origin: row.origin.clone(),
            conflicts: None,
            created_at: utc(row.created_at),
            updated_at: utc(row.updated_at),
            version: row.version,
        }
    }
}

fn respond(status: actix_web::http::StatusCode, row: &ChangeRow) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((
            header::ETAG,
            HeaderValue::from_str(&format!("\"{}\"", row.version))
                .unwrap_or(HeaderValue::from_static("\"0\"")),
        ))
        .json(ChangeView::from(row))
}

/// The body of `POST /v1/changes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChange {
    /// What.
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// Why.
    #[schema(min_length = 1, max_length = 20000)]
    pub reason: String,
    /// How it is approved.
    pub category: Category,
    /// The pre-approved template (standard changes only, and required for them).
    pub template: Option<String>,
    /// The affected CIs (ids of the CMDB).
    #[serde(default)]
    pub configuration_items: Vec<String>,
    /// The planned window.
    pub window_start: Option<DateTime<Utc>>,
    /// Its end (after its start).
    pub window_end: Option<DateTime<Utc>>,
    /// How.
    #[serde(default)]
    pub implementation_plan: String,
    /// How it is tested.
    #[serde(default)]
    pub test_plan: String,
    /// How it is undone.
    #[serde(default)]
    pub backout_plan: String,
    /// It brings a new service (service design and transition applies).
    #[serde(default)]
    pub new_service: bool,
    /// It retires a service (service design and transition applies).
    #[serde(default)]
    pub retires_service: bool,
}

fn text(params: &mut Vec<InvalidParam>, name: &str, value: &str, max: usize, required: bool) {
    if (required && value.trim().is_empty()) || value.chars().count() > max {
        params.push(InvalidParam::new(
            name,
            if required {
                format!("must be 1 to {max} characters")
            } else {
                format!("must be at most {max} characters")
            },
        ));
    }
}

/// `POST /v1/changes`: records a draft change; the caller is its requester.
#[utoipa::path(post, path = "/v1/changes", tag = "changes", request_body = CreateChange,
    responses(
        (status = 201, description = "Recorded as a draft", body = ChangeView, headers(("ETag" = String), ("Location" = String))),
        (status = 400, description = "Bad fields, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn create_change(
    who: Authenticated<ChangeRequester>,
    req: HttpRequest,
    body: Json<CreateChange>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let body = body.0;
    let mut params = Vec::new();
    text(&mut params, "title", &body.title, SHORT, true);
    text(&mut params, "reason", &body.reason, LONG, true);
    for (name, plan) in [
        ("implementation_plan", &body.implementation_plan),
        ("test_plan", &body.test_plan),
        ("backout_plan", &body.backout_plan),
    ] {
        text(&mut params, name, plan, LONG, false);
    }
    if body.category == Category::Standard
        && let Some(template) = &body.template
        && !svc.config.standard_templates.contains_key(template)
    {
        let known: Vec<&str> = svc
            .config
            .standard_templates
            .keys()
            .map(String::as_str)
            .collect();
        params.push(InvalidParam::new(
            "template",
            format!("is not a pre-approved template ({})", known.join(", ")),
        ));
    }
    match (body.category, &body.template) {
        (Category::Standard, None) => params.push(InvalidParam::new(
            "template",
            "a standard change names its template",
        )),
        (Category::Normal | Category::Emergency, Some(_)) => {
            params.push(InvalidParam::new(
                "template",
                "only standard changes have a template",
            ));
        }
        _ => {}
    }
    if let (Some(start), Some(end)) = (body.window_start, body.window_end)
        && end <= start
    {
        params.push(InvalidParam::new(
            "window_end",
            "must be after window_start",
        ));
    }
    if body.window_start.is_some() != body.window_end.is_some() {
        params.push(InvalidParam::new(
            "window_end",
            "give both ends of the window, or neither",
        ));
    }
    if !params.is_empty() {
        return Err(Problem::invalid(codes::INVALID_BODY, params));
    }
    let mut body = body;
    if body.implementation_plan.trim().is_empty()
        && let Some(template) = body
            .template
            .as_ref()
            .and_then(|t| svc.config.standard_templates.get(t))
    {
        body.implementation_plan
            .clone_from(&template.implementation_plan);
    }
    let now = meridian_chassis::clock::to_micros(svc.clock.now());
    let actor = who.subject.clone();
    let correlation = correlation(&req);
    let row = svc
        .db
        .transaction(move |conn| -> Result<ChangeRow, Problem> {
            for (i, ci) in body.configuration_items.iter().enumerate() {
                if cis::find(conn, ci)?.is_none() {
                    return Err(Problem::field(
                        format!("configuration_items[{i}]"),
                        "no CI has this id",
                    ));
                }
            }
            let row = ChangeRow {
                id: Uuid::now_v7().to_string(),
                number: store::next_number(conn)?,
                title: body.title.trim().to_owned(),
                reason: body.reason,
                category: body.category.as_str().to_owned(),
                template: body.template,
                requester: actor.clone(),
                configuration_items: Value::from(body.configuration_items).to_string(),
                window_start: body
                    .window_start
                    .map(|t| meridian_chassis::clock::to_micros(t).naive_utc()),
                window_end: body
                    .window_end
                    .map(|t| meridian_chassis::clock::to_micros(t).naive_utc()),
                implementation_plan: body.implementation_plan,
                test_plan: body.test_plan,
                backout_plan: body.backout_plan,
                state: ChangeState::Draft.as_str().to_owned(),
                decision: None,
                review: None,
                risk: None,
                design: Some(
                    design_reasons(body.new_service, body.retires_service, false).to_string(),
                ),
                created_at: now.naive_utc(),
                updated_at: now.naive_utc(),
                version: 1,
                origin: None,
            };
            let ctx = Context {
                actor: &actor,
                now,
                correlation_id: correlation.as_deref(),
            };
            store::insert(conn, &row, ctx)?;
            Ok(row)
        })
        .await?;
    let mut response = respond(actix_web::http::StatusCode::CREATED, &row);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/changes/{}", row.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /v1/changes` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChangeQuery {
    /// In this state.
    pub state: Option<ChangeState>,
    /// The cursor: the last id of the previous page.
    pub after: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// A page of changes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangePage {
    /// Newest first.
    pub items: Vec<ChangeView>,
    /// The cursor of the next page, if there is one.
    pub next: Option<String>,
}

/// `GET /v1/changes`: changes, newest first.
#[utoipa::path(get, path = "/v1/changes", tag = "changes", params(ChangeQuery),
    responses((status = 200, description = "A page of changes", body = ChangePage)),
    security(("bearer" = [])))]
pub async fn list_changes(
    _who: Authenticated<AnyRole>,
    query: Query<ChangeQuery>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Problem::field("limit", "must be 1 to 200"));
    }
    let page = svc
        .db
        .run(move |conn| -> Result<ChangePage, Problem> {
            let state = query.state.map(ChangeState::as_str);
            let mut rows = store::list(conn, state, query.after.as_deref(), limit + 1)?;
            let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            let next = more.then(|| rows.last().map(|r| r.id.clone())).flatten();
            Ok(ChangePage {
                items: rows.iter().map(ChangeView::from).collect(),
                next,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /v1/changes/{id}`: one change with its decision and review.
#[utoipa::path(get, path = "/v1/changes/{id}", tag = "changes", params(("id" = String, Path)),
    responses(
        (status = 200, description = "The change", body = ChangeView, headers(("ETag" = String))),
        (status = 404, description = "No such change", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_change(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let (row, found) = svc
        .db
        .run(move |conn| -> Result<(ChangeRow, Vec<Conflict>), Problem> {
            let row = store::find(conn, &id)?.ok_or_else(not_found)?;
            let found = conflicts(conn, &row)?;
            Ok((row, found))
        })
        .await?;
    let mut view = ChangeView::from(&row);
    view.conflicts = Some(found);
    Ok(HttpResponse::Ok()
        .insert_header((
            header::ETAG,
            HeaderValue::from_str(&format!("\"{}\"", row.version))
                .unwrap_or(HeaderValue::from_static("\"0\"")),
        ))
        .json(view))
}

/// A change that collides with another.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Conflict {
    /// The other change.
    pub change: String,
    /// Its number.
    pub number: String,
    /// Its state.
    pub state: String,
    /// Why: the CIs both touch, or that lie in each other's impact paths.
    pub reason: String,
}

/// The CIs of `cis` and those within two relations of them, both ways.
fn neighbourhood(
    conn: &mut meridian_chassis::db::AnyConnection,
    cis: &[String],
) -> diesel::QueryResult<Vec<String>> {
    let mut all: Vec<String> = cis.to_vec();
    for ci in cis {
        for direction in [Direction::Up, Direction::Down] {
            all.extend(
                impact::analyse(conn, ci, direction, 2)?
                    .into_iter()
                    .map(|r| r.ci.id),
            );
        }
    }
    all.sort();
    all.dedup();
    Ok(all)
}

/// Active changes whose window overlaps `row`'s and whose CIs meet its CIs or their impact
/// paths.
fn conflicts(
    conn: &mut meridian_chassis::db::AnyConnection,
    row: &ChangeRow,
) -> diesel::QueryResult<Vec<Conflict>> {
    let (Some(start), Some(end)) = (row.window_start, row.window_end) else {
        return Ok(Vec::new());
    };
    let own = store::cis_of(row);
    if own.is_empty() {
        return Ok(Vec::new());
    }
    let near = neighbourhood(conn, &own)?;
    let mut found = Vec::new();
    for other in store::overlapping(conn, start, end, &store::ACTIVE)? {
        if other.id == row.id {
            continue;
        }
        let theirs = store::cis_of(&other);
        let same: Vec<&str> = theirs
            .iter()
            .filter(|ci| own.contains(ci))
            .map(String::as_str)
            .collect();
        let reason = if !same.is_empty() {
            format!("both change {}", same.join(", "))
        } else if let Some(ci) = theirs.iter().find(|ci| near.contains(ci)) {
            format!("{ci} is in the impact path of this change's CIs")
        } else {
            continue;
        };
        found.push(Conflict {
            change: other.id.clone(),
            number: other.number.clone(),
            state: other.state.clone(),
            reason,
        });
    }
    Ok(found)
}

/// Whether `[start, end)` touches business hours (hour by hour, the first week at most).
fn in_business_hours(config: &ControlConfig, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
    use chrono::{Datelike, Timelike, Weekday};
    let hours = &config.business_hours;
    let mut at = start;
    let last = end.min(start + chrono::Duration::days(7));
    while at < last {
        let weekday_ok =
            !hours.weekdays_only || !matches!(at.weekday(), Weekday::Sat | Weekday::Sun);
        if weekday_ok && (hours.start_hour..hours.end_hour).contains(&at.hour()) {
            return true;
        }
        at += chrono::Duration::hours(1);
    }
    false
}

/// Scores `row`'s risk from the CMDB and the change history.
fn assess(
    conn: &mut meridian_chassis::db::AnyConnection,
    config: &ControlConfig,
    row: &ChangeRow,
) -> diesel::QueryResult<Risk> {
    let own = store::cis_of(row);
    let rank = |c: Option<Criticality>| {
        c.map_or(0, |c| {
            Criticality::ALL.iter().position(|x| *x == c).unwrap_or(0) + 1
        })
    };
    let mut criticality: Option<Criticality> = None;
    let mut services = 0;
    let mut affected: Vec<(String, String)> = Vec::new();
    for id in &own {
        if let Some(ci) = cis::find(conn, id)? {
            let level = Criticality::parse(&ci.criticality);
            if rank(level) > rank(criticality) {
                criticality = level;
            }
            if ci.ci_type == "service" {
                services += 1;
            }
        }
        for reached in impact::analyse(conn, id, Direction::Up, 3)? {
            if !own.contains(&reached.ci.id) {
                affected.push((reached.ci.id, reached.ci.ci_type));
            }
        }
    }
    affected.sort();
    affected.dedup();
    services += affected.iter().filter(|(_, t)| t == "service").count();
    let window = row
        .window_start
        .zip(row.window_end)
        .is_some_and(|(start, end)| in_business_hours(config, utc(start), utc(end)));
    Ok(risk::assess(&risk::Inputs {
        criticality,
        affected: affected.len(),
        services,
        past_failures: store::failures_on(conn, &own, &row.id)?,
        in_business_hours: window,
    }))
}

/// The freeze windows `[start, end)` overlaps.
fn freezes(config: &ControlConfig, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<FreezeWindow> {
    config
        .freeze_windows
        .iter()
        .filter(|f| f.start < end && f.end > start)
        .cloned()
        .collect()
}

/// The optional body of `POST /v1/changes/{id}/submit`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitChange {
    /// Why the change must happen inside a freeze window (kept on the record).
    pub freeze_override: Option<String>,
}

/// `POST /v1/changes/{id}/submit`: scores the risk, checks the freeze windows, and asks for
/// approval: publishes `control.change.submitted`, which starts the category's approval
/// workflow.
#[utoipa::path(post, path = "/v1/changes/{id}/submit", tag = "changes", params(("id" = String, Path)),
    request_body(content = Option<SubmitChange>, description = "Optional"),
    responses(
        (status = 200, description = "Submitted, with its risk", body = ChangeView),
        (status = 404, description = "No such change", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Not a draft, or in a freeze window without an override", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn submit_change(
    who: Authenticated<ChangeRequester>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let body: SubmitChange = if body.is_empty() {
        SubmitChange::default()
    } else {
        meridian_chassis::problem::from_json(&body)?
    };
    if let Some(reason) = &body.freeze_override
        && (reason.trim().is_empty() || reason.chars().count() > LONG)
    {
        return Err(Problem::field(
            "freeze_override",
            format!("must be 1 to {LONG} characters"),
        ));
    }
    let config = svc.config.clone();
    act(&svc, &req, id.into_inner(), who.subject.clone(), ChangeAction::Submit, move |conn, row| {
        if let (Some(start), Some(end)) = (row.window_start, row.window_end)
            && row.category != Category::Emergency.as_str()
            && let Some(freeze) = freezes(&config, utc(start), utc(end)).first()
        {
            let Some(reason) = &body.freeze_override else {
                return Err(Problem::new(codes::CHANGE_IN_FREEZE_WINDOW).detail(format!(
                    "the window overlaps the freeze `{}` ({} to {}); submit with a freeze_override to go ahead",
                    freeze.name, freeze.start, freeze.end
                )));
            };
            let record = serde_json::json!({"freeze_override": {"freeze": freeze.name, "justification": reason}});
            row.decision = Some(record.to_string());
        }
        let risk = assess(conn, &config, row)?;
        row.risk = Some(serde_json::to_string(&risk).unwrap_or_default());
        // A change to a critical service goes through design and transition too.
        let mut critical = false;
        for ci in store::cis_of(row) {
            if let Some(found) = cis::find(conn, &ci)? {
                critical |= found.ci_type == "service" && found.criticality == "critical";
            }
        }
        if critical {
            let mut design = design_of(row);
            let mut reasons: Vec<Value> = design.get("reasons").and_then(Value::as_array).cloned().unwrap_or_default();
            reasons.push(Value::String("it touches a critical service".to_owned()));
            design.insert("reasons".to_owned(), Value::Array(reasons));
            design.insert("required".to_owned(), Value::Bool(true));
            row.design = Some(Value::Object(design).to_string());
        }
        Ok(())
    })
    .await
}

/// `GET /v1/changes/calendar` range.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CalendarQuery {
    /// From (RFC 3339).
    pub from: DateTime<Utc>,
    /// To (RFC 3339), after `from`, at most 366 days later.
    pub to: DateTime<Utc>,
}

/// The change calendar.
#[derive(Debug, Serialize, ToSchema)]
pub struct Calendar {
    /// Active changes whose window overlaps the range, by start, each with its conflicts.
    pub changes: Vec<ChangeView>,
    /// Freeze windows overlapping the range.
    pub freeze_windows: Vec<FreezeWindow>,
}

/// `GET /v1/changes/calendar?from&to`: planned changes, their conflicts, and the freezes.
#[utoipa::path(get, path = "/v1/changes/calendar", tag = "changes", params(CalendarQuery),
    responses(
        (status = 200, description = "The calendar", body = Calendar),
        (status = 400, description = "A bad range", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn calendar(
    _who: Authenticated<AnyRole>,
    query: Query<CalendarQuery>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let CalendarQuery { from, to } = query.0;
    if to <= from || to - from > chrono::Duration::days(366) {
        return Err(Problem::field(
            "to",
            "must be after from, at most 366 days later",
        ));
    }
    let freeze_windows = freezes(&svc.config, from, to);
    let changes = svc
        .db
        .run(move |conn| -> Result<Vec<ChangeView>, Problem> {
            let rows = store::overlapping(conn, from.naive_utc(), to.naive_utc(), &store::ACTIVE)?;
            rows.iter()
                .map(|row| {
                    let mut view = ChangeView::from(row);
                    view.conflicts = Some(conflicts(conn, row)?);
                    Ok(view)
                })
                .collect()
        })
        .await?;
    Ok(HttpResponse::Ok().json(Calendar {
        changes,
        freeze_windows,
    }))
}

/// Runs one lifecycle action on a change for the caller.
async fn act(
    svc: &Control,
    req: &HttpRequest,
    id: String,
    actor: String,
    action: ChangeAction,
    apply: impl FnOnce(&mut meridian_chassis::db::AnyConnection, &mut ChangeRow) -> Result<(), Problem>
    + Send
    + 'static,
) -> Result<HttpResponse, Problem> {
    let now = meridian_chassis::clock::to_micros(svc.clock.now());
    let correlation = correlation(req);
    let cab = svc.config.cab_members.clone();
    let emergency_cab = svc.config.emergency_cab.clone();
    let row = svc
        .db
        .transaction(move |conn| -> Result<ChangeRow, Problem> {
            let before = store::load_for_update(conn, &id)?.ok_or_else(not_found)?;
            let state = state_of(&before);
            let next = state
                .after(action)
                .ok_or_else(|| not_allowed(state, action))?;
            let mut after = before.clone();
            after.state = next.as_str().to_owned();
            apply(conn, &mut after)?;
            after.version += 1;
            after.updated_at = now.naive_utc();
            let ctx = Context {
                actor: &actor,
                now,
                correlation_id: correlation.as_deref(),
            };
            let extra = if action == ChangeAction::Submit {
                let members = match Category::parse(&after.category) {
                    Some(Category::Emergency) => emergency_cab,
                    Some(Category::Normal) => cab,
                    _ => Vec::new(),
                };
                vec![store::submitted(&after, &members, ctx)]
            } else {
                Vec::new()
            };
            store::save(conn, &before, &after, action.as_str(), &extra, ctx)?;
            Ok(after)
        })
        .await?;
    svc.waker.wake();
    Ok(respond(actix_web::http::StatusCode::OK, &row))
}

macro_rules! simple_action {
    ($(#[$meta:meta])* $name:ident, $action:expr, $path:literal) => {
        $(#[$meta])*
        #[utoipa::path(post, path = $path, tag = "changes", params(("id" = String, Path)),
            responses(
                (status = 200, description = "Done", body = ChangeView),
                (status = 404, description = "No such change", body = meridian_chassis::problem::ProblemBody),
                (status = 409, description = "The state does not allow it (allowed-actions lists what does)", body = meridian_chassis::problem::ProblemBody),
            ),
            security(("bearer" = [])))]
        pub async fn $name(
            who: Authenticated<ChangeRequester>,
            req: HttpRequest,
            id: web::Path<String>,
            svc: web::Data<Control>,
        ) -> Result<HttpResponse, Problem> {
            act(&svc, &req, id.into_inner(), who.subject.clone(), $action, |_, _| Ok(())).await
        }
    };
}

simple_action!(
    /// `POST /v1/changes/{id}/close`: closes a reviewed change.
    close_change, ChangeAction::Close, "/v1/changes/{id}/close"
);
simple_action!(
    /// `POST /v1/changes/{id}/cancel`: withdraws an open change.
    cancel_change, ChangeAction::Cancel, "/v1/changes/{id}/cancel"
);

/// The body of `POST /v1/changes/{id}/complete`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteChange {
    /// `true`: implemented as planned; `false`: failed and backed out.
    pub succeeded: bool,
    /// What happened.
    #[schema(min_length = 1, max_length = 20000)]
    pub notes: String,
}

/// `POST /v1/changes/{id}/complete`: the implementation's result.
#[utoipa::path(post, path = "/v1/changes/{id}/complete", tag = "changes", params(("id" = String, Path)), request_body = CompleteChange,
    responses(
        (status = 200, description = "Implemented or failed", body = ChangeView),
        (status = 409, description = "Not implementing", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn complete_change(
    who: Authenticated<ChangeRequester>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<CompleteChange>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let body = body.0;
    super::required("notes", &body.notes, LONG)?;
    act(
        &svc,
        &req,
        id.into_inner(),
        who.subject.clone(),
        ChangeAction::Complete,
        move |_, row| {
            if !body.succeeded {
                row.state = ChangeState::Failed.as_str().to_owned();
            }
            add_to_review(
                row,
                "implementation",
                serde_json::json!({"succeeded": body.succeeded, "notes": body.notes}),
            );
            Ok(())
        },
    )
    .await
}

/// The body of `POST /v1/changes/{id}/review`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewChange {
    /// Whether the change met its objectives.
    pub successful: bool,
    /// Incident numbers it caused.
    #[serde(default)]
    pub incidents_caused: Vec<String>,
    /// What was learnt.
    #[schema(min_length = 1, max_length = 20000)]
    pub lessons: String,
}

/// `POST /v1/changes/{id}/review`: the post-implementation review.
#[utoipa::path(post, path = "/v1/changes/{id}/review", tag = "changes", params(("id" = String, Path)), request_body = ReviewChange,
    responses(
        (status = 200, description = "Reviewed", body = ChangeView),
        (status = 409, description = "Not implemented or failed", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn review_change(
    who: Authenticated<ChangeRequester>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<ReviewChange>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let body = body.0;
    super::required("lessons", &body.lessons, LONG)?;
    let reviewer = who.subject.clone();
    act(&svc, &req, id.into_inner(), who.subject.clone(), ChangeAction::Review, move |_, row| {
        add_to_review(row, "post_implementation", serde_json::json!({"successful": body.successful, "incidents_caused": body.incidents_caused, "lessons": body.lessons, "by": reviewer}));
        Ok(())
    })
    .await
}

/// `GET /v1/changes/trends` range.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TrendQuery {
    /// From (RFC 3339): changes created since.
    pub from: DateTime<Utc>,
    /// To (RFC 3339), after `from`, at most 3 years later.
    pub to: DateTime<Utc>,
}

/// Counts of changes by one key.
#[derive(Debug, Serialize, ToSchema)]
pub struct Count {
    /// The key (a state, a category, a CI id, a month `YYYY-MM`).
    pub key: String,
    /// Changes.
    pub changes: usize,
    /// Of which failed.
    pub failed: usize,
}

/// Change trends over a period.
#[derive(Debug, Serialize, ToSchema)]
pub struct Trends {
    /// Changes created in the period.
    pub total: usize,
    /// By where they stand now (their outcome, for the finished ones).
    pub by_state: Vec<Count>,
    /// By category.
    pub by_category: Vec<Count>,
    /// By CI touched, most changed first (at most 50).
    pub by_ci: Vec<Count>,
    /// By month of creation.
    pub by_month: Vec<Count>,
}

/// `GET /v1/changes/trends?from&to`: changes by outcome, category, CI and month, with failures.
#[utoipa::path(get, path = "/v1/changes/trends", tag = "changes", params(TrendQuery),
    responses(
        (status = 200, description = "The trends", body = Trends),
        (status = 400, description = "A bad range", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn trends(
    _who: Authenticated<AnyRole>,
    query: Query<TrendQuery>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let TrendQuery { from, to } = query.0;
    if to <= from || to - from > chrono::Duration::days(3 * 366) {
        return Err(Problem::field(
            "to",
            "must be after from, at most 3 years later",
        ));
    }
    let rows = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            Ok(store::created_between(
                conn,
                from.naive_utc(),
                to.naive_utc(),
            )?)
        })
        .await?;
    let mut by_state: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    let mut by_category: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    let mut by_ci: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    let mut by_month: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for (state, category, cis, created) in &rows {
        let failed = usize::from(state == ChangeState::Failed.as_str());
        let add = |map: &mut std::collections::BTreeMap<String, (usize, usize)>, key: String| {
            let entry = map.entry(key).or_default();
            entry.0 += 1;
            entry.1 += failed;
        };
        add(&mut by_state, state.clone());
        add(&mut by_category, category.clone());
        add(&mut by_month, created.format("%Y-%m").to_string());
        let cis: Vec<String> = serde_json::from_str(cis).unwrap_or_default();
        for ci in cis {
            add(&mut by_ci, ci);
        }
    }
    let counts = |map: std::collections::BTreeMap<String, (usize, usize)>| -> Vec<Count> {
        map.into_iter()
            .map(|(key, (changes, failed))| Count {
                key,
                changes,
                failed,
            })
            .collect()
    };
    let mut cis = counts(by_ci);
    cis.sort_by(|a, b| b.changes.cmp(&a.changes).then_with(|| a.key.cmp(&b.key)));
    cis.truncate(50);
    Ok(HttpResponse::Ok().json(Trends {
        total: rows.len(),
        by_state: counts(by_state),
        by_category: counts(by_category),
        by_ci: cis,
        by_month: counts(by_month),
    }))
}

/// Why service design and transition applies, as the change's `design` record starts.
pub(crate) fn design_reasons(
    new_service: bool,
    retires_service: bool,
    critical_service: bool,
) -> Value {
    let mut reasons = Vec::new();
    if new_service {
        reasons.push("it brings a new service");
    }
    if retires_service {
        reasons.push("it retires a service");
    }
    if critical_service {
        reasons.push("it touches a critical service");
    }
    serde_json::json!({"required": !reasons.is_empty(), "reasons": reasons})
}

fn design_of(row: &ChangeRow) -> serde_json::Map<String, Value> {
    row.design
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default()
}

/// `POST /v1/changes/{id}/start`: the implementation begins; a change under service design and
/// transition needs its acceptance first.
#[utoipa::path(post, path = "/v1/changes/{id}/start", tag = "changes", params(("id" = String, Path)),
    responses(
        (status = 200, description = "Implementing", body = ChangeView),
        (status = 404, description = "No such change", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Not scheduled, or its design not accepted", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn start_change(
    who: Authenticated<ChangeRequester>,
    req: HttpRequest,
    id: web::Path<String>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    act(
        &svc,
        &req,
        id.into_inner(),
        who.subject.clone(),
        ChangeAction::Start,
        |_, row| {
            let design = design_of(row);
            let required = design
                .get("required")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let accepted = design
                .get("acceptance")
                .and_then(|a| a.get("accepted"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if required && !accepted {
                return Err(Problem::new(codes::DESIGN_NOT_ACCEPTED)
                    .detail("record the design and transition plan and its acceptance first"));
            }
            Ok(())
        },
    )
    .await
}

/// The body of `PUT /v1/changes/{id}/design`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Design {
    /// How the service is designed, built and transitioned.
    #[schema(min_length = 1, max_length = 20000)]
    pub plan: String,
    /// What must hold for it to be accepted.
    #[schema(min_length = 1, max_length = 20000)]
    pub acceptance_criteria: String,
}

/// Changes a change's design record in place (any open state), with its audit row.
async fn edit_design(
    svc: &Control,
    req: &HttpRequest,
    id: String,
    actor: String,
    edit: impl FnOnce(&mut serde_json::Map<String, Value>) -> Result<(), Problem> + Send + 'static,
) -> Result<HttpResponse, Problem> {
    let now = meridian_chassis::clock::to_micros(svc.clock.now());
    let correlation = correlation(req);
    let row = svc
        .db
        .transaction(move |conn| -> Result<ChangeRow, Problem> {
            let before = store::load_for_update(conn, &id)?.ok_or_else(not_found)?;
            let state = state_of(&before);
            if state.allowed().is_empty()
                || state == ChangeState::Implemented
                || state == ChangeState::Failed
            {
                return Err(not_allowed(state, ChangeAction::Update));
            }
            let mut after = before.clone();
            let mut design = design_of(&after);
            edit(&mut design)?;
            after.design = Some(Value::Object(design).to_string());
            after.version += 1;
            after.updated_at = now.naive_utc();
            let ctx = Context {
                actor: &actor,
                now,
                correlation_id: correlation.as_deref(),
            };
            store::save(conn, &before, &after, "designed", &[], ctx)?;
            Ok(after)
        })
        .await?;
    Ok(respond(actix_web::http::StatusCode::OK, &row))
}

/// `PUT /v1/changes/{id}/design`: records the design and transition plan (8.5.2).
#[utoipa::path(put, path = "/v1/changes/{id}/design", tag = "changes", params(("id" = String, Path)), request_body = Design,
    responses(
        (status = 200, description = "Recorded (a new plan clears an earlier acceptance)", body = ChangeView),
        (status = 400, description = "Bad fields, named", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "The change is finished", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn record_design(
    who: Authenticated<ChangeRequester>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<Design>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let body = body.0;
    let mut params = Vec::new();
    text(&mut params, "plan", &body.plan, LONG, true);
    text(
        &mut params,
        "acceptance_criteria",
        &body.acceptance_criteria,
        LONG,
        true,
    );
    if !params.is_empty() {
        return Err(Problem::invalid(codes::INVALID_BODY, params));
    }
    edit_design(
        &svc,
        &req,
        id.into_inner(),
        who.subject.clone(),
        move |design| {
            design.insert("plan".to_owned(), Value::String(body.plan));
            design.insert(
                "acceptance_criteria".to_owned(),
                Value::String(body.acceptance_criteria),
            );
            design.remove("acceptance");
            Ok(())
        },
    )
    .await
}

/// The body of `POST /v1/changes/{id}/acceptance`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Acceptance {
    /// Whether the acceptance criteria are met.
    pub accepted: bool,
    /// The evidence.
    #[schema(min_length = 1, max_length = 20000)]
    pub notes: String,
}

/// `POST /v1/changes/{id}/acceptance`: records whether the design's acceptance criteria are met.
#[utoipa::path(post, path = "/v1/changes/{id}/acceptance", tag = "changes", params(("id" = String, Path)), request_body = Acceptance,
    responses(
        (status = 200, description = "Recorded", body = ChangeView),
        (status = 409, description = "No plan recorded yet, or the change is finished", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn record_acceptance(
    who: Authenticated<ChangeRequester>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<Acceptance>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let body = body.0;
    super::required("notes", &body.notes, LONG)?;
    let by = who.subject.clone();
    let now = svc.clock.now();
    edit_design(&svc, &req, id.into_inner(), who.subject.clone(), move |design| {
        if !design.contains_key("plan") {
            return Err(Problem::new(codes::DESIGN_NOT_ACCEPTED).detail("record the plan first"));
        }
        design.insert(
            "acceptance".to_owned(),
            serde_json::json!({"accepted": body.accepted, "notes": body.notes, "by": by, "at": now}),
        );
        Ok(())
    })
    .await
}

/// `GET /v1/change-templates`: the catalogue of pre-approved standard changes
/// (`control.standard_templates`).
#[utoipa::path(get, path = "/v1/change-templates", tag = "changes",
    responses((status = 200, description = "Templates by name", body = Object)),
    security(("bearer" = [])))]
pub async fn list_templates(_who: Authenticated<AnyRole>, svc: web::Data<Control>) -> HttpResponse {
    HttpResponse::Ok().json(&svc.config.standard_templates)
}

/// Adds one part (`implementation`, `post_implementation`) to a change's review record.
fn add_to_review(row: &mut ChangeRow, part: &str, value: Value) {
    let mut review: serde_json::Map<String, Value> = row
        .review
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default();
    review.insert(part.to_owned(), value);
    row.review = Some(Value::Object(review).to_string());
}
