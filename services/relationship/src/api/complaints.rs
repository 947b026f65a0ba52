//! Complaints (8.3.2): recorded, investigated, acted on, closed — every step on the record —
//! and escalated, by hand or by the scheduler when not resolved in time.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated, Principal};
use meridian_chassis::db::AnyConnection;
use meridian_chassis::problem::{Json, Query, codes};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{ComplaintTaker, checked, page_limit, text, utc};
use crate::Relationship;
use crate::domain::{ComplaintAction, ComplaintState};
use crate::events;
use crate::store::tickets::{self as store, ComplaintFilter, ComplaintRow, HistoryRow};
use crate::store::{audit, customers, json as parse};

/// A complaint as recorded.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComplaintInput {
    /// The customer.
    #[schema(min_length = 1, max_length = 50)]
    pub customer: String,
    /// The service complained about.
    pub service: Option<String>,
    /// Who complained (a contact's name or address).
    #[schema(min_length = 1, max_length = 200)]
    pub raised_by: String,
    /// In a line.
    #[schema(min_length = 1, max_length = 200)]
    pub summary: String,
    /// In full.
    #[schema(min_length = 1, max_length = 20000)]
    pub description: String,
    /// Who handles it.
    pub owner: Option<String>,
}

/// A complaint with its record.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComplaintView {
    /// Id.
    pub id: String,
    /// Number.
    pub number: String,
    /// The customer.
    pub customer: String,
    /// The service.
    pub service: Option<String>,
    /// Who complained.
    pub raised_by: String,
    /// Summary.
    pub summary: String,
    /// Description.
    pub description: String,
    /// `recorded`, `investigating`, `actioned` or `closed`.
    pub state: String,
    /// Who handles it.
    pub owner: Option<String>,
    /// 0 until escalated.
    pub escalation_level: i32,
    /// Escalated when still open at this time.
    pub due_at: DateTime<Utc>,
    /// Investigation.
    pub investigation: String,
    /// Action taken.
    pub action_taken: String,
    /// Resolution.
    pub resolution: String,
    /// Recorded by.
    pub recorded_by: String,
    /// Recorded.
    pub created_at: DateTime<Utc>,
    /// Closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// What its state allows.
    pub allowed_actions: Vec<&'static str>,
    /// Its record, oldest first (on `GET /v1/complaints/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub history: Option<Vec<Value>>,
}

fn view(row: ComplaintRow, history: Option<Vec<HistoryRow>>) -> ComplaintView {
    let state = ComplaintState::parse(&row.state).unwrap_or(ComplaintState::Recorded);
    ComplaintView {
        allowed_actions: ComplaintAction::allowed(state),
        history: history.map(|h| {
            h.into_iter()
                .map(|e| json!({"at": utc(e.at), "actor": e.actor, "action": e.action, "detail": parse(&e.detail)}))
                .collect()
        }),
        due_at: utc(row.due_at),
        created_at: utc(row.created_at),
        closed_at: row.closed_at.map(utc),
        id: row.id,
        number: row.number,
        customer: row.customer_id,
        service: row.service,
        raised_by: row.raised_by,
        summary: row.summary,
        description: row.description,
        state: row.state,
        owner: row.owner,
        escalation_level: row.escalation_level,
        investigation: row.investigation,
        action_taken: row.action_taken,
        resolution: row.resolution,
        recorded_by: row.recorded_by,
    }
}

