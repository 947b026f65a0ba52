//! Storage: diesel over [`meridian_chassis::db::AnyConnection`]. Functions are synchronous and
//! run inside one transaction per command (see `api`), writing the row, its history, its audit
//! record and its outbox events together.

pub mod catalogue;
pub mod cis;
pub mod incidents;
pub mod intake;
pub mod problems;
pub mod requests;
pub mod schema;

/// The resolution service's migrations for both backends.
pub const MIGRATIONS: meridian_chassis::db::Migrations = meridian_chassis::db::Migrations {
    postgres: diesel_migrations::embed_migrations!("migrations/postgres"),
    sqlite: diesel_migrations::embed_migrations!("migrations/sqlite"),
};

/// The next human number of a record kind: `prefix` and seven digits, from the PostgreSQL
/// sequence `<kind>_number_seq` or the SQLite counter `<kind>_number`.
///
/// # Errors
/// A query failing.
pub fn next_number(
    conn: &mut meridian_chassis::db::AnyConnection,
    kind: &str,
    prefix: &str,
) -> diesel::QueryResult<String> {
    use diesel::prelude::*;
    use meridian_chassis::db::AnyConnection;
    use schema::counters;
    #[derive(QueryableByName)]
    struct Number {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        value: i64,
    }
    let counter = format!("{kind}_number");
    let value = match conn {
        AnyConnection::Postgresql(pg) => {
            diesel::sql_query(format!("SELECT nextval('{counter}_seq') AS value"))
                .get_result::<Number>(pg)?
                .value
        }
        AnyConnection::Sqlite(sqlite) => {
            diesel::update(counters::table.find(&counter))
                .set(counters::value.eq(counters::value + 1))
                .execute(sqlite)?;
            counters::table
                .find(&counter)
                .select(counters::value)
                .first(sqlite)?
        }
    };
    Ok(format!("{prefix}{value:07}"))
}
