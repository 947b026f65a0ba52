//! Routing rules: which event, which audience, which channel.

use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;

use super::schema::nt_rules;

/// A rule.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = nt_rules, treat_none_as_null = true)]
pub struct RuleRow {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Routing-key pattern (`*` one word, `#` any), e.g. `resolution.incident.major_declared`.
    pub event_pattern: String,
    /// `user`, `role`, `group` or `actor` (whoever the event names as its actor).
    pub audience_kind: String,
    /// The user, role or group (empty for `actor`).
    pub audience: String,
    /// `preferred` (each recipient's own), `email`, `slack` or `teams`.
    pub channel: String,
    /// A named chat destination (`notifier.chat`): the message goes there once, not per person.
    pub destination: Option<String>,
    /// Sent during quiet hours too.
    pub urgent: bool,
    /// Subject template (minijinja over `event`).
    pub subject_template: Option<String>,
    /// Body template.
    pub body_template: Option<String>,
    /// Off when false.
    pub enabled: bool,
    /// Who made it.
    pub created_by: String,
    /// When.
    pub created_at: chrono::NaiveDateTime,
}

/// Inserts or replaces `row`.
///
/// # Errors
/// A query failing.
pub fn upsert(conn: &mut AnyConnection, row: &RuleRow) -> QueryResult<()> {
    let updated = diesel::update(nt_rules::table.find(&row.id))
        .set(row)
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(nt_rules::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// One rule.
///
/// # Errors
/// A query failing.
pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<RuleRow>> {
    nt_rules::table
        .find(id)
        .select(RuleRow::as_select())
        .first(conn)
        .optional()
}

/// Every rule, by id.
///
/// # Errors
/// A query failing.
pub fn all(conn: &mut AnyConnection) -> QueryResult<Vec<RuleRow>> {
    nt_rules::table
        .select(RuleRow::as_select())
        .order(nt_rules::id)
        .load(conn)
}

/// Deletes a rule; `false` when there was none.
///
/// # Errors
/// A query failing.
pub fn delete(conn: &mut AnyConnection, id: &str) -> QueryResult<bool> {
    Ok(diesel::delete(nt_rules::table.find(id)).execute(conn)? == 1)
}