fn entry(
    row: &ComplaintRow,
    actor: &str,
    action: &str,
    detail: &Value,
    now: DateTime<Utc>,
) -> HistoryRow {
    HistoryRow {
        id: uuid::Uuid::now_v7().to_string(),
        complaint_id: row.id.clone(),
        at: now.naive_utc(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        detail: detail.to_string(),
    }
}

/// `POST /v1/complaints`: records a complaint; it is escalated when not closed within
/// `relationship.complaints.resolve_within_hours`.
#[utoipa::path(post, path = "/v1/complaints", tag = "complaints", request_body = ComplaintInput,
    responses(
        (status = 201, description = "Recorded", body = ComplaintView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn create_complaint(
    who: Authenticated<ComplaintTaker>,
    body: Json<ComplaintInput>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    text("customer", &input.customer, 50, true, &mut params);
    text("raised_by", &input.raised_by, 200, true, &mut params);
    text("summary", &input.summary, 200, true, &mut params);
    text("description", &input.description, 20_000, true, &mut params);
    if let Some(owner) = &input.owner {
        text("owner", owner, 200, true, &mut params);
    }
    checked(params)?;
    let (now, actor) = (svc.clock.now(), who.subject.clone());
    let hours = svc.config.complaints.resolve_within_hours;
    let view = svc
        .db
        .transaction(move |conn| -> Result<ComplaintView, Problem> {
            if customers::customer(conn, &input.customer)?.is_none() {
                return Err(Problem::field(
                    "customer",
                    format!("no customer {}", input.customer),
                ));
            }
            if let Some(service) = &input.service
                && !customers::unknown_services(conn, std::slice::from_ref(service))?.is_empty()
            {
                return Err(Problem::field(
                    "service",
                    format!("{service} is not a live service of the catalogue"),
                ));
            }
            let row = ComplaintRow {
                id: uuid::Uuid::now_v7().to_string(),
                number: crate::store::next_number(conn, "complaint", "CMP")?,
                customer_id: input.customer,
                service: input.service,
                raised_by: input.raised_by,
                summary: input.summary,
                description: input.description,
                state: ComplaintState::Recorded.as_str().to_owned(),
                owner: input.owner,
                escalation_level: 0,
                due_at: (now + chrono::Duration::hours(hours)).naive_utc(),
                investigation: String::new(),
                action_taken: String::new(),
                resolution: String::new(),
                recorded_by: actor.clone(),
                created_at: now.naive_utc(),
                updated_at: now.naive_utc(),
                closed_at: None,
                version: 1,
            };
            let detail = json!({"summary": row.summary, "raised_by": row.raised_by});
            store::save_complaint(
                conn,
                &row,
                true,
                &entry(&row, &actor, "recorded", &detail, now),
            )?;
            audit(
                conn,
                &actor,
                "complaint.recorded",
                "complaint",
                &row.id,
                &row,
                now,
            )?;
            events::complaint_changed(conn, &row, "recorded", "", &actor, now)?;
            let history = store::history(conn, &row.id)?;
            Ok(view(row, Some(history)))
        })
        .await?;
    svc.waker.wake();
    Ok(HttpResponse::Created().json(view))
}

/// `GET /v1/complaints` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ComplaintQuery {
    /// In this state.
    pub state: Option<String>,
    /// Of this customer.
    pub customer: Option<String>,
    /// Escalated at least once (or never).
    pub escalated: Option<bool>,
    /// The cursor: the last id of the previous page.
    pub after: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// `GET /v1/complaints`: complaints, oldest first.
#[utoipa::path(get, path = "/v1/complaints", tag = "complaints", params(ComplaintQuery),
    responses(
        (status = 200, description = "A page of complaints", body = Vec<ComplaintView>),
        (status = 400, description = "A bad filter, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_complaints(
    _who: Authenticated<AnyRole>,
    query: Query<ComplaintQuery>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let limit = page_limit(query.limit)?;
    if let Some(state) = &query.state
        && ComplaintState::parse(state).is_none()
    {
        return Err(Problem::field(
            "state",
            "must be recorded, investigating, actioned or closed",
        ));
    }
    let filter = ComplaintFilter {
        state: query.state,
        customer: query.customer,
        escalated: query.escalated,
        after: query.after,
    };
    let rows = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(store::complaints(conn, filter, limit)?) })
        .await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(|r| view(r, None)).collect::<Vec<_>>()))
}

fn load(conn: &mut AnyConnection, key: &str, lock: bool) -> Result<ComplaintRow, Problem> {
    store::complaint(conn, key, lock)?.ok_or_else(|| Problem::new(codes::COMPLAINT_NOT_FOUND))
}

