//! Outbound webhook subscriptions and their delivery log.

use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;

use super::schema::{nt_deliveries, nt_webhooks};

/// A subscription.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = nt_webhooks)]
pub struct WebhookRow {
    /// Id.
    pub id: String,
    /// Where to POST.
    pub url: String,
    /// JSON array of routing-key patterns.
    pub event_types: String,
    /// The HMAC key (shown once, at creation).
    pub secret: String,
    /// What it is for.
    pub description: String,
    /// False once deleted (the delivery log stays).
    pub active: bool,
    /// Who made it.
    pub created_by: String,
    /// When.
    pub created_at: chrono::NaiveDateTime,
}

impl WebhookRow {
    /// The patterns.
    pub fn event_types(&self) -> Vec<String> {
        super::strings(&self.event_types)
    }
}

/// A delivery.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = nt_deliveries)]
pub struct DeliveryRow {
    /// Id (the `webhook-id` header).
    pub id: String,
    /// The subscription.
    pub webhook_id: String,
    /// The event (the CloudEvent's id).
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// The CloudEvent, JSON.
    pub body: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts so far.
    pub attempts: i32,
    /// When it is (next) due.
    pub next_attempt_at: chrono::NaiveDateTime,
    /// The last response's status.
    pub response_status: Option<i32>,
    /// The last failure.
    pub last_error: Option<String>,
    /// Created.
    pub created_at: chrono::NaiveDateTime,
    /// Delivered.
    pub delivered_at: Option<chrono::NaiveDateTime>,
}

/// Adds a subscription.
///
/// # Errors
/// A query failing.
pub fn insert(conn: &mut AnyConnection, row: &WebhookRow) -> QueryResult<()> {
    diesel::insert_into(nt_webhooks::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// One subscription (deleted ones too).
///
/// # Errors
/// A query failing.
pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<WebhookRow>> {
    nt_webhooks::table
        .find(id)
        .select(WebhookRow::as_select())
        .first(conn)
        .optional()
}

/// Every subscription, by id.
///
/// # Errors
/// A query failing.
pub fn all(conn: &mut AnyConnection) -> QueryResult<Vec<WebhookRow>> {
    nt_webhooks::table
        .select(WebhookRow::as_select())
        .order(nt_webhooks::id)
        .load(conn)
}

/// The active subscriptions, by id.
///
/// # Errors
/// A query failing.
pub fn active(conn: &mut AnyConnection) -> QueryResult<Vec<WebhookRow>> {
    nt_webhooks::table
        .filter(nt_webhooks::active.eq(true))
        .select(WebhookRow::as_select())
        .order(nt_webhooks::id)
        .load(conn)
}

/// Deactivates a subscription; `false` when there is no active one.
///
/// # Errors
/// A query failing.
pub fn deactivate(conn: &mut AnyConnection, id: &str) -> QueryResult<bool> {
    Ok(diesel::update(
        nt_webhooks::table
            .filter(nt_webhooks::id.eq(id))
            .filter(nt_webhooks::active.eq(true)),
    )
    .set(nt_webhooks::active.eq(false))
    .execute(conn)?
        == 1)
}

/// Adds deliveries not there yet (a redelivered event adds nothing).
///
/// # Errors
/// A query failing.
pub fn add_deliveries(conn: &mut AnyConnection, rows: &[DeliveryRow]) -> QueryResult<()> {
    for row in rows {
        let exists = nt_deliveries::table
            .filter(nt_deliveries::webhook_id.eq(&row.webhook_id))
            .filter(nt_deliveries::event_id.eq(&row.event_id))
            .select(nt_deliveries::id)
            .first::<String>(conn)
            .optional()?
            .is_some();
        if !exists {
            diesel::insert_into(nt_deliveries::table)
                .values(row)
                .execute(conn)?;
        }
    }
    Ok(())
}

/// One delivery.
///
/// # Errors
/// A query failing.
pub fn delivery(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<DeliveryRow>> {
    nt_deliveries::table
        .find(id)
        .select(DeliveryRow::as_select())
        .first(conn)
        .optional()
}

/// A page of a subscription's deliveries, oldest first.
///
/// # Errors
/// A query failing.
pub fn deliveries(
    conn: &mut AnyConnection,
    webhook_id: &str,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<DeliveryRow>> {
    let mut query = nt_deliveries::table
        .filter(nt_deliveries::webhook_id.eq(webhook_id.to_owned()))
        .select(DeliveryRow::as_select())
        .order(nt_deliveries::id)
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(nt_deliveries::id.gt(after.to_owned()));
    }
    query.load(conn)
}
