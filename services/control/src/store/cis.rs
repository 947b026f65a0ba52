//! CIs and relations: each change is written with its audit row (before and after, the CI's
//! history) and, for CIs, its `control.ci.changed` event.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use meridian_chassis::audit;
use meridian_chassis::bus::Envelope;
use meridian_chassis::db::AnyConnection;
use meridian_chassis::outbox;
use meridian_proto::Message;
use meridian_proto::control::v1::ConfigurationItemChanged;
use serde::Serialize;
use uuid::Uuid;

use super::schema::{ci_relations, cis};

/// Where events come from.
pub const SOURCE: &str = "/meridian/control";

/// A CI row.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Queryable,
    Selectable,
    Insertable,
    AsChangeset,
    Serialize,
    serde::Deserialize,
)]
#[diesel(table_name = cis)]
pub struct CiRow {
    /// Id.
    pub id: String,
    /// Its type (`control.ci_types`).
    pub ci_type: String,
    /// Name.
    pub name: String,
    /// The user accountable for it.
    pub owner: String,
    /// `planned`, `in_service` or `retired`.
    pub status: String,
    /// e.g. `production`.
    pub environment: String,
    /// `low` … `critical`.
    pub criticality: String,
    /// JSON object.
    pub attributes: String,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Last changed.
    pub updated_at: NaiveDateTime,
    /// Increases with every change (the ETag, and the event's revision).
    pub version: i64,
}

/// Who acts, when, on which request.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The token's subject.
    pub actor: &'a str,
    /// When.
    pub now: DateTime<Utc>,
    /// The request's trace id.
    pub correlation_id: Option<&'a str>,
}

fn changed(row: &CiRow, ctx: Context<'_>) -> Envelope {
    Envelope {
        id: Uuid::now_v7(),
        event_type: "control.ci.changed".to_owned(),
        source: SOURCE.to_owned(),
        subject: row.id.clone(),
        time: ctx.now,
        correlation_id: ctx.correlation_id.map(str::to_owned),
        causation_id: None,
        actor: Some(ctx.actor.to_owned()),
        payload: ConfigurationItemChanged {
            id: row.id.clone(),
            name: row.name.clone(),
            class: row.ci_type.clone(),
            owner: row.owner.clone(),
            status: row.status.clone(),
            revision: row.version,
        }
        .encode_to_vec(),
    }
}

/// Stores a new CI, its audit row and its event.
///
/// # Errors
/// A query failing.
pub fn insert(conn: &mut AnyConnection, row: &CiRow, ctx: Context<'_>) -> QueryResult<()> {
    diesel::insert_into(cis::table).values(row).execute(conn)?;
    audit::record(
        conn,
        audit::Entry::<CiRow, CiRow> {
            actor: ctx.actor,
            action: "ci.created",
            entity_type: "ci",
            entity_id: &row.id,
            before: None,
            after: Some(row),
            at: ctx.now,
        },
    )?;
    outbox::enqueue(conn, &changed(row, ctx))
}

/// Saves a changed CI, its audit row (before and after) and its event.
///
/// # Errors
/// A query failing.
pub fn update(
    conn: &mut AnyConnection,
    before: &CiRow,
    after: &CiRow,
    ctx: Context<'_>,
) -> QueryResult<()> {
    diesel::update(cis::table.find(&after.id))
        .set(after)
        .execute(conn)?;
    audit::record(
        conn,
        audit::Entry {
            actor: ctx.actor,
            action: "ci.updated",
            entity_type: "ci",
            entity_id: &after.id,
            before: Some(before),
            after: Some(after),
            at: ctx.now,
        },
    )?;
    outbox::enqueue(conn, &changed(after, ctx))
}

/// Loads a CI to change it (locked until the transaction ends on PostgreSQL).
///
/// # Errors
/// A query failing.
pub fn load_for_update(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<CiRow>> {
    match conn {
        AnyConnection::Postgresql(pg) => cis::table
            .find(id)
            .select(CiRow::as_select())
            .for_update()
            .first(pg)
            .optional(),
        AnyConnection::Sqlite(sqlite) => cis::table
            .find(id)
            .select(CiRow::as_select())
            .first(sqlite)
            .optional(),
    }
}

/// Loads a CI.
///
/// # Errors
/// A query failing.
pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<CiRow>> {
    cis::table
        .find(id)
        .select(CiRow::as_select())
        .first(conn)
        .optional()
}

/// Which CIs to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Of this type.
    pub ci_type: Option<String>,
    /// Owned by.
    pub owner: Option<String>,
    /// In this status.
    pub status: Option<String>,
    /// Whose name contains this (case-insensitive on PostgreSQL, ASCII case-insensitive on SQLite).
    pub name: Option<String>,
    /// After this id (cursor).
    pub after: Option<String>,
    /// At most.
    pub limit: i64,
}

