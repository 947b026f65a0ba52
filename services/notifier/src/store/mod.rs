//! Storage: diesel over [`meridian_chassis::db::AnyConnection`]. Functions are synchronous and
//! run inside the caller's transaction.

pub mod links;
pub mod notifications;
pub mod queue;
pub mod recipients;
pub mod rules;
pub mod schema;
pub mod webhooks;

use chrono::{DateTime, NaiveDateTime, Utc};

/// The notifier's migrations for both backends.
pub const MIGRATIONS: meridian_chassis::db::Migrations = meridian_chassis::db::Migrations {
    postgres: diesel_migrations::embed_migrations!("migrations/postgres"),
    sqlite: diesel_migrations::embed_migrations!("migrations/sqlite"),
};

/// A UTC instant as the columns keep it.
pub fn naive(at: DateTime<Utc>) -> NaiveDateTime {
    at.naive_utc()
}

/// A JSON array of strings from a column, empty when it does not parse.
pub fn strings(raw: &str) -> Vec<String> {
    serde_json::from_str(raw).unwrap_or_default()
}
