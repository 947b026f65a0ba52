//! Notifications: one per event, recipient and channel, with its delivery state.

use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;

use super::schema::nt_notifications;

/// A notification.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = nt_notifications)]
pub struct NotificationRow {
    /// Id.
    pub id: String,
    /// The event that caused it.
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// Its subject (the record it is about).
    pub subject: String,
    /// The user it is for (or `chat:<destination>` for a shared chat channel).
    pub recipient: String,
    /// `email`, `slack` or `teams`.
    pub channel: String,
    /// The address: an e-mail address, or a destination name or `personal`.
    pub destination: String,
    /// `task`, `task_reminder`, `task_escalated` or `event`.
    pub template: String,
    /// The subject line.
    pub title: String,
    /// JSON: what the body is rendered from when it is sent.
    pub context: String,
    /// The action link it carries.
    pub link_id: Option<String>,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts so far.
    pub attempts: i32,
    /// When it is (next) due: after quiet hours, or after a failure's backoff.
    pub next_attempt_at: chrono::NaiveDateTime,
    /// The last failure.
    pub last_error: Option<String>,
    /// Created.
    pub created_at: chrono::NaiveDateTime,
    /// Delivered.
    pub delivered_at: Option<chrono::NaiveDateTime>,
}

/// Inserts what is not there yet (a redelivered event adds nothing).
///
/// # Errors
/// A query failing.
pub fn insert_new(conn: &mut AnyConnection, rows: &[NotificationRow]) -> QueryResult<usize> {
    let mut inserted = 0;
    for row in rows {
        let exists = nt_notifications::table
            .filter(nt_notifications::event_id.eq(&row.event_id))
            .filter(nt_notifications::recipient.eq(&row.recipient))
            .filter(nt_notifications::channel.eq(&row.channel))
            .filter(nt_notifications::destination.eq(&row.destination))
            .select(nt_notifications::id)
            .first::<String>(conn)
            .optional()?
            .is_some();
        if !exists {
            inserted += diesel::insert_into(nt_notifications::table)
                .values(row)
                .execute(conn)?;
        }
    }
    Ok(inserted)
}

/// One notification.
///
/// # Errors
/// A query failing.
pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<NotificationRow>> {
    nt_notifications::table
        .find(id)
        .select(NotificationRow::as_select())
        .first(conn)
        .optional()
}

/// Filters of [`list`].
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Only this recipient's.
    pub recipient: Option<String>,
    /// Only in this state.
    pub state: Option<String>,
    /// Only about this subject.
    pub subject: Option<String>,
    /// After this id (the cursor).
    pub after: Option<String>,
    /// Page size.
    pub limit: i64,
}

/// A page of notifications, oldest first (ids are time-ordered).
///
/// # Errors
/// A query failing.
pub fn list(conn: &mut AnyConnection, filter: &Filter) -> QueryResult<Vec<NotificationRow>> {
    let mut query = nt_notifications::table
        .select(NotificationRow::as_select())
        .order(nt_notifications::id)
        .limit(filter.limit)
        .into_boxed();
    if let Some(recipient) = &filter.recipient {
        query = query.filter(nt_notifications::recipient.eq(recipient.clone()));
    }
    if let Some(state) = &filter.state {
        query = query.filter(nt_notifications::state.eq(state.clone()));
    }
    if let Some(subject) = &filter.subject {
        query = query.filter(nt_notifications::subject.eq(subject.clone()));
    }
    if let Some(after) = &filter.after {
        query = query.filter(nt_notifications::id.gt(after.clone()));
    }
    query.load(conn)
}