/// `GET /v1/complaints/{id}`: a complaint with its record.
#[utoipa::path(get, path = "/v1/complaints/{id}", tag = "complaints",
    params(("id" = String, Path, description = "Id or number")),
    responses(
        (status = 200, description = "The complaint", body = ComplaintView),
        (status = 404, description = "No such complaint", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_complaint(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let key = id.into_inner();
    let view = svc
        .db
        .run(move |conn| -> Result<ComplaintView, Problem> {
            let row = load(conn, &key, false)?;
            let history = store::history(conn, &row.id)?;
            Ok(view(row, Some(history)))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// What an action on a complaint carries.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComplaintActionInput {
    /// `investigate`: who takes it (default the caller).
    pub owner: Option<String>,
    /// `investigate`: what was found. `act`: the action taken. `close`: the resolution.
    /// `reopen`, `escalate`: why.
    pub notes: String,
}

fn may_act(who: &Principal, row: &ComplaintRow) -> bool {
    who.has("relationship-manager") || row.owner.as_deref() == Some(who.subject.as_str())
}

/// `POST /v1/complaints/{id}/{action}`: `investigate`, `act`, `close`, `reopen` or `escalate`
/// (the relationship manager, or the complaint's owner).
#[utoipa::path(post, path = "/v1/complaints/{id}/{action}", tag = "complaints", request_body = ComplaintActionInput,
    params(("id" = String, Path, description = "Id or number"), ("action" = String, Path, description = "investigate, act, close, reopen or escalate")),
    responses(
        (status = 200, description = "Done", body = ComplaintView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 403, description = "Neither the owner nor a relationship manager", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such complaint or action", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Not allowed in its state; `allowed-actions` says what is", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn act_on_complaint(
    who: Authenticated<AnyRole>,
    path: web::Path<(String, String)>,
    body: Json<ComplaintActionInput>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let (key, name) = path.into_inner();
    let action = ComplaintAction::parse(&name)
        .ok_or_else(|| Problem::new(codes::NOT_FOUND).detail(format!("no action {name}")))?;
    let input = body.0;
    let mut params = Vec::new();
    text("notes", &input.notes, 20_000, true, &mut params);
    if let Some(owner) = &input.owner {
        if action == ComplaintAction::Investigate {
            text("owner", owner, 200, true, &mut params);
        } else {
            params.push(meridian_chassis::problem::InvalidParam::new(
                "owner",
                "only investigate takes an owner",
            ));
        }
    }
    checked(params)?;
    let (now, principal) = (svc.clock.now(), who.principal.clone());
    let config = svc.config.clone();
    let view = svc
        .db
        .transaction(move |conn| -> Result<ComplaintView, Problem> {
            let mut row = load(conn, &key, true)?;
            let actor = principal.subject.clone();
            if !may_act(&principal, &row) {
                return Err(Problem::new(codes::FORBIDDEN)
                    .detail("only the complaint's owner or a relationship manager acts on it"));
            }
            let state = ComplaintState::parse(&row.state).unwrap_or(ComplaintState::Recorded);
            let Some(next) = action.apply(state) else {
                return Err(Problem::new(codes::COMPLAINT_TRANSITION_NOT_ALLOWED)
                    .detail(format!(
                        "a {} complaint cannot be {}d",
                        row.state,
                        action.as_str()
                    ))
                    .allowed_actions(
                        ComplaintAction::allowed(state)
                            .into_iter()
                            .map(str::to_owned)
                            .collect(),
                    ));
            };
            if action == ComplaintAction::Escalate {
                if !crate::scheduler::escalate(conn, &config, &mut row, &actor, &input.notes, now)?
                {
                    return Err(Problem::new(codes::COMPLAINT_TRANSITION_NOT_ALLOWED)
                        .detail("the complaint is at the last escalation level")
                        .allowed_actions(
                            ComplaintAction::allowed(state)
                                .into_iter()
                                .filter(|a| *a != "escalate")
                                .map(str::to_owned)
                                .collect(),
                        ));
                }
            } else {
                let mut detail = json!({"notes": input.notes});
                match action {
                    ComplaintAction::Investigate => {
                        row.owner = Some(input.owner.clone().unwrap_or_else(|| actor.clone()));
                        detail["owner"] = json!(row.owner);
                        row.investigation = append(&row.investigation, &input.notes);
                    }
                    ComplaintAction::Act => {
                        row.action_taken = append(&row.action_taken, &input.notes)
                    }
                    ComplaintAction::Close => {
                        row.resolution = input.notes.clone();
                        row.closed_at = Some(now.naive_utc());
                    }
                    ComplaintAction::Reopen => {
                        row.closed_at = None;
                        row.due_at = (now
                            + chrono::Duration::hours(config.complaints.resolve_within_hours))
                        .naive_utc();
                    }
                    ComplaintAction::Escalate => {}
                }
                row.state = next.as_str().to_owned();
                row.updated_at = now.naive_utc();
                row.version += 1;
                store::save_complaint(
                    conn,
                    &row,
                    false,
                    &entry(&row, &actor, action.as_str(), &detail, now),
                )?;
                audit(
                    conn,
                    &actor,
                    &format!("complaint.{}", action.as_str()),
                    "complaint",
                    &row.id,
                    &row,
                    now,
                )?;
                if next == ComplaintState::Closed {
                    events::complaint_changed(conn, &row, "closed", "", &actor, now)?;
                }
            }
            let history = store::history(conn, &row.id)?;
            Ok(view(row, Some(history)))
        })
        .await?;
    svc.waker.wake();
    Ok(HttpResponse::Ok().json(view))
}

/// `notes` after what was there, a blank line between.
fn append(before: &str, notes: &str) -> String {
    if before.is_empty() {
        notes.to_owned()
    } else {
        format!("{before}\n\n{notes}")
    }
}
