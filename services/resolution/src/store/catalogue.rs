//! The read model of the service catalogue: which services exist and how critical they are.

use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;

use super::schema::catalogue_services;

/// One catalogue service.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = catalogue_services)]
pub struct ServiceRow {
    /// Catalogue id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `low`, `medium`, `high` or `critical`.
    pub criticality: String,
    /// `pipeline`, `live` or `retired`.
    pub status: String,
    /// The publisher's revision; older messages are ignored.
    pub revision: i64,
}

/// Inserts or replaces a service unless what is stored is newer; `true` when it was applied.
///
/// # Errors
/// A query failing.
pub fn upsert(conn: &mut AnyConnection, row: &ServiceRow) -> QueryResult<bool> {
    let current: Option<i64> = catalogue_services::table
        .find(&row.id)
        .select(catalogue_services::revision)
        .first(conn)
        .optional()?;
    match current {
        None => {
            diesel::insert_into(catalogue_services::table)
                .values(row)
                .execute(conn)?;
            Ok(true)
        }
        Some(revision) if revision < row.revision => {
            diesel::update(catalogue_services::table.find(&row.id))
                .set(row)
                .execute(conn)?;
            Ok(true)
        }
        Some(_) => Ok(false),
    }
}

/// The service with this id.
///
/// # Errors
/// A query failing.
pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<ServiceRow>> {
    catalogue_services::table
        .find(id)
        .select(ServiceRow::as_select())
        .first(conn)
        .optional()
}
