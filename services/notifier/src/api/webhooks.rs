//! `/v1/webhooks`: integrators subscribe outside systems to event types. Each matching event is
//! POSTed as a CloudEvent (structured JSON), signed with the subscription's secret (Standard
//! Webhooks headers: `webhook-id`, `webhook-timestamp`, `webhook-signature`), retried with
//! backoff, and logged. Addresses that are (or resolve to) loopback, private, link-local or
//! otherwise internal are refused unless `notifier.webhooks.allow_private`.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::Authenticated;
use meridian_chassis::problem::{InvalidParam, Json, Query, codes};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{Integrator, page_size, paged, utc, valid_pattern};
use crate::Notifier;
use crate::config::url_of;
use crate::domain::{address, token};
use crate::store::queue::{self, Queue};
use crate::store::webhooks::{self as store, DeliveryRow, WebhookRow};

/// `POST /v1/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// Where to POST (http or https).
    pub url: String,
    /// Routing-key patterns, e.g. `control.change.*`, `resolution.#`.
    pub event_types: Vec<String>,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// The signing secret (at least 24 characters); generated when absent.
    pub secret: Option<String>,
}

/// A subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    /// Id.
    pub id: String,
    /// Where it POSTs.
    pub url: String,
    /// Its patterns.
    pub event_types: Vec<String>,
    /// What it is for.
    pub description: String,
    /// False once deleted.
    pub active: bool,
    /// Who made it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// The signing secret: only in the answer to its creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<WebhookRow> for WebhookView {
    fn from(r: WebhookRow) -> Self {
        Self {
            event_types: r.event_types(),
            id: r.id,
            url: r.url,
            description: r.description,
            active: r.active,
            created_by: r.created_by,
            created_at: utc(r.created_at),
            secret: None,
        }
    }
}

/// A delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Id (the `webhook-id` header).
    pub id: String,
    /// The event (the CloudEvent's id).
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts so far.
    pub attempts: i32,
    /// When it is (next) due.
    pub next_attempt_at: DateTime<Utc>,
    /// The last response's status.
    pub response_status: Option<i32>,
    /// The last failure.
    pub last_error: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The CloudEvent sent.
    #[schema(value_type = Object)]
    pub body: Value,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(r: DeliveryRow) -> Self {
        Self {
            body: serde_json::from_str(&r.body).unwrap_or(Value::Null),
            id: r.id,
            event_id: r.event_id,
            event_type: r.event_type,
            state: r.state,
            attempts: r.attempts,
            next_attempt_at: utc(r.next_attempt_at),
            response_status: r.response_status,
            last_error: r.last_error,
            created_at: utc(r.created_at),
            delivered_at: r.delivered_at.map(utc),
        }
    }
}

/// Why `url` may not be subscribed, when it may not: not http(s), or a host that is or resolves
/// to an internal address (checked again at every delivery).
async fn refused_url(url: &str, allow_private: bool) -> Option<String> {
    let parsed = match url_of(url) {
        Ok(parsed) => parsed,
        Err(reason) => return Some(reason),
    };
    if url.len() > 2000 {
        return Some("must be at most 2000 characters".to_owned());
    }
    if allow_private {
        return None;
    }
    let host = parsed
        .host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_owned();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addresses: Vec<std::net::IpAddr> = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => match tokio::net::lookup_host((host.as_str(), port)).await {
            Ok(found) => found.map(|a| a.ip()).collect(),
            // Not resolvable now: the delivery will check again (and retry).
            Err(_) => Vec::new(),
        },
    };
    addresses.into_iter().find_map(|ip| {
        address::refused(ip).map(|why| {
            format!("{host} is or resolves to {ip} ({why}); internal addresses are not allowed")
        })
    })
}

/// `GET /v1/webhooks`: every subscription (deleted ones too, marked inactive).
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses(
        (status = 200, description = "The subscriptions", body = Vec<WebhookView>),
        (status = 403, description = "Not an integrator", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_webhooks(
    _who: Authenticated<Integrator>,
    svc: web::Data<Notifier>,
) -> Result<HttpResponse, Problem> {
    let rows = svc
        .db
        .run(|conn| -> Result<_, Problem> { Ok(store::all(conn)?) })
        .await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(WebhookView::from).collect::<Vec<_>>()))
}

