//! Management review (9.3): reviews at planned intervals whose inputs are assembled from the
//! system itself — earlier actions, audits, nonconformities, risks, objectives, improvements,
//! and, from the audit ledger, service performance, satisfaction, complaints and suppliers — and
//! whose decisions and actions are recorded and tracked.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use chrono::{NaiveDate, NaiveDateTime};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated};
use meridian_chassis::db::AnyConnection;
use meridian_chassis::problem::{InvalidParam, Json, Query, codes};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{SmsManager, checked, text, view};
use crate::Governance;
use crate::domain;
use crate::events;
use crate::ledger;
use crate::store::audit;
use crate::store::rows::{self, ActionRow, ReviewRow};

const REVIEW_JSON: &[&str] = &["inputs", "attendees", "decisions"];

fn tally<I: IntoIterator<Item = String>>(items: I) -> BTreeMap<String, usize> {
    let mut map = BTreeMap::new();
    for item in items {
        *map.entry(item).or_default() += 1;
    }
    map
}

fn within(at: NaiveDateTime, from: NaiveDateTime, to: NaiveDateTime) -> bool {
    at >= from && at < to
}

/// The events of `pattern` in the window, their data.
fn events_of(
    conn: &mut AnyConnection,
    pattern: &str,
    window: (NaiveDateTime, NaiveDateTime),
) -> diesel::QueryResult<Vec<(String, Value)>> {
    Ok(
        ledger::entries(conn, 0, 100_000, Some(pattern), Some(window))?
            .into_iter()
            .filter(|e| meridian_chassis::bus::topic_matches(pattern, &e.event_type))
            .map(|e| (e.event_type, crate::store::json(&e.data)))
            .collect(),
    )
}

/// Assembles a review's inputs for `[from, to]` (9.3.2 a–j).
///
/// # Errors
/// A query failing.
pub fn inputs(
    conn: &mut AnyConnection,
    review: Option<&str>,
    from: NaiveDate,
    to: NaiveDate,
) -> diesel::QueryResult<Value> {
    let window = (
        from.and_hms_opt(0, 0, 0).unwrap_or_default(),
        (to + chrono::Duration::days(1))
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default(),
    );
    let (f, t) = window;
    let earlier: Vec<ActionRow> = rows::actions(conn, None, None)?
        .into_iter()
        .filter(|a| Some(a.review_id.as_str()) != review)
        .collect();
    let mut audits = Vec::new();
    for a in rows::audits(conn, Some("completed".to_owned()))? {
        if a.completed_at.is_some_and(|at| within(at, f, t)) {
            let findings = rows::findings(conn, &a.id)?;
            audits.push(json!({"audit": a.number, "title": a.title, "findings": tally(findings.into_iter().map(|f| f.kind))}));
        }
    }
    let ncs = rows::nonconformities(conn, None, None)?;
    let risks = rows::risks(conn, Some("open".to_owned()), None)?;
    let objectives: Vec<Value> = rows::objectives(conn)?
        .iter()
        .map(|o| json!({"title": o.title, "state": o.state, "target": o.target, "current": o.current_value,
            "progress_percent": domain::progress(o.baseline, o.target, o.current_value), "due_on": o.due_on}))
        .collect();
    let improvements = rows::improvements(conn, None)?;
    let breaches = events_of(conn, "service_level.sla.breached", window)?;
    let incidents = events_of(conn, "resolution.incident.created", window)?.len();
    let majors = events_of(conn, "resolution.incident.major_declared", window)?.len();
    let changes = events_of(conn, "control.change.state_changed", window)?;
    let scores = events_of(conn, "relationship.satisfaction.recorded", window)?;
    let complaints = events_of(conn, "relationship.complaint.*", window)?;
    let supplier_reviews = events_of(conn, "relationship.supplier.review_completed", window)?;
    let expiring = events_of(conn, "relationship.contract.expiring", window)?.len();
    let score_values: Vec<f64> = scores
        .iter()
        .filter_map(|(_, d)| d["score"].as_f64())
        .collect();
    #[expect(clippy::cast_precision_loss, reason = "a count of answers")]
    let average = (!score_values.is_empty()).then(|| {
        (score_values.iter().sum::<f64>() / score_values.len() as f64 * 100.0).round() / 100.0
    });
    Ok(json!({
        "period": {"from": from, "to": to},
        "previous_actions": {
            "open": earlier.iter().filter(|a| a.state == "open").map(|a| json!({"description": a.description, "owner": a.owner, "due_on": a.due_on})).collect::<Vec<_>>(),
            "done": earlier.iter().filter(|a| a.state == "done").count(),
        },
        "audits": audits,
        "nonconformities": {
            "raised": tally(ncs.iter().filter(|n| within(n.created_at, f, t)).map(|n| n.source.clone())),
            "open": ncs.iter().filter(|n| n.state != "closed").count(),
            "closed": ncs.iter().filter(|n| n.closed_at.is_some_and(|at| within(at, f, t))).count(),
            "not_effective": ncs.iter().filter(|n| n.effective == Some(false)).count(),
        },
        "risks": {
            "open_by_level": tally(risks.iter().map(|r| r.level.clone())),
            "high": risks.iter().filter(|r| r.level == "high").map(|r| json!({"risk": r.number, "title": r.title, "treatment": r.treatment, "due": r.treatment_due})).collect::<Vec<_>>(),
        },
        "objectives": objectives,
        "improvements": tally(improvements.iter().map(|i| i.state.clone())),
        "service_performance": {
            "sla_breaches": breaches.len(),
            "sla_breaches_by_service": tally(breaches.iter().map(|(_, d)| d["service"].as_str().unwrap_or("").to_owned())),
            "incidents": incidents,
            "major_incidents": majors,
            "change_outcomes": tally(changes.iter().map(|(_, d)| d["to"].as_str().unwrap_or("").to_owned())),
        },
        "satisfaction": {"responses": score_values.len(), "average": average},
        "complaints": tally(complaints.iter().map(|(t, _)| t.rsplit('.').next().unwrap_or("").to_owned())),
        "suppliers": {
            "reviews": tally(supplier_reviews.iter().map(|(_, d)| d["outcome"].as_str().unwrap_or("").to_owned())),
            "contracts_expiring": expiring,
        },
    }))
}

