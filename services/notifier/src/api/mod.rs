//! The notifier's routes, in one table, and its OpenAPI document.

pub mod actions;
pub mod directory;
pub mod notifications;
pub mod rules;
pub mod webhooks;

#[cfg(test)]
mod tests;

use chrono::{DateTime, NaiveDateTime, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::Role;
use utoipa::OpenApi;

/// Manages the directory, the routing rules, and sees every notification.
#[derive(Debug)]
pub struct NotifierAdmin;
impl Role for NotifierAdmin {
    const ANY_OF: &'static [&'static str] = &["notifier-admin"];
}

/// Subscribes outside systems to Meridian's events.
#[derive(Debug)]
pub struct Integrator;
impl Role for Integrator {
    const ANY_OF: &'static [&'static str] = &["integrator"];
}

meridian_chassis::routes! {
    "/v1/actions/{token}" => { get: actions::show, post: actions::confirm },
    "/v1/notifications" => { get: notifications::list_notifications },
    "/v1/notifications/{id}" => { get: notifications::get_notification },
    "/v1/notifications/{id}/retry" => { post: notifications::retry_notification },
    "/v1/notification-preferences/me" => { get: directory::get_preferences, put: directory::put_preferences },
    "/v1/recipients" => { get: directory::list_recipients },
    "/v1/recipients/{user}" => { get: directory::get_recipient, put: directory::put_recipient, delete: directory::delete_recipient },
    "/v1/notification-rules" => { get: rules::list_rules, post: rules::create_rule },
    "/v1/notification-rules/{id}" => { get: rules::get_rule, put: rules::put_rule, delete: rules::delete_rule },
    "/v1/webhooks" => { get: webhooks::list_webhooks, post: webhooks::create_webhook },
    "/v1/webhooks/{id}" => { get: webhooks::get_webhook, delete: webhooks::delete_webhook },
    "/v1/webhooks/{id}/deliveries" => { get: webhooks::list_deliveries },
    "/v1/webhooks/{id}/deliveries/{delivery}/retry" => { post: webhooks::retry_delivery },
}

/// The notifier's OpenAPI document. The action-link pages are HTML for people, not part of it.
#[derive(OpenApi)]
#[openapi(
    info(title = "Meridian notifier", description = "Notifications, action links and outbound webhooks"),
    paths(
        notifications::list_notifications, notifications::get_notification,
        notifications::retry_notification,
        directory::get_preferences, directory::put_preferences, directory::list_recipients,
        directory::get_recipient, directory::put_recipient, directory::delete_recipient,
        rules::list_rules, rules::create_rule, rules::get_rule, rules::put_rule, rules::delete_rule,
        webhooks::list_webhooks, webhooks::create_webhook, webhooks::get_webhook,
        webhooks::delete_webhook, webhooks::list_deliveries, webhooks::retry_delivery,
    ),
    tags(
        (name = "notifications", description = "What was sent to whom, and its delivery state"),
        (name = "directory", description = "Recipients, their addresses and preferences"),
        (name = "rules", description = "Routing rules: which event reaches whom, how"),
        (name = "webhooks", description = "Outbound webhooks for integrators"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI 3.1 document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// A UTC column value.
pub(crate) fn utc(at: NaiveDateTime) -> DateTime<Utc> {
    meridian_chassis::clock::utc(at)
}

/// A page size: `limit` (default `default`) within 1..=`max`, or the problem naming it.
///
/// # Errors
/// Out of range.
pub(crate) fn page_size(limit: Option<i64>, default: i64, max: i64) -> Result<i64, Problem> {
    let limit = limit.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(Problem::field("limit", format!("must be 1 to {max}")))
    }
}

/// Keeps the first `limit` of `rows` (fetched with one extra) and the next cursor.
pub(crate) fn paged<T>(
    mut rows: Vec<T>,
    limit: i64,
    id: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = more.then(|| rows.last().map(&id)).flatten();
    (rows, next)
}

/// A routing-key pattern: dot-separated words of `a-z`, `0-9`, `_`, `-`, or `*` / `#`.
pub(crate) fn valid_pattern(pattern: &str) -> bool {
    !pattern.is_empty()
        && pattern.len() <= 200
        && pattern.split('.').all(|word| {
            word == "*"
                || word == "#"
                || (!word.is_empty()
                    && word.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                    }))
        })
}