/// `POST /v1/webhooks`: subscribes; the answer holds the signing secret, once.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = WebhookInput,
    responses(
        (status = 201, description = "Subscribed, with the secret", body = WebhookView),
        (status = 400, description = "A bad field, named (an internal address included)", body = meridian_chassis::problem::ProblemBody),
        (status = 403, description = "Not an integrator", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn create_webhook(
    who: Authenticated<Integrator>,
    body: Json<WebhookInput>,
    svc: web::Data<Notifier>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    if let Some(reason) = refused_url(&input.url, svc.config.webhooks.allow_private).await {
        params.push(InvalidParam::new("url", reason));
    }
    if input.event_types.is_empty() || input.event_types.len() > 50 {
        params.push(InvalidParam::new(
            "event_types",
            "must hold 1 to 50 patterns",
        ));
    }
    for (i, pattern) in input.event_types.iter().enumerate() {
        if !valid_pattern(pattern) {
            params.push(InvalidParam::new(
                format!("event_types[{i}]"),
                "must be dot-separated words (a-z, 0-9, _ or -), `*` or `#`",
            ));
        }
    }
    if input.description.chars().count() > 500 {
        params.push(InvalidParam::new(
            "description",
            "must be at most 500 characters",
        ));
    }
    if let Some(secret) = &input.secret
        && !(24..=200).contains(&secret.len())
    {
        params.push(InvalidParam::new("secret", "must be 24 to 200 characters"));
    }
    if !params.is_empty() {
        return Err(Problem::invalid(codes::INVALID_BODY, params));
    }
    let secret = match input.secret {
        Some(secret) => secret,
        None => format!(
            "whsec_{}",
            token::generate().map_err(|e| Problem::internal(&e))?
        ),
    };
    let now = svc.clock.now();
    let row = WebhookRow {
        id: uuid::Uuid::now_v7().to_string(),
        url: input.url,
        event_types: serde_json::to_string(&input.event_types).unwrap_or_default(),
        secret: secret.clone(),
        description: input.description,
        active: true,
        created_by: who.subject.clone(),
        created_at: now.naive_utc(),
    };
    let saved = row.clone();
    let actor = who.subject.clone();
    svc.db
        .transaction(move |conn| -> Result<(), Problem> {
            store::insert(conn, &saved)?;
            meridian_chassis::audit::record(
                conn,
                meridian_chassis::audit::Entry::<Value, WebhookView> {
                    actor: &actor,
                    action: "webhook.created",
                    entity_type: "webhook",
                    entity_id: &saved.id,
                    before: None,
                    after: Some(&WebhookView::from(saved.clone())),
                    at: now,
                },
            )?;
            Ok(())
        })
        .await?;
    let mut view = WebhookView::from(row);
    view.secret = Some(secret);
    Ok(HttpResponse::Created().json(view))
}

async fn find(svc: &Notifier, id: String) -> Result<WebhookRow, Problem> {
    svc.db
        .run(move |conn| -> Result<_, Problem> { Ok(store::find(conn, &id)?) })
        .await?
        .ok_or_else(|| Problem::new(codes::WEBHOOK_NOT_FOUND))
}

/// `GET /v1/webhooks/{id}`.
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 200, description = "The subscription", body = WebhookView),
        (status = 404, description = "No such subscription", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_webhook(
    _who: Authenticated<Integrator>,
    id: web::Path<String>,
    svc: web::Data<Notifier>,
) -> Result<HttpResponse, Problem> {
    let row = find(&svc, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(WebhookView::from(row)))
}

/// `DELETE /v1/webhooks/{id}`: no more deliveries; the log stays.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such active subscription", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_webhook(
    who: Authenticated<Integrator>,
    id: web::Path<String>,
    svc: web::Data<Notifier>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let actor = who.subject.clone();
    let now = svc.clock.now();
    svc.db
        .transaction(move |conn| -> Result<(), Problem> {
            if !store::deactivate(conn, &id)? {
                return Err(Problem::new(codes::WEBHOOK_NOT_FOUND));
            }
            meridian_chassis::audit::record(
                conn,
                meridian_chassis::audit::Entry::<Value, Value> {
                    actor: &actor,
                    action: "webhook.deleted",
                    entity_type: "webhook",
                    entity_id: &id,
                    before: None,
                    after: None,
                    at: now,
                },
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /v1/webhooks/{id}/deliveries` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// The cursor: the last id of the previous page.
    pub after: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// A page of deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    /// Oldest first.
    pub items: Vec<DeliveryView>,
    /// The next page's cursor.
    pub next: Option<String>,
}

/// `GET /v1/webhooks/{id}/deliveries`: the delivery log.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id"), DeliveryQuery),
    responses(
        (status = 200, description = "A page of the log", body = DeliveryPage),
        (status = 404, description = "No such subscription", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_deliveries(
    _who: Authenticated<Integrator>,
    id: web::Path<String>,
    query: Query<DeliveryQuery>,
    svc: web::Data<Notifier>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let limit = page_size(query.limit, 50, 200)?;
    let hook = find(&svc, id.into_inner()).await?;
    let page = svc
        .db
        .run(move |conn| -> Result<DeliveryPage, Problem> {
            let rows = store::deliveries(conn, &hook.id, query.after.as_deref(), limit + 1)?;
            let (rows, next) = paged(rows, limit, |r| r.id.clone());
            Ok(DeliveryPage {
                items: rows.into_iter().map(DeliveryView::from).collect(),
                next,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `POST /v1/webhooks/{id}/deliveries/{delivery}/retry`: a failed delivery back in the queue.
#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{delivery}/retry", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id"), ("delivery" = String, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "Queued again", body = DeliveryView),
        (status = 404, description = "No such delivery", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Not failed", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn retry_delivery(
    _who: Authenticated<Integrator>,
    path: web::Path<(String, String)>,
    svc: web::Data<Notifier>,
) -> Result<HttpResponse, Problem> {
    let (hook, id) = path.into_inner();
    let now = svc.clock.now();
    let row = svc
        .db
        .transaction(move |conn| -> Result<DeliveryRow, Problem> {
            let row = store::delivery(conn, &id)?
                .filter(|d| d.webhook_id == hook)
                .ok_or_else(|| Problem::new(codes::WEBHOOK_NOT_FOUND))?;
            if !queue::retry(conn, Queue::Deliveries, &id, now)? {
                return Err(Problem::new(codes::NOT_FAILED)
                    .detail(format!("the delivery is {}", row.state)));
            }
            store::delivery(conn, &id)?.ok_or_else(|| Problem::new(codes::WEBHOOK_NOT_FOUND))
        })
        .await?;
    svc.due.notify_one();
    Ok(HttpResponse::Ok().json(DeliveryView::from(row)))
}
