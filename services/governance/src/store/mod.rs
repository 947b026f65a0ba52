//! Storage: diesel over [`meridian_chassis::db::AnyConnection`], one transaction per command
//! (see `api`), writing the record, its audit row and its events together. Each record kind has
//! its row and the same three queries (find, save, list), made by [`records!`].

pub mod rows;
pub mod schema;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use meridian_chassis::bus::Envelope;
use meridian_chassis::db::AnyConnection;

pub use meridian_chassis::audit::record_after as audit;

/// The governance service's migrations for both backends.
pub const MIGRATIONS: meridian_chassis::db::Migrations = meridian_chassis::db::Migrations {
    postgres: diesel_migrations::embed_migrations!("migrations/postgres"),
    sqlite: diesel_migrations::embed_migrations!("migrations/sqlite"),
};

/// The CloudEvents source of what this service publishes.
pub const SOURCE: &str = "/meridian/governance";

/// The next human number of `kind`: `prefix` and seven digits.
///
/// # Errors
/// A query failing.
pub fn next_number(conn: &mut AnyConnection, kind: &str, prefix: &str) -> QueryResult<String> {
    meridian_chassis::db::next_number(conn, "gov_counters", kind, prefix)
}

/// Puts an event in the outbox.
///
/// # Errors
/// A query failing.
pub fn publish(
    conn: &mut AnyConnection,
    event_type: &str,
    subject: &str,
    actor: &str,
    payload: Vec<u8>,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    meridian_chassis::outbox::enqueue(
        conn,
        &Envelope::event(SOURCE, event_type, subject, actor, payload, now),
    )
}

/// A JSON text column as a value (`null` when it does not parse).
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}
