//! `/v1/notifications`: what was sent to whom, with its delivery state; a failed one can be
//! sent again.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated};
use meridian_chassis::problem::{Query, codes};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{NotifierAdmin, page_size, paged, utc};
use crate::Notifier;
use crate::store::notifications::{self as store, Filter, NotificationRow};
use crate::store::queue::{self, Queue};

/// A notification.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    /// Id.
    pub id: String,
    /// The event that caused it.
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// The record it is about.
    pub subject: String,
    /// The user (or `chat:<destination>`).
    pub recipient: String,
    /// `email`, `slack` or `teams`.
    pub channel: String,
    /// The address or destination.
    pub destination: String,
    /// The subject line.
    pub title: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts so far.
    pub attempts: i32,
    /// When it is (next) due.
    pub next_attempt_at: DateTime<Utc>,
    /// The last failure.
    pub last_error: Option<String>,
    /// The action link it carries.
    pub link_id: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Delivered.
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<NotificationRow> for NotificationView {
    fn from(r: NotificationRow) -> Self {
        Self {
            id: r.id,
            event_id: r.event_id,
            event_type: r.event_type,
            subject: r.subject,
            recipient: r.recipient,
            channel: r.channel,
            destination: r.destination,
            title: r.title,
            state: r.state,
            attempts: r.attempts,
            next_attempt_at: utc(r.next_attempt_at),
            last_error: r.last_error,
            link_id: r.link_id,
            created_at: utc(r.created_at),
            delivered_at: r.delivered_at.map(utc),
        }
    }
}

/// Filters of `GET /v1/notifications`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NotificationQuery {
    /// `me` (default), or a user id (notifier admins only), or `all` (admins).
    pub recipient: Option<String>,
    /// `pending`, `delivered` or `failed`.
    pub state: Option<String>,
    /// The record they are about (e.g. a task id).
    pub subject: Option<String>,
    /// The cursor: the last id of the previous page.
    pub after: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// A page of notifications.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    /// Oldest first.
    pub items: Vec<NotificationView>,
    /// The next page's cursor.
    pub next: Option<String>,
}

fn is_admin(who: &meridian_chassis::auth::Principal) -> bool {
    use meridian_chassis::auth::Role as _;
    NotifierAdmin::ANY_OF.iter().any(|r| who.has(r))
}

/// `GET /v1/notifications`.
#[utoipa::path(get, path = "/v1/notifications", tag = "notifications", params(NotificationQuery),
    responses(
        (status = 200, description = "A page", body = NotificationPage),
        (status = 400, description = "A bad filter, named", body = meridian_chassis::problem::ProblemBody),
        (status = 403, description = "Someone else's, without the notifier-admin role", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_notifications(
    who: Authenticated<AnyRole>,
    query: Query<NotificationQuery>,
    svc: web::Data<Notifier>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let limit = page_size(query.limit, 50, 200)?;
    let recipient = match query.recipient.as_deref() {
        None | Some("me") => Some(who.subject.clone()),
        Some("all") if is_admin(&who) => None,
        Some(user) if user == who.subject || is_admin(&who) => Some(user.to_owned()),
        Some(_) => {
            return Err(Problem::new(codes::FORBIDDEN)
                .detail("only a notifier admin sees the notifications of others"));
        }
    };
    if let Some(state) = &query.state
        && !matches!(state.as_str(), "pending" | "delivered" | "failed")
    {
        return Err(Problem::field(
            "state",
            "must be pending, delivered or failed",
        ));
    }
    let filter = Filter {
        recipient,
        state: query.state,
        subject: query.subject,
        after: query.after,
        limit: limit + 1,
    };
    let page = svc
        .db
        .run(move |conn| -> Result<NotificationPage, Problem> {
            let (rows, next) = paged(store::list(conn, &filter)?, limit, |r| r.id.clone());
            Ok(NotificationPage {
                items: rows.into_iter().map(NotificationView::from).collect(),
                next,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

async fn visible(
    svc: &Notifier,
    who: &meridian_chassis::auth::Principal,
    id: String,
) -> Result<NotificationRow, Problem> {
    let row = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(store::find(conn, &id)?) })
        .await?
        .ok_or_else(|| Problem::new(codes::NOTIFICATION_NOT_FOUND))?;
    if row.recipient != who.subject && !is_admin(who) {
        // Someone else's notification is not confirmed to exist.
        return Err(Problem::new(codes::NOTIFICATION_NOT_FOUND));
    }
    Ok(row)
}

/// `GET /v1/notifications/{id}`.
#[utoipa::path(get, path = "/v1/notifications/{id}", tag = "notifications",
    params(("id" = String, Path, description = "Notification id")),
    responses(
        (status = 200, description = "The notification", body = NotificationView),
        (status = 404, description = "No such notification (or someone else's)", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_notification(
    who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<Notifier>,
) -> Result<HttpResponse, Problem> {
    let row = visible(&svc, &who, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(NotificationView::from(row)))
}

/// `POST /v1/notifications/{id}/retry`: a failed notification back in the queue.
#[utoipa::path(post, path = "/v1/notifications/{id}/retry", tag = "notifications",
    params(("id" = String, Path, description = "Notification id")),
    responses(
        (status = 200, description = "Queued again", body = NotificationView),
        (status = 403, description = "Not a notifier admin", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such notification", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Not failed", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn retry_notification(
    _who: Authenticated<NotifierAdmin>,
    id: web::Path<String>,
    svc: web::Data<Notifier>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let now = svc.clock.now();
    let row = svc
        .db
        .transaction(move |conn| -> Result<NotificationRow, Problem> {
            let row = store::find(conn, &id)?
                .ok_or_else(|| Problem::new(codes::NOTIFICATION_NOT_FOUND))?;
            if !queue::retry(conn, Queue::Notifications, &id, now)? {
                return Err(Problem::new(codes::NOT_FAILED)
                    .detail(format!("the notification is {}", row.state)));
            }
            store::find(conn, &id)?.ok_or_else(|| Problem::new(codes::NOTIFICATION_NOT_FOUND))
        })
        .await?;
    svc.due.notify_one();
    Ok(HttpResponse::Ok().json(NotificationView::from(row)))
}
