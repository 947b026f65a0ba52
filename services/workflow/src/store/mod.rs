//! Storage: diesel over [`meridian_chassis::db::AnyConnection`]. Functions are synchronous and
//! run inside one transaction per step.

pub mod ci_owners;
pub mod definitions;
pub mod instances;
pub mod schema;
pub mod tasks;
pub mod timers;

/// The workflow service's migrations for both backends.
pub const MIGRATIONS: meridian_chassis::db::Migrations = meridian_chassis::db::Migrations {
    postgres: diesel_migrations::embed_migrations!("migrations/postgres"),
    sqlite: diesel_migrations::embed_migrations!("migrations/sqlite"),
};
