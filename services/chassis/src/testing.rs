//! Test helpers shared by every service's tests (behind the `testing` feature).
//!
//! - [`TestDb`]: a database of its own per test: a fresh PostgreSQL database `t_<uuid>` (dropped
//!   when the value is dropped) or a fresh SQLite file. Tests take the body once and run it on
//!   both backends.
//! - [`test_bus_config`] / [`RabbitNames`]: RabbitMQ exchange and queue names of its own per test,
//!   deleted on drop, so tests run in parallel on the shared broker and leave nothing behind.
//! - [`RabbitNode`] / [`PgNode`]: a private RabbitMQ node or PostgreSQL cluster on free ports, for
//!   tests that stop, kill or restart the broker or the database.
//! - [`TestKeys`]: RSA and EC key pairs, a JWKS document of their public halves, and token minting.
#![expect(clippy::expect_used, reason = "test helpers fail the test loudly")]
#![expect(
    clippy::disallowed_methods,
    reason = "test helpers read their environment"
)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use diesel::{Connection, RunQueryDsl, pg::PgConnection};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;

use crate::config::{AuthConfig, AuthMode, BusConfig, BusKind};
use crate::db::{Db, Migrations};

/// The PostgreSQL server tests use (`MERIDIAN_TEST_PG`, default the local one).
pub fn postgres_admin_url() -> String {
    std::env::var("MERIDIAN_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The RabbitMQ broker tests use (`MERIDIAN_TEST_AMQP`, default the local one).
pub fn amqp_url() -> String {
    std::env::var("MERIDIAN_TEST_AMQP")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

/// Both backends, for `for backend in BACKENDS`.
pub const BACKENDS: [Backend; 2] = [Backend::Postgres, Backend::Sqlite];

/// A database of the test's own, removed when dropped.
#[derive(Debug)]
pub struct TestDb {
    /// Its URL.
    pub url: String,
    /// A pool on it.
    pub db: Db,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Postgres(String),
    Sqlite(PathBuf),
}

impl TestDb {
    /// A fresh, migrated database on `backend`.
    pub async fn new(backend: Backend, migrations: Migrations) -> Self {
        let this = Self::empty(backend);
        this.db.migrate(migrations).await.expect("migrations apply");
        this
    }

    /// A fresh database with no tables.
    pub fn empty(backend: Backend) -> Self {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let (url, cleanup) = match backend {
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let mut conn = PgConnection::establish(&admin).expect("PostgreSQL is running");
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .expect("create test database");
                let base = admin
                    .rsplit_once('/')
                    .map_or(admin.as_str(), |(base, _)| base);
                (format!("{base}/{name}"), Cleanup::Postgres(name))
            }
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("meridian-{name}.db"));
                (
                    format!("sqlite://{}", path.display()),
                    Cleanup::Sqlite(path),
                )
            }
        };
        let db = Db::connect(&url, 4, Duration::from_secs(5)).expect("pool");
        Self { url, db, cleanup }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Postgres(name) => {
                if let Ok(mut conn) = PgConnection::establish(&postgres_admin_url()) {
                    let _ =
                        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut conn);
                }
            }
            Cleanup::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
        }
    }
}

/// A bus configuration with exchange and queue names of the test's own on the broker at `url`.
pub fn test_bus_config(url: &str) -> (BusConfig, RabbitNames) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let config = BusConfig {
        kind: BusKind::Rabbitmq,
        url: SecretString::from(url.to_owned()),
        exchange: format!("t.{id}.events"),
        dead_letter_exchange: format!("t.{id}.dead"),
        queue_prefix: format!("t.{id}."),
        delivery_limit: 3,
        prefetch: 16,
        reconnect_min_ms: 50,
        reconnect_max_ms: 1000,
        frame_max: 16384,
    };
    let names = RabbitNames {
        url: url.to_owned(),
        exchanges: vec![config.exchange.clone(), config.dead_letter_exchange.clone()],
        queues: Vec::new(),
    };
    (config, names)
}

/// Exchanges and queues a test created, deleted when dropped.
#[derive(Debug)]
pub struct RabbitNames {
    url: String,
    exchanges: Vec<String>,
    queues: Vec<String>,
}

