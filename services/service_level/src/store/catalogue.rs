//! The service catalogue: each change audited and published (`service_level.service.published`)
//! in the same transaction, for the services that keep a read model of it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use meridian_chassis::bus::Envelope;
use meridian_chassis::db::AnyConnection;
use meridian_chassis::{audit, outbox};
use meridian_proto::Message;
use meridian_proto::service_level::v1::{Criticality, ServicePublished, ServiceStatus};
use serde::Serialize;

use super::SOURCE;
use super::schema::sl_services;

/// A catalogue entry.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = sl_services)]
pub struct ServiceRow {
    /// Id (a short name, e.g. `email`).
    pub id: String,
    /// Name.
    pub name: String,
    /// Accountable owner.
    pub owner: String,
    /// What it is.
    pub description: String,
    /// The outcome it delivers to its customers.
    pub outcome: String,
    /// JSON array of customers.
    pub customers: String,
    /// JSON array of the services it depends on.
    pub depends_on: String,
    /// JSON array of the CIs it is made of.
    pub configuration_items: String,
    /// `low`, `medium`, `high` or `critical`.
    pub criticality: String,
    /// `pipeline`, `live` or `retired`.
    pub status: String,
    /// JSON array of request items.
    pub request_items: String,
    /// Increases with every change.
    pub revision: i64,
    /// Created.
    pub created_at: chrono::NaiveDateTime,
    /// Last changed.
    pub updated_at: chrono::NaiveDateTime,
}

fn published(row: &ServiceRow, actor: &str, now: DateTime<Utc>) -> Envelope {
    let criticality = match row.criticality.as_str() {
        "low" => Criticality::Low,
        "medium" => Criticality::Medium,
        "high" => Criticality::High,
        _ => Criticality::Critical,
    };
    let status = match row.status.as_str() {
        "pipeline" => ServiceStatus::Pipeline,
        "live" => ServiceStatus::Live,
        _ => ServiceStatus::Retired,
    };
    Envelope {
        id: uuid::Uuid::now_v7(),
        event_type: "service_level.service.published".to_owned(),
        source: SOURCE.to_owned(),
        subject: row.id.clone(),
        time: now,
        correlation_id: None,
        causation_id: None,
        actor: Some(actor.to_owned()),
        payload: ServicePublished {
            id: row.id.clone(),
            name: row.name.clone(),
            owner: row.owner.clone(),
            criticality: criticality.into(),
            status: status.into(),
            revision: row.revision,
            request_items_json: row.request_items.clone(),
            description: row.description.clone(),
        }
        .encode_to_vec(),
    }
}

/// Saves an entry (new, or changed from `before`), audits and publishes it.
///
/// # Errors
/// A query failing.
pub fn save(
    conn: &mut AnyConnection,
    before: Option<&ServiceRow>,
    row: &ServiceRow,
    actor: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    if before.is_some() {
        diesel::update(sl_services::table.find(&row.id))
            .set(row)
            .execute(conn)?;
    } else {
        diesel::insert_into(sl_services::table)
            .values(row)
            .execute(conn)?;
    }
    audit::record(
        conn,
        audit::Entry {
            actor,
            action: if before.is_some() {
                "service.updated"
            } else {
                "service.created"
            },
            entity_type: "service",
            entity_id: &row.id,
            before,
            after: Some(row),
            at: now,
        },
    )?;
    outbox::enqueue(conn, &published(row, actor, now))
}

/// One entry.
///
/// # Errors
/// A query failing.
pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<ServiceRow>> {
    sl_services::table
        .find(id)
        .select(ServiceRow::as_select())
        .first(conn)
        .optional()
}

/// Every entry, by id (optionally of one status).
///
/// # Errors
/// A query failing.
pub fn list(conn: &mut AnyConnection, status: Option<&str>) -> QueryResult<Vec<ServiceRow>> {
    let mut query = sl_services::table
        .select(ServiceRow::as_select())
        .order(sl_services::id)
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(sl_services::status.eq(status.to_owned()));
    }
    query.load(conn)
}
