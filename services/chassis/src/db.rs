//! Storage: one diesel code base over PostgreSQL (production) and SQLite (`meridian dev`).
//!
//! [`AnyConnection`] is diesel's `MultiConnection` over both. Store functions are synchronous on
//! `&mut AnyConnection` and return `QueryResult`; handlers run them on the blocking pool through
//! [`Db::run`] and [`Db::transaction`]. SQL that differs between the backends is a `match` on the
//! variant, kept in the few places that need it. Each service owns its own database and embeds its
//! migrations for both backends; the chassis tables (outbox, inbox, audit) are migrated first.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// A connection to either backend.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    /// PostgreSQL (production).
    Postgresql(PgConnection),
    /// SQLite (`meridian dev`, tests).
    Sqlite(SqliteConnection),
}

/// Which backend a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A `postgres://` or `postgresql://` URL.
    Postgres(String),
    /// A file path from a `sqlite://` URL.
    Sqlite(String),
}

impl Target {
    /// Parses a database URL.
    ///
    /// # Errors
    /// A URL with another scheme, or an empty SQLite path.
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                Err("a sqlite:// URL needs a file path".to_owned())
            } else {
                Ok(Self::Sqlite(path.to_owned()))
            }
        } else {
            Err("must start with postgres://, postgresql:// or sqlite://".to_owned())
        }
    }
}

/// Opens connections of the configured backend (never guessing from a failed attempt).
#[derive(Debug, Clone)]
pub struct Manager(Target);

impl ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = ConnectionError;

    fn connect(&self) -> Result<AnyConnection, ConnectionError> {
        match &self.0 {
            Target::Postgres(url) => {
                let mut conn = PgConnection::establish(url)?;
                // A pooled connection lives for hours. A generic plan cached while a table was
                // nearly empty (a sequential scan) would be kept however large the table grew,
                // until its statistics changed, and where autovacuum is off they never do: the
                // long load tier slowed down minute by minute that way. Plans made for the bound
                // values and the table's current size cost a little planning instead.
                conn.batch_execute("SET plan_cache_mode = force_custom_plan")
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
                Ok(AnyConnection::Postgresql(conn))
            }
            Target::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(path)?;
                // WAL lets readers run beside the writer; FULL makes a commit durable before it
                // returns; the busy timeout covers another process (`meridian migrate`).
                conn.batch_execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                     PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                )
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), ConnectionError> {
        conn.ping()
            .map_err(ConnectionError::CouldntSetupConfiguration)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        conn.is_broken()
    }
}

/// Runs the same code on the concrete connection of either backend, for what the
/// multi-backend connection cannot express, such as multi-row inserts:
/// `per_backend!(conn, c => diesel::insert_into(t).values(&rows).execute(c))`.
#[macro_export]
macro_rules! per_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::db::AnyConnection::Postgresql($c) => $body,
            $crate::db::AnyConnection::Sqlite($c) => $body,
        }
    };
}

/// A failure to reach the database or of a query.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had (the database is down or the pool is exhausted).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A query failed.
    #[error("query failed: {0}")]
    Query(#[from] diesel::result::Error),
}

/// Whether a query failed only because of concurrent transactions (a deadlock, or a
/// serialisation failure): the same work may succeed when tried again.
pub fn contention(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        Error::DatabaseError(_, info) => {
            let message = info.message();
            message.contains("deadlock detected") || message.contains("could not serialize")
        }
        _ => false,
    }
}

/// Whether a query failed because the connection went (the server restarted, shut down or is
/// recovering): the database is unavailable for a moment, and the same work may succeed on a
/// new connection.
pub fn connection_lost(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        // A rollback that failed because the connection went leaves this behind.
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
        | Error::BrokenTransactionManager => true,
        Error::DatabaseError(_, info) => {
            let message = info.message();
            [
                "server closed the connection",
                "no connection to the server",
                "terminating connection",
                "the database system is",
                "connection to server",
                "could not receive data from server",
                "could not send data to server",
                "SSL connection has been closed",
                // SQLite still busy after `busy_timeout`, or a snapshot another writer moved on.
                "database is locked",
            ]
            .iter()
            .any(|m| message.contains(m))
        }
        _ => false,
    }
}

/// A service's database: a connection pool and the way to use it from async code.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<Manager>,
    /// SQLite allows one writer: write transactions queue here instead of failing with BUSY.
    writer: Option<Arc<tokio::sync::Mutex<()>>>,
    backend: Backend,
    /// Injected failures (the fault suite only).
    faults: Option<Arc<crate::faults::StoreFaults>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish()
    }
}

/// The backend of a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

