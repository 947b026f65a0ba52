//! Alerts and the incidents they opened: one incident per source and fingerprint, counted, with
//! the alert's last status.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;

use super::schema::alert_links;

/// An alert's link to its incident.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = alert_links)]
pub struct AlertLink {
    /// `alertmanager` or a generic source.
    pub source: String,
    /// The alert's fingerprint.
    pub fingerprint: String,
    /// The incident.
    pub incident_id: String,
    /// `firing` or `resolved`.
    pub status: String,
    /// Notifications received.
    pub count: i32,
    /// First.
    pub first_seen: NaiveDateTime,
    /// Last.
    pub last_seen: NaiveDateTime,
}

/// The link of an alert.
///
/// # Errors
/// A query failing.
pub fn find(
    conn: &mut AnyConnection,
    source: &str,
    fingerprint: &str,
) -> QueryResult<Option<AlertLink>> {
    alert_links::table
        .find((source, fingerprint))
        .select(AlertLink::as_select())
        .first(conn)
        .optional()
}

/// Inserts or replaces a link.
///
/// # Errors
/// A query failing.
pub fn save(conn: &mut AnyConnection, link: &AlertLink) -> QueryResult<()> {
    let changed = diesel::update(alert_links::table.find((&link.source, &link.fingerprint)))
        .set(link)
        .execute(conn)?;
    if changed == 0 {
        diesel::insert_into(alert_links::table)
            .values(link)
            .execute(conn)?;
    }
    Ok(())
}
