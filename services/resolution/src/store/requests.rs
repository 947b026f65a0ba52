//! Service requests and the request items of the catalogue (read model): rows, history,
//! numbering, and each change saved with its audit row and its event.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;
use meridian_chassis::{audit, outbox, per_backend};
use serde::{Deserialize, Serialize};

use super::schema::{request_history, request_items, requests};

/// A request item of a catalogue service.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = request_items)]
pub struct ItemRow {
    /// The service offering it.
    pub service_id: String,
    /// Its id within the service.
    pub id: String,
    /// Name.
    pub name: String,
    /// What it is.
    pub description: String,
    /// JSON: its form (name → typed field).
    pub fields: String,
    /// The workflow definition that fulfils it.
    pub workflow: Option<String>,
    /// Whether it needs approval before fulfilment.
    pub needs_approval: bool,
}

/// A request item as the catalogue publishes it (`request_items_json`).
#[derive(Debug, Deserialize)]
struct PublishedItem {
    id: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    fields: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    workflow: Option<String>,
    #[serde(default)]
    needs_approval: bool,
}

/// The items of `service` from the catalogue's `request_items_json`.
///
/// # Errors
/// The JSON is not a list of items.
pub fn parse_items(service: &str, json: &str) -> Result<Vec<ItemRow>, serde_json::Error> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    let items: Vec<PublishedItem> = serde_json::from_str(json)?;
    Ok(items
        .into_iter()
        .map(|item| ItemRow {
            service_id: service.to_owned(),
            id: item.id,
            name: item.name,
            description: item.description,
            fields: serde_json::Value::Object(item.fields).to_string(),
            workflow: item.workflow.filter(|w| !w.is_empty()),
            needs_approval: item.needs_approval,
        })
        .collect())
}

/// Replaces the items of `service`.
///
/// # Errors
/// A query failing.
pub fn replace_items(
    conn: &mut AnyConnection,
    service: &str,
    items: &[ItemRow],
) -> QueryResult<()> {
    diesel::delete(request_items::table.filter(request_items::service_id.eq(service)))
        .execute(conn)?;
    if !items.is_empty() {
        per_backend!(conn, c => diesel::insert_into(request_items::table).values(items).execute(c))?;
    }
    Ok(())
}

/// The items on offer: of live catalogue services, optionally of one service.
///
/// # Errors
/// A query failing.
pub fn items(conn: &mut AnyConnection, service: Option<&str>) -> QueryResult<Vec<ItemRow>> {
    use super::schema::catalogue_services;
    let live: Vec<String> = catalogue_services::table
        .filter(catalogue_services::status.eq("live"))
        .select(catalogue_services::id)
        .load(conn)?;
    let mut query = request_items::table
        .filter(request_items::service_id.eq_any(live))
        .select(ItemRow::as_select())
        .order((request_items::service_id, request_items::id))
        .into_boxed();
    if let Some(service) = service {
        query = query.filter(request_items::service_id.eq(service.to_owned()));
    }
    query.load(conn)
}

/// A service request.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = requests, treat_none_as_null = true)]
pub struct RequestRow {
    /// Id.
    pub id: String,
    /// `REQ0001000`.
    pub number: String,
    /// The catalogue service.
    pub service_id: String,
    /// The item ordered.
    pub item_id: String,
    /// Its name when ordered.
    pub item_name: String,
    /// Who ordered it.
    pub requested_by: String,
    /// For whom.
    pub requested_for: String,
    /// JSON: the form as filled in.
    pub fields: String,
    /// Its state.
    pub state: String,
    /// Whether it needs approval.
    pub needs_approval: bool,
    /// The fulfilment workflow, when its item names one.
    pub workflow: Option<String>,
    /// Who approved it.
    pub approved_by: Option<String>,
    /// What was delivered (fulfilment notes).
    pub notes: String,
    /// Ordered.
    pub created_at: NaiveDateTime,
    /// Last changed.
    pub updated_at: NaiveDateTime,
    /// Increases with every change.
    pub version: i64,
}

/// A history entry.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = request_history)]
pub struct HistoryRow {
    /// Id.
    pub id: String,
    /// The request.
    pub request_id: String,
    /// When.
    pub at: NaiveDateTime,
    /// Who.
    pub actor: String,
    /// The event (`submitted`, `approved`, …).
    pub kind: String,
    /// JSON: from, to, comment.
    pub details: String,
}

/// The next request number.
///
/// # Errors
/// A query failing.
pub fn next_number(conn: &mut AnyConnection) -> QueryResult<String> {
    super::next_number(conn, "request", "REQ")
}

