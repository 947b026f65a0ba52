//! The transactional outbox and its relay.
//!
//! A service writes the events a change causes into `outbox` in the same transaction as the
//! change ([`enqueue`]), so an event exists if and only if its change committed. The [`Relay`]
//! publishes committed rows in order, waits for the broker's confirms, and only then deletes
//! them: a broker outage leaves the rows in place and the relay drains the backlog once the
//! broker is back. Delivery is at least once; consumers deduplicate with the inbox.
//!
//! One relay publishes per database: on PostgreSQL it holds a session advisory lock on a
//! connection of its own (a second replica waits and takes over when the first dies); SQLite is
//! only used by one process.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use secrecy::SecretString;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::bus::{Bus, Envelope};
use crate::db::{AnyConnection, Db, DbError};
use crate::schema::outbox;
use crate::telemetry::Metrics;

/// Writes `envelope` to the outbox; call it inside the transaction of the change it reports.
///
/// # Errors
/// The insert failing (the transaction then rolls back).
pub fn enqueue(conn: &mut AnyConnection, envelope: &Envelope) -> QueryResult<()> {
    enqueue_all(conn, std::slice::from_ref(envelope))
}

/// Writes several envelopes to the outbox in one statement, in order; call it inside the
/// transaction of the changes they report.
///
/// # Errors
/// The insert failing (the transaction then rolls back).
pub fn enqueue_all(conn: &mut AnyConnection, envelopes: &[Envelope]) -> QueryResult<()> {
    if envelopes.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = envelopes
        .iter()
        .map(|envelope| {
            (
                outbox::message_id.eq(envelope.id.to_string()),
                outbox::event_type.eq(&envelope.event_type),
                outbox::source.eq(&envelope.source),
                outbox::subject.eq(&envelope.subject),
                outbox::occurred_at.eq(envelope.time.naive_utc()),
                outbox::correlation_id.eq(&envelope.correlation_id),
                outbox::causation_id.eq(&envelope.causation_id),
                outbox::actor.eq(&envelope.actor),
                outbox::payload.eq(&envelope.payload),
            )
        })
        .collect();
    crate::per_backend!(conn, c => diesel::insert_into(outbox::table).values(&rows).execute(c))?;
    Ok(())
}

type Row = (
    i64,
    String,
    String,
    String,
    String,
    chrono::NaiveDateTime,
    Option<String>,
    Option<String>,
    Option<String>,
    Vec<u8>,
);

fn to_envelope(row: Row) -> (i64, Envelope) {
    let (seq, id, event_type, source, subject, at, correlation_id, causation_id, actor, payload) =
        row;
    let envelope = Envelope {
        id: Uuid::parse_str(&id).unwrap_or_else(|_| Uuid::nil()),
        event_type,
        source,
        subject,
        time: DateTime::<Utc>::from_naive_utc_and_offset(at, Utc),
        correlation_id,
        causation_id,
        actor,
        payload,
    };
    (seq, envelope)
}

/// The oldest unpublished rows.
///
/// # Errors
/// The query failing.
pub fn pending(conn: &mut AnyConnection, limit: i64) -> QueryResult<Vec<(i64, Envelope)>> {
    let rows: Vec<Row> = outbox::table
        .order(outbox::seq.asc())
        .limit(limit)
        .load(conn)?;
    Ok(rows.into_iter().map(to_envelope).collect())
}

/// How many rows wait to be published.
///
/// # Errors
/// The query failing.
pub fn backlog(conn: &mut AnyConnection) -> QueryResult<i64> {
    outbox::table.count().get_result(conn)
}

/// Wakes the relay after a commit so events go out at once instead of at the next poll.
#[derive(Debug, Clone, Default)]
pub struct Waker(Arc<Notify>);

impl Waker {
    /// Tells the relay there is something to publish.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Publishes a database's outbox.
#[derive(Debug)]
pub struct Relay {
    /// The service whose database this is (for metrics and logs).
    pub service: &'static str,
    /// The database.
    pub db: Db,
    /// The database URL, for the PostgreSQL lock connection.
    pub url: SecretString,
    /// Where to publish.
    pub bus: Bus,
    /// Rows per round.
    pub batch_size: i64,
    /// Sleep between polls when not woken.
    pub poll_interval: Duration,
    /// Woken after commits.
    pub waker: Waker,
    /// Metrics.
    pub metrics: Metrics,
}

impl Relay {
    /// Runs forever: publishes what is pending, then waits for a wake-up or the poll interval.
    pub async fn run(self) {
        let backlog_gauge = self
            .metrics
            .outbox_backlog
            .with_label_values(&[self.service]);
        let published = self
            .metrics
            .outbox_published
            .with_label_values(&[self.service]);
        let mut lock =
            crate::leader::AdvisoryLock::new(self.db.backend(), self.url.clone(), LOCK_KEY);
        let mut delay = Duration::from_millis(100);
        loop {
            if !lock.hold().await {
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
            let limit = self.batch_size;
            let batch = self
                .db
                .run(move |conn| pending(conn, limit).map_err(DbError::from))
                .await;
            let batch = match batch {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(service = self.service, %error, "outbox read failed");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            if batch.is_empty() {
                backlog_gauge.set(0);
                let _ = tokio::time::timeout(self.poll_interval, self.waker.0.notified()).await;
                continue;
            }
            let (seqs, messages): (Vec<i64>, Vec<Envelope>) = batch.into_iter().unzip();
            if let Err(error) = self.bus.publish(&messages).await {
                tracing::warn!(service = self.service, %error, backlog = messages.len(), "outbox publish failed; will retry");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
                continue;
            }
            delay = Duration::from_millis(100);
            let count = messages.len();
            let full = i64::try_from(count).unwrap_or(i64::MAX) >= limit;
            let db = self.db.clone();
            let deleted = self
                .db
                .write(move |conn| {
                    db.inject("outbox mark")?;
                    diesel::delete(outbox::table.filter(outbox::seq.eq_any(seqs))).execute(conn)?;
                    // A batch that was not full left nothing behind it (what commits meanwhile
                    // is the next batch); only a full one is followed by a count, which reads
                    // the whole table.
                    if full {
                        backlog(conn).map_err(DbError::from)
                    } else {
                        Ok(0)
                    }
                })
                .await;
            match deleted {
                Ok(left) => {
                    published.inc_by(u64::try_from(count).unwrap_or(0));
                    backlog_gauge.set(left);
                }
                // Published but not marked: they go out again, and consumers deduplicate.
                Err(error) => tracing::warn!(service = self.service, %error, "outbox mark failed"),
            }
        }
    }
}

/// The advisory lock key of the outbox relay ("meridian" in ASCII).
const LOCK_KEY: i64 = 0x6d65_7269_6469_616e;
