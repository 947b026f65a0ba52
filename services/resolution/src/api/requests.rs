//! Service requests (ISO/IEC 20000-1 8.6.2): items ordered from the catalogue, with their form
//! checked against the item's fields, approved when the item needs it (never by whoever ordered
//! it or for whom), fulfilled and closed. When the item names a fulfilment workflow, approval
//! and fulfilment are that workflow's tasks: it sends `resolution.request.transition` commands
//! (see `events::commands`) and the same actions by REST are refused.

use std::collections::BTreeMap;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated, Principal};
use meridian_chassis::db::AnyConnection;
use meridian_chassis::fields::Field;
use meridian_chassis::problem::{InvalidParam, Json, OptionalJson, Query, codes};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::incidents::Reporter;
use super::problems::{checked, page_limit, text};
use crate::Resolution;
use crate::domain::request::{RequestAction, RequestState};
use crate::store::requests::{self as store, Filter, ItemRow, RequestRow};

/// The role that approves service requests.
pub const APPROVER: &str = "request-approver";

fn not_found() -> Problem {
    Problem::new(codes::REQUEST_NOT_FOUND)
}

/// Whether `who` works requests (sees them all, starts and fulfils them).
fn works_requests(who: &Principal) -> bool {
    who.has("agent") || who.has("incident-manager")
}

/// A request item on offer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemView {
    /// The catalogue service.
    pub service: String,
    /// Its id within the service.
    pub id: String,
    /// Name.
    pub name: String,
    /// What it is.
    pub description: String,
    /// The form (name → typed field).
    #[schema(value_type = Object)]
    pub fields: Value,
    /// The fulfilment workflow, if any.
    pub workflow: Option<String>,
    /// Whether it needs approval.
    pub needs_approval: bool,
}

impl From<ItemRow> for ItemView {
    fn from(row: ItemRow) -> Self {
        Self {
            service: row.service_id,
            id: row.id,
            name: row.name,
            description: row.description,
            fields: serde_json::from_str(&row.fields).unwrap_or(Value::Null),
            workflow: row.workflow,
            needs_approval: row.needs_approval,
        }
    }
}

/// `GET /v1/request-items` filter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ItemQuery {
    /// Of this catalogue service.
    pub service: Option<String>,
}

/// `GET /v1/request-items`: what may be ordered (items of live catalogue services).
#[utoipa::path(get, path = "/v1/request-items", tag = "requests", params(ItemQuery),
    responses((status = 200, description = "The items", body = Vec<ItemView>)),
    security(("bearer" = [])))]
pub async fn list_items(
    _who: Authenticated<AnyRole>,
    query: Query<ItemQuery>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let service = query.0.service;
    let rows = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(store::items(conn, service.as_deref())?) })
        .await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(ItemView::from).collect::<Vec<_>>()))
}

/// A service request.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestView {
    /// Id.
    pub id: String,
    /// `REQ0001000`.
    pub number: String,
    /// The catalogue service.
    pub service: String,
    /// The item ordered.
    pub item: String,
    /// Its name.
    pub item_name: String,
    /// Who ordered it.
    pub requested_by: String,
    /// For whom.
    pub requested_for: String,
    /// The form as filled in.
    #[schema(value_type = Object)]
    pub fields: Value,
    /// Its state.
    pub state: RequestState,
    /// Whether it needs approval.
    pub needs_approval: bool,
    /// The fulfilment workflow, if its item names one.
    pub workflow: Option<String>,
    /// Who approved it.
    pub approved_by: Option<String>,
    /// What was delivered.
    pub notes: String,
    /// What may be done now (by REST; a workflow-driven request's approval and fulfilment are
    /// its workflow's tasks).
    pub allowed_actions: Vec<RequestAction>,
    /// Ordered.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Increases with every change.
    pub version: i64,
    /// Its history (on `GET /v1/requests/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub history: Option<Vec<Value>>,
}

fn state_of(row: &RequestRow) -> RequestState {
    RequestState::parse(&row.state).unwrap_or(RequestState::Submitted)
}

