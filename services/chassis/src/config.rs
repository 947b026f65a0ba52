//! Configuration: compiled defaults, then an optional file, then `MERIDIAN__SECTION__KEY`
//! environment variables, in that order (later wins).
//!
//! Every section is a struct with `#[serde(deny_unknown_fields)]`, so a misspelt key fails
//! start-up, and the error names the key (`database.pool_size: invalid type ...`). Secrets are
//! [`SecretString`]s and never appear in `Debug` output or logs. The sections every service shares
//! live here; a service adds its own section (see `meridian_resolution::config`).

use std::path::Path;

use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The defaults of the shared sections, compiled in.
pub const DEFAULTS: &str = include_str!("defaults.yaml");

/// A configuration that could not be loaded or does not validate, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A layer could not be read or parsed (a missing file, bad YAML).
    #[error("configuration could not be read: {0}")]
    Source(#[from] config::ConfigError),
    /// A key has a bad value or is unknown.
    #[error("configuration key `{key}`: {reason}")]
    Key {
        /// The dotted path of the key, e.g. `database.pool_size`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ConfigError {
    /// A bad value for `key`.
    pub fn key(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Key {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Loads `T` from the default layers (lowest first), an optional file, and the environment.
///
/// # Errors
/// A layer that cannot be read, or a key that is unknown or has a bad value ([`ConfigError::Key`]).
pub fn load<T: DeserializeOwned>(defaults: &[&str], file: Option<&Path>) -> Result<T, ConfigError> {
    load_from(defaults, file, std::env::vars())
}

/// As [`load`], with the environment given explicitly (tests pass their own).
///
/// # Errors
/// As [`load`].
pub fn load_from<T: DeserializeOwned>(
    defaults: &[&str],
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let mut builder = config::Config::builder();
    for layer in defaults {
        builder = builder.add_source(config::File::from_str(layer, config::FileFormat::Yaml));
    }
    if let Some(file) = file {
        builder = builder.add_source(config::File::from(file).required(true));
    }
    let env: config::Map<String, String> = env
        .into_iter()
        .filter(|(key, _)| key.starts_with("MERIDIAN__"))
        .collect();
    builder = builder.add_source(
        config::Environment::with_prefix("MERIDIAN")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("auth.algorithms")
            .with_list_parse_key("auth.token_types")
            .with_list_parse_key("resolution.major_incident.priorities")
            .with_list_parse_key("resolution.major_incident.service_criticalities")
            .with_list_parse_key("control.cab_members")
            .with_list_parse_key("control.emergency_cab")
            .source(Some(env)),
    );
    let merged = builder.build()?;
    serde_path_to_error::deserialize(merged).map_err(|error| {
        let key = error.path().to_string();
        ConfigError::key(key, error.into_inner().to_string())
    })
}

/// `http`: where the API listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address and port to bind, e.g. `0.0.0.0:8080`; port 0 picks a free one. Default `127.0.0.1:8080`.
    pub bind: String,
    /// Worker threads; 0 means one per core. Default 0.
    pub workers: usize,
    /// Largest accepted JSON body, in bytes. Default 262144.
    pub max_body_bytes: usize,
    /// Requests served at once; past that the process sheds load (503 with `Retry-After`) rather
    /// than queueing them until they time out. 0: no limit. Default 256.
    pub max_in_flight: usize,
}

/// `database`: the service's own database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://user:pass@host/db` or `sqlite://path/to/file.db`. Secret (it may hold a password).
    pub url: SecretString,
    /// Connections in the pool. Default 16.
    pub pool_size: u32,
    /// Seconds to wait for a connection before giving up. Default 5.
    pub connect_timeout_seconds: u64,
    /// For the fault suite only: the fraction (0 to 0.5) of commits and outbox marks that fail
    /// on purpose ([`crate::faults`]). Default 0: none.
    pub fault_rate: f64,
    /// The seed of the injected faults. Default 1.
    pub fault_seed: u64,
}

/// Which bus implementation to use.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BusKind {
    /// RabbitMQ through lapin (production).
    Rabbitmq,
    /// In-process bus (`meridian dev`).
    Memory,
}

/// `bus`: RabbitMQ or the in-process bus.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    /// `rabbitmq` or `memory`. Default `rabbitmq`.
    pub kind: BusKind,
    /// AMQP URL, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`. Secret. Default the local broker.
    pub url: SecretString,
    /// The durable topic exchange events are published to. Default `meridian.events`.
    pub exchange: String,
    /// The exchange messages are dead-lettered to. Default `meridian.dead`.
    pub dead_letter_exchange: String,
    /// Prefix of this deployment's queue names (`<prefix><service>`). Default `meridian.`.
    pub queue_prefix: String,
    /// Deliveries of one message before it is dead-lettered. Default 5.
    pub delivery_limit: u32,
    /// Unacknowledged messages a consumer holds at once. Default 32.
    pub prefetch: u16,
    /// First reconnect delay, in milliseconds; doubles up to `reconnect_max_ms`. Default 200.
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay, in milliseconds. Default 10000.
    pub reconnect_max_ms: u64,
    /// The largest AMQP frame this client proposes, in bytes (larger messages span frames).
    /// Each connection keeps buffers of 32 frames, so this bounds its memory. Default 16384;
    /// at least 4096.
    pub frame_max: u32,
}