impl RabbitNames {
    /// Also delete `queue` (and its `.dead` queue) at the end.
    pub fn queue(&mut self, queue: &str) {
        self.queues.push(queue.to_owned());
        self.queues.push(format!("{queue}.dead"));
    }
}

impl Drop for RabbitNames {
    fn drop(&mut self) {
        let url = self.url.clone();
        let exchanges = std::mem::take(&mut self.exchanges);
        let queues = std::mem::take(&mut self.queues);
        // Drop may run inside a runtime: do the async clean-up on a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
                let Ok(conn) =
                    lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await
                else {
                    return;
                };
                let Ok(channel) = conn.create_channel().await else {
                    return;
                };
                for queue in queues {
                    let _ = channel
                        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                        .await;
                }
                for exchange in exchanges {
                    let _ = channel
                        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                        .await;
                }
                let _ = conn.close(200, "done".into()).await;
            });
        })
        .join();
    }
}

/// A private RabbitMQ node on free ports, for tests that stop and start the broker. Stopped and
/// its files removed when dropped.
#[derive(Debug)]
pub struct RabbitNode {
    /// The node's AMQP URL.
    pub url: String,
    port: u16,
    name: String,
    dir: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

impl RabbitNode {
    /// Starts a node and waits until it accepts connections.
    pub fn start() -> Self {
        let port = free_port();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("meridian-{}@localhost", &id[..12]);
        let dir = std::env::temp_dir().join(format!("meridian-rabbit-{id}"));
        std::fs::create_dir_all(&dir).expect("node folder");
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\nloopback_users = none\n"),
        )
        .expect("node config");
        std::fs::write(dir.join("plugins"), "[].\n").expect("plugins file");
        std::fs::write(
            dir.join("env.conf"),
            format!("NODENAME={name}\nERL_EPMD_ADDRESS=127.0.0.1\n"),
        )
        .expect("env file");
        // The server drops to the rabbitmq user when started as root.
        let _ = Command::new("chown")
            .args(["-R", "rabbitmq:rabbitmq"])
            .arg(&dir)
            .status();
        let node = Self {
            url: format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
            port,
            name,
            dir,
        };
        node.start_again();
        node
    }