/// The actions REST may take on `row`.
fn rest_actions(row: &RequestRow) -> Vec<RequestAction> {
    state_of(row)
        .allowed(row.needs_approval)
        .iter()
        .copied()
        .filter(|a| row.workflow.is_none() || !a.by_workflow())
        .collect()
}

impl From<RequestRow> for RequestView {
    fn from(row: RequestRow) -> Self {
        Self {
            allowed_actions: rest_actions(&row),
            state: state_of(&row),
            fields: serde_json::from_str(&row.fields).unwrap_or(Value::Null),
            id: row.id,
            number: row.number,
            service: row.service_id,
            item: row.item_id,
            item_name: row.item_name,
            requested_by: row.requested_by,
            requested_for: row.requested_for,
            needs_approval: row.needs_approval,
            workflow: row.workflow,
            approved_by: row.approved_by,
            notes: row.notes,
            created_at: meridian_chassis::clock::utc(row.created_at),
            updated_at: meridian_chassis::clock::utc(row.updated_at),
            version: row.version,
            history: None,
        }
    }
}

fn detail(conn: &mut AnyConnection, row: RequestRow) -> Result<RequestView, Problem> {
    let history = store::history(conn, &row.id)?
        .into_iter()
        .map(|h| {
            serde_json::json!({
                "at": meridian_chassis::clock::utc(h.at),
                "actor": h.actor,
                "kind": h.kind,
                "details": serde_json::from_str::<Value>(&h.details).unwrap_or(Value::Null),
            })
        })
        .collect();
    let mut view = RequestView::from(row);
    view.history = Some(history);
    Ok(view)
}

/// `POST /v1/requests`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// The catalogue service.
    #[schema(min_length = 1, max_length = 200)]
    pub service: String,
    /// The item (its id within the service).
    #[schema(min_length = 1, max_length = 200)]
    pub item: String,
    /// The item's form, filled in.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, Value>,
    /// For whom (default the caller).
    #[schema(max_length = 200)]
    pub requested_for: Option<String>,
}

/// `POST /v1/requests`: orders an item; its form is checked against the item's fields.
#[utoipa::path(post, path = "/v1/requests", tag = "requests", request_body = NewRequest,
    responses(
        (status = 201, description = "Submitted", body = RequestView, headers(("Location" = String))),
        (status = 400, description = "A bad field or no such item, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn create_request(
    who: Authenticated<Reporter>,
    body: Json<NewRequest>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    text(&mut params, "service", &input.service, 200, true);
    text(&mut params, "item", &input.item, 200, true);
    if let Some(person) = &input.requested_for {
        text(&mut params, "requested_for", person, 200, true);
    }
    checked(params)?;
    let (actor, now) = (
        who.subject.clone(),
        meridian_chassis::clock::to_micros(svc.clock.now()),
    );
    let view = svc
        .db
        .transaction(move |conn| -> Result<RequestView, Problem> {
            let item = store::items(conn, Some(&input.service))?
                .into_iter()
                .find(|i| i.id == input.item)
                .ok_or_else(|| {
                    Problem::invalid(
                        codes::REQUEST_ITEM_NOT_FOUND,
                        vec![InvalidParam::new(
                            "item",
                            format!(
                                "the live catalogue service `{}` offers no item `{}`",
                                input.service, input.item
                            ),
                        )],
                    )
                })?;
            let form: BTreeMap<String, Field> =
                serde_json::from_str(&item.fields).unwrap_or_default();
            meridian_chassis::fields::check(&form, &input.fields, "fields").map_err(
                |(name, reason)| {
                    Problem::invalid(codes::INVALID_BODY, vec![InvalidParam::new(name, reason)])
                },
            )?;
            let row = RequestRow {
                id: Uuid::now_v7().to_string(),
                number: store::next_number(conn)?,
                service_id: item.service_id,
                item_id: item.id,
                item_name: item.name,
                requested_for: input
                    .requested_for
                    .map_or_else(|| actor.clone(), |p| p.trim().to_owned()),
                requested_by: actor.clone(),
                fields: Value::Object(input.fields).to_string(),
                state: RequestState::Submitted.as_str().to_owned(),
                needs_approval: item.needs_approval,
                workflow: item.workflow,
                approved_by: None,
                notes: String::new(),
                created_at: now.naive_utc(),
                updated_at: now.naive_utc(),
                version: 1,
            };
            store::save(conn, None, &row, &actor, "submitted", "", now)?;
            detail(conn, row)
        })
        .await?;
    svc.waker.wake();
    let mut response = HttpResponse::Created().json(&view);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/requests/{}", view.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /v1/requests` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RequestQuery {
    /// In this state.
    pub state: Option<String>,
    /// Of this catalogue service.
    pub service: Option<String>,
    /// The cursor: the last id of the previous page.
    pub after: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// `GET /v1/requests`: agents see every request, anyone else the requests they ordered or that
/// were ordered for them.
#[utoipa::path(get, path = "/v1/requests", tag = "requests", params(RequestQuery),
    responses(
        (status = 200, description = "A page of requests", body = Vec<RequestView>),
        (status = 400, description = "A bad filter, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_requests(
    who: Authenticated<AnyRole>,
    query: Query<RequestQuery>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let limit = page_limit(query.limit)?;
    if let Some(state) = &query.state
        && RequestState::parse(state).is_none()
    {
        return Err(Problem::field(
            "state",
            "must be submitted, approved, in_fulfilment, fulfilled, closed, rejected or cancelled",
        ));
    }
    let filter = Filter {
        state: query.state,
        service: query.service,
        party: (!works_requests(&who) && !who.has(APPROVER)).then(|| who.subject.clone()),
        after: query.after,
    };
    let rows = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(store::list(conn, filter, limit)?) })
        .await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(RequestView::from).collect::<Vec<_>>()))
}

