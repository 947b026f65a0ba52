//! Storage: diesel over [`meridian_chassis::db::AnyConnection`]. Functions are synchronous and
//! run inside one transaction per command, writing the row, its audit record and its outbox
//! events together.

pub mod changes;
pub mod cis;
pub mod discovery;
pub mod gate;
pub mod impact;
pub mod releases;
pub mod schema;

/// The control service's migrations for both backends.
pub const MIGRATIONS: meridian_chassis::db::Migrations = meridian_chassis::db::Migrations {
    postgres: diesel_migrations::embed_migrations!("migrations/postgres"),
    sqlite: diesel_migrations::embed_migrations!("migrations/sqlite"),
};