/// How tokens are verified.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Asymmetric keys (RS256, ES256, ...) from the identity provider's JWKS (production).
    Jwks,
    /// HS256 with a shared secret (`meridian dev` and `meridian token`).
    Dev,
}

/// `auth`: JWT bearer authentication.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `jwks` or `dev`. Default `jwks`.
    pub mode: AuthMode,
    /// The required `iss` claim. Default `meridian-dev`.
    pub issuer: String,
    /// The required `aud` claim. Default `meridian`.
    pub audience: String,
    /// Accepted signature algorithms; in `jwks` mode asymmetric ones only. Default `[RS256, ES256]`.
    pub algorithms: Vec<String>,
    /// Accepted JOSE `typ` header values, compared case-insensitively. Default `[at+jwt]` (RFC 9068).
    pub token_types: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds. Default 30.
    pub leeway_seconds: u64,
    /// Dotted path of the claim that holds the roles, e.g. `realm_access.roles`. Default `roles`.
    pub roles_claim: String,
    /// `dev` mode: the HS256 shared secret (at least 32 bytes). Secret. Default empty.
    pub secret: SecretString,
    /// `jwks` mode: a JWKS document on disk. Default none.
    pub jwks_file: Option<String>,
    /// `jwks` mode: the identity provider's JWKS URL. Default none.
    pub jwks_url: Option<String>,
    /// `jwks` mode: seconds between refreshes of `jwks_url`. Default 300.
    pub jwks_refresh_seconds: u64,
}

/// Log output format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One JSON object a line (production).
    Json,
    /// Human-readable lines (dev).
    Text,
}

/// `telemetry`: logs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `json` or `text`. Default `json`.
    pub log_format: LogFormat,
    /// A tracing filter, e.g. `info,meridian_resolution=debug`. Default `info`.
    pub log_level: String,
}

/// `outbox`: the relay that publishes committed outbox rows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// Rows published per round. Default 256.
    pub batch_size: i64,
    /// Milliseconds between polls when nothing wakes the relay. Default 500.
    pub poll_interval_ms: u64,
}

/// `leader_election`: who runs singleton work (timers, discovery).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderElectionConfig {
    /// `database` (a PostgreSQL advisory lock; on SQLite the one process leads) or `lease` (a
    /// coordination.k8s.io Lease in the pod's namespace, on a cluster). Default `database`.
    pub kind: LeaderElectionKind,
    /// How long a Lease holds without renewal. Default 15 s.
    pub lease_duration_seconds: u64,
    /// Leases are named `<prefix>-<service>`. Default `meridian`.
    pub lease_prefix: String,
}

/// `leader_election.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaderElectionKind {
    /// A database lock.
    Database,
    /// A Kubernetes Lease.
    Lease,
}

impl LeaderElectionConfig {
    /// Checks what serde cannot.
    ///
    /// # Errors
    /// [`ConfigError::Key`] naming the bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(5..=300).contains(&self.lease_duration_seconds) {
            return Err(ConfigError::key(
                "leader_election.lease_duration_seconds",
                "must be 5 to 300",
            ));
        }
        let ok = !self.lease_prefix.is_empty()
            && self.lease_prefix.len() <= 50
            && self
                .lease_prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(ConfigError::key(
                "leader_election.lease_prefix",
                "must be 1 to 50 lowercase letters, digits or dashes",
            ));
        }
        Ok(())
    }
}

impl AuthConfig {
    /// Checks what serde cannot: algorithm names, the mode's key material, the secret's length.
    ///
    /// # Errors
    /// [`ConfigError::Key`] naming the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use secrecy::ExposeSecret;
        if self.issuer.is_empty() {
            return Err(ConfigError::key("auth.issuer", "must not be empty"));
        }
        if self.audience.is_empty() {
            return Err(ConfigError::key("auth.audience", "must not be empty"));
        }
        if self.token_types.is_empty() {
            return Err(ConfigError::key(
                "auth.token_types",
                "must list at least one type",
            ));
        }
        match self.mode {
            AuthMode::Dev => {
                if self.secret.expose_secret().len() < 32 {
                    return Err(ConfigError::key(
                        "auth.secret",
                        "dev mode needs a shared secret of at least 32 bytes",
                    ));
                }
            }
            AuthMode::Jwks => {
                if self.algorithms.is_empty() {
                    return Err(ConfigError::key(
                        "auth.algorithms",
                        "must list at least one",
                    ));
                }
                for name in &self.algorithms {
                    match crate::auth::asymmetric_algorithm(name) {
                        Some(_) => {}
                        None => {
                            return Err(ConfigError::key(
                                "auth.algorithms",
                                format!(
                                    "`{name}` is not an asymmetric JWS algorithm (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"
                                ),
                            ));
                        }
                    }
                }
                if self.jwks_file.is_none() && self.jwks_url.is_none() {
                    return Err(ConfigError::key(
                        "auth.jwks_url",
                        "jwks mode needs auth.jwks_url or auth.jwks_file",
                    ));
                }
            }
        }
        Ok(())
    }
}

