//! The consumer inbox: a consumer records each message id in the same transaction as the
//! message's effects, so a redelivered message finds its id and has no second effect.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamp};

use crate::db::AnyConnection;

/// Claims `message_id` for `consumer`; `true` the first time, `false` on every redelivery.
/// Call it first in the transaction that applies the message, and skip the effects on `false`.
///
/// # Errors
/// The insert failing.
pub fn claim(
    conn: &mut AnyConnection,
    consumer: &str,
    message_id: &str,
    at: DateTime<Utc>,
) -> QueryResult<bool> {
    // The same statement on both backends (SQLite >= 3.24 knows ON CONFLICT DO NOTHING).
    let inserted = diesel::sql_query(
        "INSERT INTO inbox (consumer, message_id, handled_at) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind::<Text, _>(consumer)
    .bind::<Text, _>(message_id)
    .bind::<Timestamp, _>(at.naive_utc())
    .execute(conn)?;
    Ok(inserted == 1)
}