    fn env(&self, command: &mut Command) {
        let dist_port = free_port();
        command
            .env("RABBITMQ_CONF_ENV_FILE", self.dir.join("env.conf"))
            .env("RABBITMQ_NODENAME", &self.name)
            .env("RABBITMQ_CONFIG_FILE", self.dir.join("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", self.dir.join("plugins"))
            .env("RABBITMQ_MNESIA_BASE", self.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.dir.join("log"))
            .env("RABBITMQ_PID_FILE", self.dir.join("pid"))
            .env("RABBITMQ_DIST_PORT", dist_port.to_string());
    }

    fn answers(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }

    /// Starts the (stopped) node again, keeping its data, and waits until it answers.
    pub fn start_again(&self) {
        let mut command = Command::new("rabbitmq-server");
        command.arg("-detached");
        self.env(&mut command);
        let status = command.status().expect("rabbitmq-server runs");
        assert!(status.success(), "rabbitmq-server -detached failed");
        for _ in 0..300 {
            if self.answers() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the private RabbitMQ node did not start within 30 s");
    }

    /// Stops the node and waits until its port is closed.
    pub fn stop(&self) {
        let mut command = Command::new("rabbitmqctl");
        command.args(["-n", &self.name, "stop"]);
        self.env(&mut command);
        let _ = command.output();
        for _ in 0..300 {
            if !self.answers() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl RabbitNode {
    /// Every queue on the node with its ready and unacknowledged messages.
    pub fn queues(&self) -> Vec<(String, u64)> {
        let mut command = Command::new("rabbitmqctl");
        command.args(["-n", &self.name, "-q", "list_queues", "name", "messages"]);
        self.env(&mut command);
        let output = command.output().expect("rabbitmqctl runs");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let (name, count) = line.split_once('\t')?;
                Some((name.to_owned(), count.trim().parse().ok()?))
            })
            .collect()
    }

    /// Kills the node with SIGKILL (no goodbye to anyone) and waits until its port is closed.
    pub fn kill(&self) {
        let pid = std::fs::read_to_string(self.dir.join("pid")).expect("the node's pid file");
        let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        for _ in 0..300 {
            if !self.answers() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the private RabbitMQ node did not die");
    }
}

/// A private PostgreSQL cluster on a free port, for tests that restart the database. Stopped and
/// its files removed when dropped.
#[derive(Debug)]
pub struct PgNode {
    /// `postgres://postgres@127.0.0.1:{port}/postgres`.
    pub admin_url: String,
    port: u16,
    dir: PathBuf,
    bindir: PathBuf,
}

impl PgNode {
    /// Creates a cluster (trust authentication) and starts it.
    pub fn start() -> Self {
        let bindir = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map_or_else(
                || PathBuf::from("/usr/lib/postgresql/15/bin"),
                |s| PathBuf::from(s.trim()),
            );
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("meridian-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("cluster folder");
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status();
        let node = Self {
            admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            port,
            dir,
            bindir,
        };
        let status = node
            .command("initdb")
            .args(["-A", "trust", "-U", "postgres", "-N", "-D"])
            .arg(node.dir.join("data"))
            .stdout(std::process::Stdio::null())
            .status()
            .expect("initdb runs");
        assert!(status.success(), "initdb failed");
        node.pg_ctl(&["start"]);
        node
    }

    /// A command of the server's, as its owner (`postgres` when the test runs as root).
    fn command(&self, program: &str) -> Command {
        let program = self.bindir.join(program);
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if root {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn pg_ctl(&self, args: &[&str]) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on",
            self.port,
            self.dir.display()
        );
        let status = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-w", "-t", "60", "-l"])
            .arg(self.dir.join("log"))
            .args(["-o", &options])
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("pg_ctl runs");
        assert!(status.success(), "pg_ctl {args:?} failed");
    }

    /// Restarts the cluster in immediate mode: every backend killed, crash recovery on start.
    pub fn restart_immediate(&self) {
        self.pg_ctl(&["-m", "immediate", "restart"]);
    }

    /// A new database on the cluster; its URL.
    pub fn database(&self) -> String {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::establish(&self.admin_url).expect("the private cluster runs");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .expect("create database");
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for PgNode {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Key pairs for signing test tokens, and the JWKS of their public halves.
#[derive(Debug)]
pub struct TestKeys {
    /// A JWKS document with `rsa-1` (RS256) and `ec-1` (ES256).
    pub jwks: String,
}

/// RSA private key (PKCS #8 PEM) of `rsa-1`.
pub const RSA_PRIVATE: &str = include_str!("testdata/rsa_private.pem");
/// RSA public key (PEM) of `rsa-1`.
pub const RSA_PUBLIC: &str = include_str!("testdata/rsa_public.pem");
/// EC P-256 private key (PKCS #8 PEM) of `ec-1`.
pub const EC_PRIVATE: &str = include_str!("testdata/ec_private.pem");
/// RSA private key (PKCS #8 PEM) of another organisation's identity provider: in no key set a
/// test trusts.
pub const OTHER_ORG_RSA_PRIVATE: &str = include_str!("testdata/other_org_rsa_private.pem");

/// Issuer of test tokens.
pub const ISSUER: &str = "https://idp.test";
/// Audience of test tokens.
pub const AUDIENCE: &str = "meridian";

impl TestKeys {
    /// Builds the key set.
    pub fn new() -> Self {
        let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("RSA key");
        let ec = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).expect("EC key");
        let mut rsa_jwk = Jwk::from_encoding_key(&rsa, Algorithm::RS256).expect("RSA JWK");
        rsa_jwk.common.key_id = Some("rsa-1".to_owned());
        let mut ec_jwk = Jwk::from_encoding_key(&ec, Algorithm::ES256).expect("EC JWK");
        ec_jwk.common.key_id = Some("ec-1".to_owned());
        let set = JwkSet {
            keys: vec![rsa_jwk, ec_jwk],
        };
        Self {
            jwks: serde_json::to_string(&set).expect("JWKS"),
        }
    }

    /// A production-mode auth configuration trusting these keys through `jwks_file`.
    pub fn auth_config(&self, jwks_file: &std::path::Path) -> AuthConfig {
        std::fs::write(jwks_file, &self.jwks).expect("write JWKS");
        AuthConfig {
            mode: AuthMode::Jwks,
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            algorithms: vec!["RS256".to_owned(), "ES256".to_owned()],
            token_types: vec!["at+jwt".to_owned()],
            leeway_seconds: 5,
            roles_claim: "realm_access.roles".to_owned(),
            secret: SecretString::from(String::new()),
            jwks_file: Some(jwks_file.display().to_string()),
            jwks_url: None,
            jwks_refresh_seconds: 300,
        }
    }

    /// Signs `claims` with `rsa-1` (RS256) or `ec-1` (ES256) and the given `typ`.
    pub fn sign(&self, algorithm: Algorithm, typ: &str, claims: &serde_json::Value) -> String {
        let (key, kid) = match algorithm {
            Algorithm::ES256 => (
                EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).expect("EC key"),
                "ec-1",
            ),
            _ => (
                EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("RSA key"),
                "rsa-1",
            ),
        };
        let mut header = Header::new(algorithm);
        header.kid = Some(kid.to_owned());
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, claims, &key).expect("sign")
    }
}

impl Default for TestKeys {
    fn default() -> Self {
        Self::new()
    }
}

/// A dev-mode auth configuration with a fixed test secret.
pub fn dev_auth_config() -> AuthConfig {
    AuthConfig {
        mode: AuthMode::Dev,
        issuer: "meridian-dev".to_owned(),
        audience: "meridian".to_owned(),
        algorithms: vec![],
        token_types: vec!["at+jwt".to_owned()],
        leeway_seconds: 5,
        roles_claim: "roles".to_owned(),
        secret: SecretString::from("test-secret-test-secret-test-secret-0123".to_owned()),
        jwks_file: None,
        jwks_url: None,
        jwks_refresh_seconds: 300,
    }
}

/// Sends one request to an app made of the chassis' HTTP configuration and `configure` (a
/// service's routes and state), as `who` (user, roles) with a dev token from `auth`, or
/// anonymously; `body` is its content type and bytes. The status and the body as sent.
pub async fn request(
    configure: impl FnOnce(&mut actix_web::web::ServiceConfig),
    auth: &crate::auth::Authenticator,
    who: Option<(&str, &[&str])>,
    method: actix_web::http::Method,
    path: &str,
    body: Option<(&str, Vec<u8>)>,
) -> (actix_web::http::StatusCode, Vec<u8>) {
    use actix_web::dev::Service as _;
    let app = actix_web::test::init_service(
        actix_web::App::new()
            .app_data(actix_web::web::Data::new(auth.clone()))
            .configure(|cfg| crate::http::configure(cfg, 256 * 1024))
            .configure(configure),
    )
    .await;
    // A client address, as a real connection has (limits per client apply).
    let mut req = actix_web::test::TestRequest::default()
        .method(method)
        .uri(path)
        .peer_addr(std::net::SocketAddr::from(([127, 0, 0, 1], 40_000)));
    if let Some((user, roles)) = who {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        let token = auth
            .mint_dev(
                user,
                &roles,
                crate::Clock::now(&crate::SystemClock),
                chrono::Duration::minutes(5),
            )
            .expect("a dev token");
        req = req.insert_header(("Authorization", format!("Bearer {token}")));
    }
    if let Some((content_type, bytes)) = body {
        req = req
            .insert_header(("Content-Type", content_type.to_owned()))
            .set_payload(bytes);
    }
    let response = app.call(req.to_request()).await.expect("a response");
    let status = response.status();
    (status, actix_web::test::read_body(response).await.to_vec())
}

/// As [`request`] with a JSON body; the answer as JSON (`null` when it is not).
pub async fn request_json(
    configure: impl FnOnce(&mut actix_web::web::ServiceConfig),
    auth: &crate::auth::Authenticator,
    who: (&str, &[&str]),
    method: actix_web::http::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (actix_web::http::StatusCode, serde_json::Value) {
    let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
    let (status, bytes) = request(configure, auth, Some(who), method, path, body).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// The events waiting in `db`'s outbox of `event_type` (every one when `None`), oldest first.
pub async fn outbox(db: &Db, event_type: Option<&str>) -> Vec<crate::bus::Envelope> {
    let wanted = event_type.map(str::to_owned);
    db.run(|conn| crate::outbox::pending(conn, 10_000).map_err(crate::db::DbError::from))
        .await
        .expect("the outbox")
        .into_iter()
        .map(|(_, envelope)| envelope)
        .filter(|e| wanted.as_ref().is_none_or(|t| e.event_type == *t))
        .collect()
}
