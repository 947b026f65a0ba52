//! Planner statistics and dead rows where PostgreSQL's autovacuum is off.
//!
//! The queries of every service are planned from the statistics ANALYZE keeps; a table that is
//! never analysed keeps the guesses of an empty one, and its plans scan it whole however large it
//! grows (the long load tier slowed down minute by minute on such a server). Where `autovacuum`
//! is on, which is PostgreSQL's default and what any deployment should have, this does nothing.
//! Where it is off, each service analyses and vacuums its own tables past the thresholds
//! autovacuum itself uses by default: a table is analysed once more than 50 rows and 10% of it
//! changed since the last time, vacuumed (and analysed) once more than 50 rows and 20% of it are
//! dead. ANALYZE and VACUUM (not FULL) block neither reads nor writes.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

use crate::db::{AnyConnection, Backend, Db, DbError};

/// How often the tables are looked at.
const INTERVAL: Duration = Duration::from_secs(30);

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    value: String,
}

#[derive(QueryableByName)]
struct Due {
    #[diesel(sql_type = Text)]
    table: String,
    #[diesel(sql_type = Bool)]
    vacuum: bool,
}

/// Whether the server runs autovacuum.
///
/// # Errors
/// The query failing.
pub fn autovacuum_on(conn: &mut AnyConnection) -> QueryResult<bool> {
    let setting: Setting =
        diesel::sql_query("SELECT current_setting('autovacuum') AS value").get_result(conn)?;
    Ok(setting.value == "on")
}

/// Analyses (or vacuums and analyses) each table of the current schema past autovacuum's
/// default thresholds, and says which, each with `true` when it was vacuumed too.
///
/// # Errors
/// A statement failing.
pub fn tend(conn: &mut AnyConnection) -> QueryResult<Vec<(String, bool)>> {
    let due: Vec<Due> = diesel::sql_query(
        "SELECT relname::text AS table, \
                n_dead_tup > 50 + 0.2 * n_live_tup AS vacuum \
         FROM pg_stat_user_tables \
         WHERE schemaname = current_schema() \
           AND (n_dead_tup > 50 + 0.2 * n_live_tup \
                OR n_mod_since_analyze > 50 + 0.1 * n_live_tup) \
         ORDER BY relname",
    )
    .load(conn)?;
    let mut done = Vec::with_capacity(due.len());
    for Due { table, vacuum } in due {
        let name = format!("\"{}\"", table.replace('"', "\"\""));
        let statement = if vacuum {
            format!("VACUUM (ANALYZE) {name}")
        } else {
            format!("ANALYZE {name}")
        };
        conn.batch_execute(&statement)?;
        done.push((table, vacuum));
    }
    Ok(done)
}

/// Runs for as long as the process lives: on PostgreSQL with autovacuum off, [`tend`]s the
/// service's tables every half a minute; otherwise returns at once.
pub async fn run(db: Db, service: &'static str) {
    if db.backend() != Backend::Postgres {
        return;
    }
    // Asked until the database answers (it may be down at start-up).
    let on = loop {
        match db
            .run(|conn| autovacuum_on(conn).map_err(DbError::from))
            .await
        {
            Ok(on) => break on,
            Err(_) => tokio::time::sleep(INTERVAL).await,
        }
    };
    if on {
        return;
    }
    tracing::warn!(
        service,
        "autovacuum is off on this PostgreSQL server: Meridian analyses and vacuums its own tables"
    );
    loop {
        tokio::time::sleep(INTERVAL).await;
        match db.run(|conn| tend(conn).map_err(DbError::from)).await {
            Ok(done) => {
                for (table, vacuumed) in done {
                    tracing::debug!(service, table, vacuumed, "table maintained");
                }
            }
            Err(error) => tracing::warn!(service, %error, "table maintenance failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Backend as TestBackend, TestDb};

    #[test]
    fn tables_past_the_thresholds_are_analysed_and_vacuumed() {
        let test = TestDb::empty(TestBackend::Postgres);
        let db = Db::connect(&test.url, 1, Duration::from_secs(5)).unwrap();
        let mut conn = db.checkout().unwrap();
        // `autovacuum` is read as the server has it.
        let _ = autovacuum_on(&mut conn).unwrap();
        conn.batch_execute(
            "CREATE TABLE grown (id BIGINT PRIMARY KEY); \
             CREATE TABLE churned (id BIGINT PRIMARY KEY); \
             CREATE TABLE quiet (id BIGINT PRIMARY KEY); \
             INSERT INTO grown SELECT generate_series(1, 1000); \
             INSERT INTO churned SELECT generate_series(1, 1000); \
             INSERT INTO quiet SELECT generate_series(1, 10); \
             ANALYZE quiet; \
             DELETE FROM churned WHERE id > 100;",
        )
        .unwrap();
        // The statistics collector publishes what a session did within a second or so.
        let mut done = std::collections::BTreeMap::new();
        for _ in 0..100 {
            done.extend(tend(&mut conn).unwrap());
            if done.len() == 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(
            done.into_iter().collect::<Vec<_>>(),
            [("churned".to_owned(), true), ("grown".to_owned(), false)]
        );
        // Once maintained, nothing is due until they change again.
        assert_eq!(tend(&mut conn).unwrap(), []);
    }
}