/// A management review as planned.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ManagementReviewPlan)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    /// When it is held.
    pub planned_for: NaiveDate,
    /// The period reviewed (default: a year before `period_to`).
    pub period_from: Option<NaiveDate>,
    /// Its end (default: the day it is planned for).
    pub period_to: Option<NaiveDate>,
}

fn review_view(row: &ReviewRow, actions: &[ActionRow]) -> Value {
    let mut v = view(row, REVIEW_JSON);
    v["actions"] = json!(actions.iter().map(|a| view(a, &[])).collect::<Vec<_>>());
    v
}

/// `POST /v1/management-reviews`: plans a review; its inputs are assembled at once.
#[utoipa::path(post, path = "/v1/management-reviews", tag = "reviews", request_body = PlanInput,
    responses((status = 201, description = "Planned, with its inputs", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn plan_review(
    who: Authenticated<SmsManager>,
    body: Json<PlanInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let to = input.period_to.unwrap_or(input.planned_for);
    let from = input
        .period_from
        .unwrap_or(to - chrono::Duration::days(365));
    if from >= to {
        return Err(Problem::field("period_from", "must be before period_to"));
    }
    let (now, actor) = (svc.clock.now(), who.subject.clone());
    let view = svc
        .db
        .transaction(move |conn| -> Result<Value, Problem> {
            let row = ReviewRow {
                id: uuid::Uuid::now_v7().to_string(),
                number: crate::store::next_number(conn, "review", "MR")?,
                planned_for: input.planned_for,
                period_from: from,
                period_to: to,
                state: "planned".to_owned(),
                inputs: inputs(conn, None, from, to)?.to_string(),
                attendees: "[]".to_owned(),
                minutes: String::new(),
                decisions: "[]".to_owned(),
                held_at: None,
                created_by: actor.clone(),
                created_at: now.naive_utc(),
                updated_at: now.naive_utc(),
            };
            rows::save_review(conn, &row, true)?;
            audit(
                conn,
                &actor,
                "review.planned",
                "management_review",
                &row.id,
                &row,
                now,
            )?;
            Ok(review_view(&row, &[]))
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

fn planned(conn: &mut AnyConnection, key: &str) -> Result<ReviewRow, Problem> {
    let row = rows::find_review(conn, key)?
        .ok_or_else(|| Problem::new(codes::MANAGEMENT_REVIEW_NOT_FOUND))?;
    if row.state != "planned" {
        return Err(Problem::new(codes::MANAGEMENT_REVIEW_HELD));
    }
    Ok(row)
}

/// `POST /v1/management-reviews/{id}/inputs`: assembles the inputs again (before it is held).
#[utoipa::path(post, path = "/v1/management-reviews/{id}/inputs", tag = "reviews",
    params(("id" = String, Path, description = "Id or number")),
    responses((status = 200, description = "Fresh inputs", body = Object),
        (status = 404, description = "No such review", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Held already", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn refresh_inputs(
    who: Authenticated<SmsManager>,
    id: web::Path<String>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let (now, actor, key) = (svc.clock.now(), who.subject.clone(), id.into_inner());
    let view = svc
        .db
        .transaction(move |conn| -> Result<Value, Problem> {
            let mut row = planned(conn, &key)?;
            row.inputs = inputs(conn, Some(&row.id), row.period_from, row.period_to)?.to_string();
            row.updated_at = now.naive_utc();
            rows::save_review(conn, &row, false)?;
            audit(
                conn,
                &actor,
                "review.inputs",
                "management_review",
                &row.id,
                &row,
                now,
            )?;
            Ok(review_view(&row, &[]))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// An action decided.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ManagementReviewActionInput)]
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
#[schema(as = ManagementReviewHoldInput)]
#[serde(deny_unknown_fields)]
pub struct HoldInput {
    /// Who attended (top management among them).
    pub attendees: Vec<String>,
    /// The minutes.
    #[schema(min_length = 1, max_length = 50000)]
    pub minutes: String,
    /// Decisions (on improvement, changes to the SMS, resources).
    pub decisions: Vec<String>,
    /// Actions, tracked to closure.
    #[serde(default)]
    pub actions: Vec<ActionInput>,
}

/// `POST /v1/management-reviews/{id}/hold`: records the review held, with its decisions and
/// actions (`governance.review.held`).
#[utoipa::path(post, path = "/v1/management-reviews/{id}/hold", tag = "reviews", request_body = HoldInput,
    params(("id" = String, Path, description = "Id or number")),
    responses((status = 200, description = "Held", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such review", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Held already", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn hold_review(
    who: Authenticated<SmsManager>,
    id: web::Path<String>,
    body: Json<HoldInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    if input.attendees.is_empty() {
        params.push(InvalidParam::new("attendees", "name who attended"));
    }
    text("minutes", &input.minutes, 50_000, true, &mut params);
    if input.decisions.is_empty() {
        params.push(InvalidParam::new(
            "decisions",
            "record the review's decisions",
        ));
    }
    for (i, d) in input.decisions.iter().enumerate() {
        text(&format!("decisions[{i}]"), d, 2000, true, &mut params);
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
    checked(params)?;
    let (now, actor, key) = (svc.clock.now(), who.subject.clone(), id.into_inner());
    let view = svc
        .db
        .transaction(move |conn| -> Result<Value, Problem> {
            let mut row = planned(conn, &key)?;
            row.state = "held".to_owned();
            row.attendees = serde_json::to_string(&input.attendees).unwrap_or_default();
            row.minutes = input.minutes;
            row.decisions = serde_json::to_string(&input.decisions).unwrap_or_default();
            row.held_at = Some(now.naive_utc());
            row.updated_at = now.naive_utc();
            rows::save_review(conn, &row, false)?;
            let mut actions = Vec::new();
            for a in input.actions {
                let action = ActionRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    review_id: row.id.clone(),
                    description: a.description,
                    owner: a.owner,
                    due_on: a.due_on,
                    state: "open".to_owned(),
                    outcome: String::new(),
                    closed_by: None,
                    closed_at: None,
                    created_at: now.naive_utc(),
                };
                rows::save_action(conn, &action, true)?;
                actions.push(action);
            }
            audit(
                conn,
                &actor,
                "review.held",
                "management_review",
                &row.id,
                &row,
                now,
            )?;
            events::record_changed(
                conn,
                "governance.review.held",
                meridian_proto::governance::v1::RecordChanged {
                    id: row.id.clone(),
                    number: row.number.clone(),
                    kind: "management_review".to_owned(),
                    title: format!("Management review {}", row.number),
                    state: row.state.clone(),
                    recipient: String::new(),
                    source: String::new(),
                },
                &actor,
                now,
            )?;
            Ok(review_view(&row, &actions))
        })
        .await?;
    svc.waker.wake();
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /v1/management-reviews`: reviews, newest first.
#[utoipa::path(get, path = "/v1/management-reviews", tag = "reviews",
    responses((status = 200, description = "Reviews", body = Vec<Object>)),
    security(("bearer" = [])))]
pub async fn list_reviews(
    _who: Authenticated<AnyRole>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let rows = svc
        .db
        .run(|conn| -> Result<_, Problem> { Ok(rows::reviews(conn)?) })
        .await?;
    Ok(HttpResponse::Ok().json(
        rows.iter()
            .map(|r| view(r, REVIEW_JSON))
            .collect::<Vec<_>>(),
    ))
}

/// `GET /v1/management-reviews/{id}`: one, with its inputs, decisions and actions.
#[utoipa::path(get, path = "/v1/management-reviews/{id}", tag = "reviews",
    params(("id" = String, Path, description = "Id or number")),
    responses((status = 200, description = "The review", body = Object),
        (status = 404, description = "No such review", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn get_review(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let key = id.into_inner();
    let view = svc
        .db
        .run(move |conn| -> Result<Value, Problem> {
            let row = rows::find_review(conn, &key)?
                .ok_or_else(|| Problem::new(codes::MANAGEMENT_REVIEW_NOT_FOUND))?;
            let actions = rows::actions(conn, Some(row.id.clone()), None)?;
            Ok(review_view(&row, &actions))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /v1/review-actions` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ActionQuery {
    /// `open` or `done`.
    pub state: Option<String>,
    /// Owned by (`me` for the caller).
    pub owner: Option<String>,
}

/// `GET /v1/review-actions`: the actions of management reviews.
#[utoipa::path(get, path = "/v1/review-actions", tag = "reviews", params(ActionQuery),
    responses((status = 200, description = "Actions", body = Vec<Object>)),
    security(("bearer" = [])))]
pub async fn list_actions(
    who: Authenticated<AnyRole>,
    query: Query<ActionQuery>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let owner = query
        .owner
        .map(|o| if o == "me" { who.subject.clone() } else { o });
    let state = query.state;
    let rows = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(rows::actions(conn, None, state)?) })
        .await?;
    Ok(HttpResponse::Ok().json(
        rows.iter()
            .filter(|a| owner.as_ref().is_none_or(|o| a.owner == *o))
            .map(|a| view(a, &[]))
            .collect::<Vec<_>>(),
    ))
}

/// How an action was closed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseInput {
    /// What was done.
    #[schema(min_length = 1, max_length = 5000)]
    pub outcome: String,
}

/// `POST /v1/review-actions/{id}/close`: closes an action with its outcome (its owner or the SMS
/// manager).
#[utoipa::path(post, path = "/v1/review-actions/{id}/close", tag = "reviews", request_body = CloseInput,
    params(("id" = String, Path, description = "Action id")),
    responses((status = 200, description = "Closed", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 403, description = "Neither its owner nor the SMS manager", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such action", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Closed already", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn close_action(
    who: Authenticated<AnyRole>,
    id: web::Path<String>,
    body: Json<CloseInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    super::one_text("outcome", &body.0.outcome, 5000)?;
    let (now, principal, key, outcome) = (
        svc.clock.now(),
        who.principal.clone(),
        id.into_inner(),
        body.0.outcome,
    );
    let row = svc
        .db
        .transaction(move |conn| -> Result<ActionRow, Problem> {
            let mut row = rows::find_action(conn, &key)?
                .ok_or_else(|| Problem::new(codes::REVIEW_ACTION_NOT_FOUND))?;
            if !principal.has("sms-manager") && row.owner != principal.subject {
                return Err(Problem::new(codes::FORBIDDEN)
                    .detail("only its owner or the SMS manager closes an action"));
            }
            if row.state != "open" {
                return Err(Problem::new(codes::REVIEW_ACTION_CLOSED));
            }
            row.state = "done".to_owned();
            row.outcome = outcome;
            row.closed_by = Some(principal.subject.clone());
            row.closed_at = Some(now.naive_utc());
            rows::save_action(conn, &row, false)?;
            audit(
                conn,
                &principal.subject,
                "review_action.closed",
                "review_action",
                &row.id,
                &row,
                now,
            )?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view(&row, &[])))
}
