//! The two delivery queues (notifications, webhook deliveries) share their life: `pending` with
//! a time of next attempt, taken by a sender under a lease, then `delivered`, retried later, or
//! `failed` after the last attempt. Failed ones can be sent again by hand.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamp};
use meridian_chassis::db::AnyConnection;

use super::naive;

/// A queue's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// `nt_notifications`.
    Notifications,
    /// `nt_deliveries`.
    Deliveries,
}

impl Queue {
    fn table(self) -> &'static str {
        match self {
            Self::Notifications => "nt_notifications",
            Self::Deliveries => "nt_deliveries",
        }
    }
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = Text)]
    id: String,
}

/// Takes up to `limit` due items for this sender: each gets one more attempt counted and is
/// reserved until `now + lease` (a sender that dies leaves them to be taken again then).
/// PostgreSQL skips rows another replica is taking; SQLite has one writer.
///
/// # Errors
/// A query failing.
pub fn claim(
    conn: &mut AnyConnection,
    queue: Queue,
    now: DateTime<Utc>,
    lease: Duration,
    limit: i64,
) -> QueryResult<Vec<String>> {
    let lock = match conn {
        AnyConnection::Postgresql(_) => " FOR UPDATE SKIP LOCKED",
        AnyConnection::Sqlite(_) => "",
    };
    let ids: Vec<Id> = diesel::sql_query(format!(
        "SELECT id FROM {} WHERE state = 'pending' AND next_attempt_at <= $1 \
         ORDER BY next_attempt_at LIMIT $2{lock}",
        queue.table()
    ))
    .bind::<Timestamp, _>(naive(now))
    .bind::<BigInt, _>(limit)
    .load(conn)?;
    for id in &ids {
        diesel::sql_query(format!(
            "UPDATE {} SET attempts = attempts + 1, next_attempt_at = $1 WHERE id = $2",
            queue.table()
        ))
        .bind::<Timestamp, _>(naive(now + lease))
        .bind::<Text, _>(&id.id)
        .execute(conn)?;
    }
    Ok(ids.into_iter().map(|i| i.id).collect())
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Sent; the receiver accepted it.
    Delivered {
        /// The HTTP status, for webhooks.
        status: Option<i32>,
    },
    /// Not sent; try again at `at`.
    Retry {
        /// When.
        at: DateTime<Utc>,
        /// Why it failed.
        error: String,
        /// The HTTP status, when there was a response.
        status: Option<i32>,
    },
    /// Not sent, and no attempt is left (or it can never succeed).
    Failed {
        /// Why.
        error: String,
        /// The HTTP status, when there was a response.
        status: Option<i32>,
    },
}

/// Records an attempt's result.
///
/// # Errors
/// A query failing.
pub fn record(
    conn: &mut AnyConnection,
    queue: Queue,
    id: &str,
    attempt: &Attempt,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let (state, next, error, delivered, status) = match attempt {
        Attempt::Delivered { status } => ("delivered", now, None, Some(naive(now)), *status),
        Attempt::Retry { at, error, status } => {
            ("pending", *at, Some(error.clone()), None, *status)
        }
        Attempt::Failed { error, status } => ("failed", now, Some(error.clone()), None, *status),
    };
    const SET: &str = "state = $1, next_attempt_at = $2, last_error = $3, delivered_at = $4";
    match queue {
        Queue::Notifications => {
            diesel::sql_query(format!("UPDATE nt_notifications SET {SET} WHERE id = $5"))
                .bind::<Text, _>(state)
                .bind::<Timestamp, _>(naive(next))
                .bind::<Nullable<Text>, _>(error)
                .bind::<Nullable<Timestamp>, _>(delivered)
                .bind::<Text, _>(id)
                .execute(conn)?
        }
        Queue::Deliveries => diesel::sql_query(format!(
            "UPDATE nt_deliveries SET {SET}, response_status = $5 WHERE id = $6"
        ))
        .bind::<Text, _>(state)
        .bind::<Timestamp, _>(naive(next))
        .bind::<Nullable<Text>, _>(error)
        .bind::<Nullable<Timestamp>, _>(delivered)
        .bind::<Nullable<Integer>, _>(status)
        .bind::<Text, _>(id)
        .execute(conn)?,
    };
    Ok(())
}

/// Puts a failed item back in the queue, due now, with its attempts reset; `false` when it is
/// not failed.
///
/// # Errors
/// A query failing.
pub fn retry(
    conn: &mut AnyConnection,
    queue: Queue,
    id: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let changed = diesel::sql_query(format!(
        "UPDATE {} SET state = 'pending', attempts = 0, next_attempt_at = $1 \
         WHERE id = $2 AND state = 'failed'",
        queue.table()
    ))
    .bind::<Timestamp, _>(naive(now))
    .bind::<Text, _>(id)
    .execute(conn)?;
    Ok(changed == 1)
}