/// Saves a request (new when `before` is `None`) with its history entry, audit row and event
/// `resolution.request.<event>`.
///
/// # Errors
/// A query failing.
pub fn save(
    conn: &mut AnyConnection,
    before: Option<&RequestRow>,
    after: &RequestRow,
    actor: &str,
    event: &str,
    comment: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    if before.is_some() {
        diesel::update(requests::table.find(&after.id))
            .set(after)
            .execute(conn)?;
    } else {
        diesel::insert_into(requests::table)
            .values(after)
            .execute(conn)?;
    }
    let details = serde_json::json!({
        "from": before.map(|b| b.state.as_str()),
        "to": after.state,
        "comment": (!comment.is_empty()).then_some(comment),
    });
    diesel::insert_into(request_history::table)
        .values(HistoryRow {
            id: uuid::Uuid::now_v7().to_string(),
            request_id: after.id.clone(),
            at: now.naive_utc(),
            actor: actor.to_owned(),
            kind: event.to_owned(),
            details: details.to_string(),
        })
        .execute(conn)?;
    audit::record(
        conn,
        audit::Entry {
            actor,
            action: &format!("request.{event}"),
            entity_type: "request",
            entity_id: &after.id,
            before,
            after: Some(after),
            at: now,
        },
    )?;
    let payload = meridian_proto::resolution::v1::RequestChanged {
        id: after.id.clone(),
        number: after.number.clone(),
        service: after.service_id.clone(),
        item: after.item_id.clone(),
        item_name: after.item_name.clone(),
        requested_by: after.requested_by.clone(),
        requested_for: after.requested_for.clone(),
        state: after.state.clone(),
        needs_approval: after.needs_approval,
        workflow: after.workflow.clone().unwrap_or_default(),
        fields_json: after.fields.clone(),
        comment: comment.to_owned(),
        version: after.version,
    };
    outbox::enqueue(
        conn,
        &meridian_chassis::bus::Envelope {
            id: uuid::Uuid::now_v7(),
            event_type: format!("resolution.request.{event}"),
            source: "/meridian/resolution".to_owned(),
            subject: after.id.clone(),
            time: now,
            correlation_id: None,
            causation_id: None,
            actor: Some(actor.to_owned()),
            payload: meridian_proto::Message::encode_to_vec(&payload),
        },
    )
}

/// A request by id or number.
///
/// # Errors
/// A query failing.
pub fn find(conn: &mut AnyConnection, key: &str) -> QueryResult<Option<RequestRow>> {
    requests::table
        .filter(requests::id.eq(key).or(requests::number.eq(key)))
        .select(RequestRow::as_select())
        .first(conn)
        .optional()
}

/// A request by id or number, to change it: on PostgreSQL the row stays locked until the
/// transaction ends, so a REST action and a workflow's command on one request run one after the
/// other (SQLite has one writer).
///
/// # Errors
/// A query failing.
pub fn find_for_update(conn: &mut AnyConnection, key: &str) -> QueryResult<Option<RequestRow>> {
    match conn {
        AnyConnection::Postgresql(pg) => requests::table
            .filter(requests::id.eq(key).or(requests::number.eq(key)))
            .select(RequestRow::as_select())
            .for_update()
            .first(pg)
            .optional(),
        AnyConnection::Sqlite(_) => find(conn, key),
    }
}

/// Which requests to list.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// In this state.
    pub state: Option<String>,
    /// Of this catalogue service.
    pub service: Option<String>,
    /// Ordered by or for this user (a requester sees only theirs).
    pub party: Option<String>,
    /// After this id (the cursor).
    pub after: Option<String>,
}

/// Requests by id, filtered, after a cursor.
///
/// # Errors
/// A query failing.
pub fn list(conn: &mut AnyConnection, filter: Filter, limit: i64) -> QueryResult<Vec<RequestRow>> {
    let mut query = requests::table
        .select(RequestRow::as_select())
        .order(requests::id)
        .limit(limit)
        .into_boxed();
    if let Some(state) = filter.state {
        query = query.filter(requests::state.eq(state));
    }
    if let Some(service) = filter.service {
        query = query.filter(requests::service_id.eq(service));
    }
    if let Some(party) = filter.party {
        query = query.filter(
            requests::requested_by
                .eq(party.clone())
                .or(requests::requested_for.eq(party)),
        );
    }
    if let Some(after) = filter.after {
        query = query.filter(requests::id.gt(after));
    }
    query.load(conn)
}

/// The history of a request, oldest first.
///
/// # Errors
/// A query failing.
pub fn history(conn: &mut AnyConnection, request: &str) -> QueryResult<Vec<HistoryRow>> {
    request_history::table
        .filter(request_history::request_id.eq(request))
        .order((request_history::at, request_history::id))
        .select(HistoryRow::as_select())
        .load(conn)
}