/// Loads a request `who` may see (locked, to change it, when `lock`).
fn visible(
    conn: &mut AnyConnection,
    key: &str,
    who: &Principal,
    lock: bool,
) -> Result<RequestRow, Problem> {
    let row = if lock {
        store::find_for_update(conn, key)?
    } else {
        store::find(conn, key)?
    };
    row.filter(|r| {
        works_requests(who)
            || who.has(APPROVER)
            || r.requested_by == who.subject
            || r.requested_for == who.subject
    })
    .ok_or_else(not_found)
}

/// `GET /v1/requests/{id}`: with its history.
#[utoipa::path(get, path = "/v1/requests/{id}", tag = "requests",
    params(("id" = String, Path, description = "Id or number")),
    responses(
        (status = 200, description = "The request", body = RequestView),
        (status = 404, description = "No such request (or not yours)", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_request(
    who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let (key, principal) = (id.into_inner(), who.principal.clone());
    let view = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            let row = visible(conn, &key, &principal, false)?;
            detail(conn, row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The body of a request's action.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestDecision {
    /// Why (required to reject or cancel).
    pub comment: Option<String>,
    /// What was delivered (required to fulfil).
    pub notes: Option<String>,
}

/// Who moves a request and how: by REST (the workflow's actions refused on a workflow-driven
/// request) or by its fulfilment workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A person, by REST.
    Rest,
    /// The request's fulfilment workflow.
    Workflow,
}

/// Moves request `row` by `action` as `actor`; the request after it.
///
/// # Errors
/// 409 `request_transition_not_allowed` (with the allowed actions) when the state does not allow
/// it or the request's workflow owns the action; 400 naming `comment` or `notes` when required
/// and missing; the database failing.
pub fn transition(
    conn: &mut AnyConnection,
    before: &RequestRow,
    action: RequestAction,
    body: &RequestDecision,
    actor: &str,
    via: Via,
    now: DateTime<Utc>,
) -> Result<RequestRow, Problem> {
    let state = state_of(before);
    let owned_by_workflow = before.workflow.is_some() && action.by_workflow();
    let refused = |detail: String| {
        Problem::new(codes::REQUEST_TRANSITION_NOT_ALLOWED)
            .detail(detail)
            .allowed_actions(
                rest_actions(before)
                    .iter()
                    .map(|a| a.as_str().to_owned())
                    .collect(),
            )
    };
    if owned_by_workflow && via == Via::Rest {
        return Err(refused(format!(
            "{} is approved and fulfilled by its workflow `{}`: complete its task instead",
            before.number,
            before.workflow.as_deref().unwrap_or_default()
        )));
    }
    let Some(next) = state.after(action, before.needs_approval) else {
        return Err(refused(format!(
            "a {} request cannot {}",
            state.as_str(),
            action.as_str()
        )));
    };
    let comment = body
        .comment
        .as_deref()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let notes = body.notes.as_deref().unwrap_or_default().trim().to_owned();
    let mut params = Vec::new();
    let reason_needed = matches!(action, RequestAction::Reject | RequestAction::Cancel);
    text(&mut params, "comment", &comment, 2000, reason_needed);
    text(
        &mut params,
        "notes",
        &notes,
        20_000,
        action == RequestAction::Fulfil,
    );
    checked(params)?;
    let mut after = RequestRow {
        state: next.as_str().to_owned(),
        updated_at: now.naive_utc(),
        version: before.version + 1,
        ..before.clone()
    };
    match action {
        RequestAction::Approve => after.approved_by = Some(actor.to_owned()),
        RequestAction::Fulfil => after.notes.clone_from(&notes),
        _ => {}
    }
    let said = if action == RequestAction::Fulfil {
        &notes
    } else {
        &comment
    };
    store::save(conn, Some(before), &after, actor, action.event(), said, now)?;
    Ok(after)
}

/// Whether `who` may take `action` on `row` by REST: approvers approve and reject, never their
/// own request; agents start and fulfil; agents or the requester cancel and close.
fn may(who: &Principal, row: &RequestRow, action: RequestAction) -> Result<(), Problem> {
    let party = row.requested_by == who.subject || row.requested_for == who.subject;
    let allowed = match action {
        RequestAction::Approve | RequestAction::Reject => {
            if party {
                return Err(Problem::new(codes::SEGREGATION_OF_DUTIES).detail(
                    "whoever ordered a request, or receives it, cannot approve or reject it",
                ));
            }
            who.has(APPROVER)
        }
        RequestAction::Start | RequestAction::Fulfil => works_requests(who),
        RequestAction::Close | RequestAction::Cancel => works_requests(who) || party,
    };
    if allowed {
        Ok(())
    } else {
        Err(Problem::new(codes::FORBIDDEN).detail(format!(
            "your roles do not allow you to {} this request",
            action.as_str()
        )))
    }
}

/// `POST /v1/requests/{id}/{action}`: `approve`, `reject` (with a `comment`), `start`, `fulfil`
/// (with `notes`), `close`, `cancel` (with a `comment`).
#[utoipa::path(post, path = "/v1/requests/{id}/{action}", tag = "requests",
    params(("id" = String, Path, description = "Id or number"),
        ("action" = RequestAction, Path, description = "approve, reject, start, fulfil, close or cancel")),
    request_body = RequestDecision,
    responses(
        (status = 200, description = "Done", body = RequestView),
        (status = 400, description = "An unknown action or a required field missing, named", body = meridian_chassis::problem::ProblemBody),
        (status = 403, description = "Not allowed (role, or the requester approving)", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such request (or not yours)", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "The state, or its workflow, does not allow it", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn act_on_request(
    who: Authenticated<AnyRole>,
    path: web::Path<(String, String)>,
    body: OptionalJson<RequestDecision>,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    let (key, action) = path.into_inner();
    let action = RequestAction::parse(&action).ok_or_else(|| {
        Problem::field(
            "action",
            format!("`{action}` is not one of approve, reject, start, fulfil, close, cancel"),
        )
    })?;
    let body = body.0.unwrap_or_default();
    let (principal, now) = (
        who.principal.clone(),
        meridian_chassis::clock::to_micros(svc.clock.now()),
    );
    let view = svc
        .db
        .transaction(move |conn| -> Result<RequestView, Problem> {
            let before = visible(conn, &key, &principal, true)?;
            may(&principal, &before, action)?;
            let after = transition(
                conn,
                &before,
                action,
                &body,
                &principal.subject,
                Via::Rest,
                now,
            )?;
            detail(conn, after)
        })
        .await?;
    svc.waker.wake();
    Ok(HttpResponse::Ok().json(view))
}

#[cfg(test)]
#[path = "requests_tests.rs"]
mod tests;
