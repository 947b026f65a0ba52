//! The directory of people the notifier reaches, with their preferences.

use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;

use super::schema::nt_recipients;
use super::strings;

/// A recipient.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = nt_recipients, treat_none_as_null = true)]
pub struct RecipientRow {
    /// The user id (the token's subject).
    pub user_id: String,
    /// Their name.
    pub display_name: String,
    /// E-mail address.
    pub email: Option<String>,
    /// A personal Slack incoming webhook.
    pub slack_webhook: Option<String>,
    /// A personal Teams incoming webhook.
    pub teams_webhook: Option<String>,
    /// JSON array of roles.
    pub roles: String,
    /// JSON array of groups.
    pub groups: String,
    /// Preferred channel: `email`, `slack`, `teams` or `none`.
    pub channel: String,
    /// Quiet hours start, `HH:MM` local.
    pub quiet_start: Option<String>,
    /// Quiet hours end.
    pub quiet_end: Option<String>,
    /// IANA time zone.
    pub timezone: String,
    /// False once removed: nothing more is sent, and their links stop working.
    pub active: bool,
    /// Last change.
    pub updated_at: chrono::NaiveDateTime,
}

impl RecipientRow {
    /// Their roles.
    pub fn roles(&self) -> Vec<String> {
        strings(&self.roles)
    }

    /// Their groups.
    pub fn groups(&self) -> Vec<String> {
        strings(&self.groups)
    }
}

/// Inserts or replaces `row`.
///
/// # Errors
/// A query failing.
pub fn upsert(conn: &mut AnyConnection, row: &RecipientRow) -> QueryResult<()> {
    let updated = diesel::update(nt_recipients::table.find(&row.user_id))
        .set(row)
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(nt_recipients::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// One recipient.
///
/// # Errors
/// A query failing.
pub fn find(conn: &mut AnyConnection, user: &str) -> QueryResult<Option<RecipientRow>> {
    nt_recipients::table
        .find(user)
        .select(RecipientRow::as_select())
        .first(conn)
        .optional()
}

/// A page of recipients by id.
///
/// # Errors
/// A query failing.
pub fn list(
    conn: &mut AnyConnection,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<RecipientRow>> {
    let mut query = nt_recipients::table
        .select(RecipientRow::as_select())
        .order(nt_recipients::user_id)
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(nt_recipients::user_id.gt(after.to_owned()));
    }
    query.load(conn)
}

/// The active recipients who hold any of `roles` or belong to any of `groups`.
///
/// # Errors
/// A query failing.
pub fn holding(
    conn: &mut AnyConnection,
    roles: &[String],
    groups: &[String],
) -> QueryResult<Vec<RecipientRow>> {
    if roles.is_empty() && groups.is_empty() {
        return Ok(Vec::new());
    }
    let all: Vec<RecipientRow> = nt_recipients::table
        .filter(nt_recipients::active.eq(true))
        .select(RecipientRow::as_select())
        .order(nt_recipients::user_id)
        .load(conn)?;
    Ok(all
        .into_iter()
        .filter(|r| {
            r.roles().iter().any(|x| roles.contains(x))
                || r.groups().iter().any(|x| groups.contains(x))
        })
        .collect())
}