/// CIs matching `filter`, by id.
///
/// # Errors
/// A query failing.
pub fn list(conn: &mut AnyConnection, filter: &Filter) -> QueryResult<Vec<CiRow>> {
    let mut query = cis::table
        .select(CiRow::as_select())
        .order(cis::id.asc())
        .limit(filter.limit)
        .into_boxed::<<AnyConnection as diesel::Connection>::Backend>();
    if let Some(t) = &filter.ci_type {
        query = query.filter(cis::ci_type.eq(t.clone()));
    }
    if let Some(owner) = &filter.owner {
        query = query.filter(cis::owner.eq(owner.clone()));
    }
    if let Some(status) = &filter.status {
        query = query.filter(cis::status.eq(status.clone()));
    }
    if let Some(name) = &filter.name {
        let escaped = name
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        query = query.filter(cis::name.like(format!("%{escaped}%")).escape('\\'));
    }
    if let Some(after) = &filter.after {
        query = query.filter(cis::id.gt(after.clone()));
    }
    query.load(conn)
}

/// A relation row.
#[derive(
    Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, utoipa::ToSchema,
)]
#[diesel(table_name = ci_relations)]
pub struct RelationRow {
    /// Id.
    pub id: String,
    /// The CI it starts from.
    pub source: String,
    /// `depends_on`, `runs_on`, `hosted_by`, `connects_to` or `part_of`.
    pub kind: String,
    /// The CI it points to.
    pub target: String,
    /// Who recorded it.
    pub created_by: String,
    /// When.
    #[serde(serialize_with = "meridian_chassis::fields::utc")]
    pub created_at: NaiveDateTime,
}

/// Records a relation and its audit row (on the source CI's trail).
///
/// # Errors
/// A query failing (a duplicate is a unique violation).
pub fn relate(conn: &mut AnyConnection, row: &RelationRow, ctx: Context<'_>) -> QueryResult<()> {
    diesel::insert_into(ci_relations::table)
        .values(row)
        .execute(conn)?;
    audit::record(
        conn,
        audit::Entry::<RelationRow, RelationRow> {
            actor: ctx.actor,
            action: "ci.related",
            entity_type: "ci",
            entity_id: &row.source,
            before: None,
            after: Some(row),
            at: ctx.now,
        },
    )
}

/// Whether `source <kind> target` exists.
///
/// # Errors
/// A query failing.
pub fn related(
    conn: &mut AnyConnection,
    source: &str,
    kind: &str,
    target: &str,
) -> QueryResult<bool> {
    let found: Option<String> = ci_relations::table
        .filter(ci_relations::source.eq(source))
        .filter(ci_relations::kind.eq(kind))
        .filter(ci_relations::target.eq(target))
        .select(ci_relations::id)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// Removes a relation; `false` when there is none of that id.
///
/// # Errors
/// A query failing.
pub fn unrelate(conn: &mut AnyConnection, id: &str, ctx: Context<'_>) -> QueryResult<bool> {
    let row: Option<RelationRow> = ci_relations::table
        .find(id)
        .select(RelationRow::as_select())
        .first(conn)
        .optional()?;
    let Some(row) = row else {
        return Ok(false);
    };
    diesel::delete(ci_relations::table.find(id)).execute(conn)?;
    audit::record(
        conn,
        audit::Entry::<RelationRow, RelationRow> {
            actor: ctx.actor,
            action: "ci.unrelated",
            entity_type: "ci",
            entity_id: &row.source,
            before: Some(&row),
            after: None,
            at: ctx.now,
        },
    )?;
    Ok(true)
}

/// A CI's relations, both ways.
///
/// # Errors
/// A query failing.
pub fn relations_of(conn: &mut AnyConnection, id: &str) -> QueryResult<Vec<RelationRow>> {
    ci_relations::table
        .filter(ci_relations::source.eq(id).or(ci_relations::target.eq(id)))
        .order(ci_relations::id.asc())
        .select(RelationRow::as_select())
        .load(conn)
}