impl DatabaseConfig {
    /// Checks the URL scheme and the pool size.
    ///
    /// # Errors
    /// [`ConfigError::Key`] naming the bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use secrecy::ExposeSecret;
        crate::db::Target::parse(self.url.expose_secret())
            .map_err(|reason| ConfigError::key("database.url", reason))?;
        if self.pool_size == 0 {
            return Err(ConfigError::key("database.pool_size", "must be at least 1"));
        }
        if !(0.0..=0.5).contains(&self.fault_rate) {
            return Err(ConfigError::key(
                "database.fault_rate",
                "must be between 0 and 0.5",
            ));
        }
        Ok(())
    }
}

impl BusConfig {
    /// Checks the limits.
    ///
    /// # Errors
    /// [`ConfigError::Key`] naming the bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.delivery_limit == 0 {
            return Err(ConfigError::key("bus.delivery_limit", "must be at least 1"));
        }
        if self.prefetch == 0 {
            return Err(ConfigError::key("bus.prefetch", "must be at least 1"));
        }
        if self.exchange.is_empty() {
            return Err(ConfigError::key("bus.exchange", "must not be empty"));
        }
        if self.frame_max < 4096 {
            return Err(ConfigError::key("bus.frame_max", "must be at least 4096"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Shared {
        http: HttpConfig,
        database: DatabaseConfig,
        bus: BusConfig,
        auth: AuthConfig,
        telemetry: TelemetryConfig,
        outbox: OutboxConfig,
        leader_election: LeaderElectionConfig,
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_shipped_defaults_parse_and_validate() {
        let shared: Shared = load_from(&[DEFAULTS], None, env(&[])).unwrap();
        shared.leader_election.validate().unwrap();
        shared.database.validate().unwrap();
        shared.bus.validate().unwrap();
        assert_eq!(shared.http.bind, "127.0.0.1:8080");
        assert_eq!(shared.auth.mode, AuthMode::Jwks);
        assert_eq!(shared.telemetry.log_format, LogFormat::Json);
        assert!(shared.outbox.batch_size > 0);
    }

    #[test]
    fn environment_variables_override_defaults() {
        let shared: Shared = load_from(
            &[DEFAULTS],
            None,
            env(&[
                ("MERIDIAN__DATABASE__POOL_SIZE", "3"),
                ("MERIDIAN__AUTH__ALGORITHMS", "ES256,RS256"),
                ("OTHER__DATABASE__POOL_SIZE", "9"),
            ]),
        )
        .unwrap();
        assert_eq!(shared.database.pool_size, 3);
        assert_eq!(shared.auth.algorithms, ["ES256", "RS256"]);
    }

    #[test]
    fn an_unknown_key_fails_naming_it() {
        let error = load_from::<Shared>(&[DEFAULTS, "database:\n  pool_sise: 3\n"], None, env(&[]))
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("database"), "{message}");
        assert!(message.contains("pool_sise"), "{message}");
    }

    #[test]
    fn a_bad_value_fails_naming_the_key() {
        let error = load_from::<Shared>(
            &[DEFAULTS],
            None,
            env(&[("MERIDIAN__DATABASE__POOL_SIZE", "many")]),
        )
        .unwrap_err();
        assert!(error.to_string().contains("database.pool_size"), "{error}");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let shared: Shared = load_from(
            &[DEFAULTS],
            None,
            env(&[("MERIDIAN__DATABASE__URL", "postgres://u:hunter2@db/x")]),
        )
        .unwrap();
        assert!(!format!("{shared:?}").contains("hunter2"));
    }

    #[test]
    fn jwks_mode_refuses_symmetric_algorithms_and_missing_keys() {
        let mut shared: Shared = load_from(&[DEFAULTS], None, env(&[])).unwrap();
        shared.auth.jwks_file = Some("keys.json".into());
        shared.auth.validate().unwrap();
        shared.auth.algorithms = vec!["HS256".into()];
        let error = shared.auth.validate().unwrap_err();
        assert!(error.to_string().contains("auth.algorithms"), "{error}");
        shared.auth.algorithms = vec!["RS256".into()];
        shared.auth.jwks_file = None;
        let error = shared.auth.validate().unwrap_err();
        assert!(error.to_string().contains("auth.jwks_url"), "{error}");
    }

    #[test]
    fn dev_mode_needs_a_long_secret() {
        let mut shared: Shared = load_from(&[DEFAULTS], None, env(&[])).unwrap();
        shared.auth.mode = AuthMode::Dev;
        shared.auth.secret = SecretString::from("short");
        let error = shared.auth.validate().unwrap_err();
        assert!(error.to_string().contains("auth.secret"), "{error}");
    }
}
