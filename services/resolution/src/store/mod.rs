//! Storage: diesel over [`meridian_chassis::db::AnyConnection`]. Functions are synchronous and
//! run inside one transaction per command (see `api`), writing the row, its history, its audit
//! record and its outbox events together.

pub mod catalogue;
pub mod cis;
pub mod incidents;
pub mod intake;
pub mod problems;
pub mod schema;

/// The resolution service's migrations for both backends.
pub const MIGRATIONS: meridian_chassis::db::Migrations = meridian_chassis::db::Migrations {
    postgres: diesel_migrations::embed_migrations!("migrations/postgres"),
    sqlite: diesel_migrations::embed_migrations!("migrations/sqlite"),
};