impl Db {
    /// Opens a pool on `url` (`postgres://…` or `sqlite://path`). Connections open lazily, so a
    /// database that is down at start-up makes the service unready, not dead.
    ///
    /// # Errors
    /// A URL of an unknown scheme, or a SQLite folder that cannot be created.
    pub fn connect(url: &str, pool_size: u32, timeout: Duration) -> anyhow::Result<Self> {
        let target =
            Target::parse(url).map_err(|reason| anyhow::anyhow!("database.url {reason}"))?;
        let backend = match &target {
            Target::Postgres(_) => Backend::Postgres,
            Target::Sqlite(path) => {
                if let Some(parent) = Path::new(path).parent()
                    && !parent.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(parent)?;
                }
                Backend::Sqlite
            }
        };
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(0))
            .connection_timeout(timeout)
            .test_on_check_out(false)
            .build_unchecked(Manager(target));
        let writer = (backend == Backend::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(())));
        Ok(Self {
            pool,
            writer,
            backend,
            faults: None,
        })
    }

    /// Fails a fraction of commits and outbox marks, as [`crate::faults`] says.
    #[must_use]
    pub fn with_faults(mut self, faults: Option<crate::faults::StoreFaults>) -> Self {
        self.faults = faults.map(Arc::new);
        self
    }

    /// An injected failure of `what`, when one is due (never without fault injection).
    ///
    /// # Errors
    /// [`DbError::Unavailable`] naming the injected fault.
    pub fn inject(&self, what: &'static str) -> Result<(), DbError> {
        self.faults.as_ref().map_or(Ok(()), |f| f.fire(what))
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn checkout(&self) -> Result<r2d2::PooledConnection<Manager>, DbError> {
        self.pool
            .get()
            .map_err(|error| DbError::Unavailable(error.to_string()))
    }

    /// Takes SQLite's writer lock from a thread outside the async runtime (none on PostgreSQL).
    pub(crate) fn writer_lock_blocking(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        self.writer
            .clone()
            .map(tokio::sync::Mutex::blocking_lock_owned)
    }

    /// Runs `f` on a pooled connection on the blocking pool.
    ///
    /// # Errors
    /// [`DbError::Unavailable`] without a connection, or `f`'s own error.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.checkout()?;
            f(&mut conn)
        })
        .await
        .map_err(|error| {
            E::from(DbError::Unavailable(format!(
                "blocking task failed: {error}"
            )))
        })?
    }

    /// Runs `f` (statements that write, each its own transaction) on the blocking pool, after the
    /// other writers on SQLite: a write outside the writer lock would move the snapshot of a
    /// transaction under it and fail that transaction with BUSY.
    ///
    /// # Errors
    /// As [`Db::run`].
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let _writer = match &self.writer {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        self.run(f).await
    }

    /// Runs `f` in one transaction on the blocking pool: all of it commits, or none of it.
    ///
    /// # Errors
    /// [`DbError::Unavailable`] without a connection, or `f`'s own error (after rolling back).
    pub async fn transaction<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + Send + 'static,
    {
        let _writer = match &self.writer {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        let db = self.clone();
        self.run(move |conn| {
            conn.transaction(|conn| {
                let out = f(conn)?;
                db.inject("commit")?;
                Ok(out)
            })
        })
        .await
    }

    /// Answers when the database does (for `/readyz`).
    pub async fn ping(&self) -> bool {
        self.run(|conn| conn.ping().map_err(DbError::from))
            .await
            .is_ok()
    }

    /// Applies the chassis migrations, then `service`'s.
    ///
    /// # Errors
    /// A connection or a migration that fails, with its name.
    pub async fn migrate(&self, service: Migrations) -> anyhow::Result<()> {
        self.run(move |conn| -> anyhow::Result<()> {
            migrate(conn, CHASSIS_MIGRATIONS)?;
            migrate(conn, service)
        })
        .await
    }
}

/// A service's migrations for both backends (the same directory names in both). Declare it as a
/// `const` (`embed_migrations!` values are used by value).
pub struct Migrations {
    /// `migrations/postgres`.
    pub postgres: EmbeddedMigrations,
    /// `migrations/sqlite`.
    pub sqlite: EmbeddedMigrations,
}

/// The chassis tables: outbox, inbox, audit log.
pub const CHASSIS_MIGRATIONS: Migrations = Migrations {
    postgres: embed_migrations!("migrations/postgres"),
    sqlite: embed_migrations!("migrations/sqlite"),
};

/// Applies one set of migrations on `conn`.
///
/// # Errors
/// The first migration that fails.
pub fn migrate(conn: &mut AnyConnection, set: Migrations) -> anyhow::Result<()> {
    let applied = match conn {
        AnyConnection::Postgresql(conn) => conn.run_pending_migrations(set.postgres),
        AnyConnection::Sqlite(conn) => conn.run_pending_migrations(set.sqlite),
    }
    .map_err(|error| anyhow::anyhow!("migration failed: {error}"))?;
    for version in applied {
        tracing::info!(%version, "migration applied");
    }
    Ok(())
}

/// The next human number of a record `kind` from the counter table `table` (columns `name`,
/// `value`): `prefix` and seven digits. The counter row is updated first, so concurrent
/// transactions wait for each other and no number is given twice.
///
/// # Errors
/// A query failing, or a `table` or `kind` that is not a plain name.
pub fn next_number(
    conn: &mut AnyConnection,
    table: &str,
    kind: &str,
    prefix: &str,
) -> diesel::QueryResult<String> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Counter {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        value: i64,
    }
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if !plain(table) || !plain(kind) {
        return Err(diesel::result::Error::QueryBuilderError(
            format!("{table}.{kind} is not a counter").into(),
        ));
    }
    diesel::sql_query(format!(
        "UPDATE {table} SET value = value + 1 WHERE name = '{kind}'"
    ))
    .execute(conn)?;
    let value = diesel::sql_query(format!("SELECT value FROM {table} WHERE name = '{kind}'"))
        .get_result::<Counter>(conn)?
        .value;
    Ok(format!("{prefix}{value:07}"))
}
