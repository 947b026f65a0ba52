//! Storage: diesel over [`meridian_chassis::db::AnyConnection`], inside the caller's transaction.

pub mod agreements;
pub mod catalogue;
pub mod clocks;
pub mod operations;
pub mod schema;

/// The service-level service's migrations for both backends.
pub const MIGRATIONS: meridian_chassis::db::Migrations = meridian_chassis::db::Migrations {
    postgres: diesel_migrations::embed_migrations!("migrations/postgres"),
    sqlite: diesel_migrations::embed_migrations!("migrations/sqlite"),
};

/// The source of every event this service publishes.
pub const SOURCE: &str = "/meridian/service-level";

/// A JSON array of strings from a column, empty when it does not parse.
pub fn strings(raw: &str) -> Vec<String> {
    serde_json::from_str(raw).unwrap_or_default()
}
