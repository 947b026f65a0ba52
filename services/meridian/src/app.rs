//! Assembling services into a running process: configuration, storage, bus, relay, HTTP.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use meridian_chassis::auth::Authenticator;
use meridian_chassis::bus::Bus;
use meridian_chassis::config::{
    AuthConfig, BusConfig, DatabaseConfig, HttpConfig, LeaderElectionConfig, OutboxConfig,
    TelemetryConfig,
};
use meridian_chassis::db::Db;
use meridian_chassis::http::Readiness;
use meridian_chassis::leader::Elector;
use meridian_chassis::outbox::{Relay, Waker};
use meridian_chassis::telemetry::{Metrics, observe};
use meridian_chassis::{Clock, SystemClock};
use meridian_control::{Control, ControlConfig};
use meridian_governance::{Governance, GovernanceConfig};
use meridian_notifier::{Notifier, NotifierConfig};
use meridian_relationship::{Relationship, RelationshipConfig};
use meridian_resolution::{Resolution, ResolutionConfig};
use meridian_service_level::{ServiceLevel, ServiceLevelConfig};
use meridian_workflow::{Workflow, WorkflowConfig};
use secrecy::ExposeSecret;
use serde::Deserialize;

/// The services this binary can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[expect(
    clippy::enum_variant_names,
    reason = "the service-level service is named after its processes"
)]
pub enum Service {
    /// Incidents (later requests, problems, known errors).
    Resolution,
    /// The workflow engine: definitions, instances, human tasks, timers.
    Workflow,
    /// The CMDB, changes, releases and deployments.
    Control,
    /// E-mail, chat and webhook notifications; one-click action links.
    Notifier,
    /// The service catalogue, SLAs and their clocks, reporting.
    ServiceLevel,
    /// Customers, complaints, satisfaction, suppliers and contracts.
    Relationship,
    /// The management system, the audit ledger and the evidence report.
    Governance,
}

impl Service {
    /// Every service, in start order.
    pub const ALL: [Self; 7] = [
        Self::Resolution,
        Self::Workflow,
        Self::Control,
        Self::Notifier,
        Self::ServiceLevel,
        Self::Relationship,
        Self::Governance,
    ];

    /// The service's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Resolution => meridian_resolution::NAME,
            Self::Workflow => meridian_workflow::NAME,
            Self::Control => meridian_control::NAME,
            Self::Notifier => meridian_notifier::NAME,
            Self::ServiceLevel => meridian_service_level::NAME,
            Self::Relationship => meridian_relationship::NAME,
            Self::Governance => meridian_governance::NAME,
        }
    }
}

/// The services one process serves (`meridian serve`: one; `meridian dev`: all).
#[derive(Clone, Default)]
pub struct Services {
    /// Incidents.
    pub resolution: Option<Resolution>,
    /// Workflows.
    pub workflow: Option<Workflow>,
    /// The CMDB.
    pub control: Option<Control>,
    /// Notifications.
    pub notifier: Option<Notifier>,
    /// Service levels.
    pub service_level: Option<ServiceLevel>,
    /// Customers and suppliers.
    pub relationship: Option<Relationship>,
    /// The management system.
    pub governance: Option<Governance>,
    /// The people the console's dev login offers (`meridian dev` only).
    pub dev_people: Vec<crate::console::Person>,
}

impl Services {
    fn dbs(&self) -> Vec<Db> {
        let mut dbs = Vec::new();
        if let Some(resolution) = &self.resolution {
            dbs.push(resolution.db.clone());
        }
        if let Some(workflow) = &self.workflow {
            dbs.push(workflow.db.clone());
        }
        if let Some(control) = &self.control {
            dbs.push(control.db.clone());
        }
        if let Some(notifier) = &self.notifier {
            dbs.push(notifier.db.clone());
        }
        if let Some(service_level) = &self.service_level {
            dbs.push(service_level.db.clone());
        }
        if let Some(relationship) = &self.relationship {
            dbs.push(relationship.db.clone());
        }
        if let Some(governance) = &self.governance {
            dbs.push(governance.db.clone());
        }
        dbs
    }
}

/// The whole configuration tree.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `http`.
    pub http: HttpConfig,
    /// `database`.
    pub database: DatabaseConfig,
    /// `bus`.
    pub bus: BusConfig,
    /// `auth`.
    pub auth: AuthConfig,
    /// `telemetry`.
    pub telemetry: TelemetryConfig,
    /// `outbox`.
    pub outbox: OutboxConfig,
    /// `leader_election`.
    pub leader_election: LeaderElectionConfig,
    /// `resolution`.
    pub resolution: ResolutionConfig,
    /// `workflow`.
    pub workflow: WorkflowConfig,
    /// `control`.
    pub control: ControlConfig,
    /// `notifier`.
    pub notifier: NotifierConfig,
    /// `service_level`.
    pub service_level: ServiceLevelConfig,
    /// `relationship`.
    pub relationship: RelationshipConfig,
    /// `governance`.
    pub governance: GovernanceConfig,
    /// `console`: how the web console signs people in.
    #[serde(default)]
    pub console: ConsoleConfig,
}

/// `console`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// The identity provider the console signs in with (authorisation code with PKCE); its
    /// tokens must be ones `auth` accepts.
    pub oidc: Option<crate::console::Oidc>,
}

impl ConsoleConfig {
    fn validate(&self) -> Result<(), meridian_chassis::config::ConfigError> {
        let Some(oidc) = &self.oidc else {
            return Ok(());
        };
        let bad = |key: &str, reason: &str| {
            Err(meridian_chassis::config::ConfigError::key(
                format!("console.oidc.{key}"),
                reason,
            ))
        };
        if !(oidc.issuer.starts_with("https://") || oidc.issuer.starts_with("http://")) {
            return bad("issuer", "must be an http or https URL");
        }
        if oidc.client_id.trim().is_empty() {
            return bad("client_id", "must not be empty");
        }
        if !oidc.scope.split_whitespace().any(|s| s == "openid") {
            return bad("scope", "must include openid");
        }
        Ok(())
    }
}

impl Config {
    /// Defaults, then `file`, then `MERIDIAN__*` variables; validated.
    ///
    /// # Errors
    /// A layer that cannot be read, or a key that is unknown or bad, named.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::load_with(file, &[])
    }

    /// As [`Config::load`], with extra default layers after the built-in ones (`meridian dev`).
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_with(file: Option<&Path>, extra: &[&str]) -> anyhow::Result<Self> {
        let mut layers = vec![
            meridian_chassis::config::DEFAULTS,
            meridian_resolution::config::DEFAULTS,
            meridian_workflow::config::DEFAULTS,
            meridian_control::config::DEFAULTS,
            meridian_notifier::config::DEFAULTS,
            meridian_service_level::config::DEFAULTS,
            meridian_relationship::config::DEFAULTS,
            meridian_governance::config::DEFAULTS,
        ];
        layers.extend_from_slice(extra);
        let config: Self = meridian_chassis::config::load(&layers, file)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), meridian_chassis::config::ConfigError> {
        self.database.validate()?;
        self.bus.validate()?;
        self.auth.validate()?;
        self.leader_election.validate()?;
        self.resolution.validate()?;
        self.workflow.validate()?;
        self.control.validate()?;
        self.notifier.validate()?;
        self.service_level.validate()?;
        self.relationship.validate()?;
        self.governance.validate()?;
        self.console.validate()
    }
}

/// Everything a running process shares.
#[derive(Clone)]
pub struct Runtime {
    /// Configuration.
    pub config: Config,
    /// Metrics.
    pub metrics: Metrics,
    /// The bus.
    pub bus: Bus,
    /// Token verification.
    pub auth: Authenticator,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// The pod's namespace and name, from the downward API (`POD_NAMESPACE`, `POD_NAME`).
#[expect(
    clippy::disallowed_methods,
    reason = "the downward API speaks through the environment"
)]
fn pod() -> Option<(String, String)> {
    Some((
        std::env::var("POD_NAMESPACE").ok()?,
        std::env::var("POD_NAME").ok()?,
    ))
}

impl Runtime {
    /// Builds the shared parts (the bus connects lazily).
    ///
    /// # Errors
    /// Bad auth configuration or key material.
    pub async fn new(config: Config) -> anyhow::Result<Self> {
        let metrics = Metrics::new().context("metrics")?;
        let bus = Bus::from_config(&config.bus, metrics.clone());
        let auth = Authenticator::new(&config.auth)?;
        if config.auth.jwks_url.is_some() {
            auth.refresh()
                .await
                .context("auth.jwks_url could not be fetched")?;
            auth.spawn_refresh();
        }
        Ok(Self {
            config,
            metrics,
            bus,
            auth,
            clock: Arc::new(SystemClock),
        })
    }

    /// Who runs singleton work (the workflow timers, discovery) for a service on `db`: made when
    /// a service needs it, so that only those talk to the Kubernetes API server.
    ///
    /// # Errors
    /// A Lease is asked for and no Kubernetes configuration can be found.
    pub async fn elector(&self, db: &Db) -> anyhow::Result<Elector> {
        Elector::from_config(
            &self.config.leader_election,
            db.backend(),
            &self.config.database.url,
            pod(),
            self.clock.clone(),
        )
        .await
    }

    /// Opens `service`'s database at `url`, applies its migrations when `migrate` (before
    /// anything reads it), and starts its outbox relay and its table maintenance (where
    /// autovacuum is off).
    ///
    /// # Errors
    /// A bad URL, or a migration failing.
    pub async fn database(
        &self,
        service: Service,
        url: &str,
        migrate: bool,
    ) -> anyhow::Result<(Db, Waker)> {
        let db = Db::connect(
            url,
            self.config.database.pool_size,
            Duration::from_secs(self.config.database.connect_timeout_seconds),
        )?
        .with_faults(meridian_chassis::faults::StoreFaults::new(
            self.config.database.fault_rate,
            self.config.database.fault_seed,
        ));
        if migrate {
            db.migrate(migrations(service)).await?;
        }
        let waker = Waker::default();
        let relay = Relay {
            service: service.name(),
            db: db.clone(),
            url: secrecy::SecretString::from(url.to_owned()),
            bus: self.bus.clone(),
            batch_size: self.config.outbox.batch_size,
            poll_interval: Duration::from_millis(self.config.outbox.poll_interval_ms),
            waker: waker.clone(),
            metrics: self.metrics.clone(),
        };
        tokio::spawn(relay.run());
        tokio::spawn(meridian_chassis::maintenance::run(
            db.clone(),
            service.name(),
        ));
        Ok((db, waker))
    }

    /// Runs `work` for as long as the process lives, on the one replica that holds `name`'s
    /// leadership (a Lease on a cluster, an advisory lock elsewhere).
    ///
    /// # Errors
    /// A Lease is asked for and no Kubernetes configuration can be found.
    async fn lead<F, Fut>(&self, db: &Db, name: &'static str, work: F) -> anyhow::Result<()>
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let elector = self.elector(db).await?;
        tokio::spawn(async move { elector.lead(name, work).await });
        Ok(())
    }

    /// Builds the resolution service on `db` and starts its consumers.
    pub fn resolution(&self, db: Db, waker: Waker) -> Resolution {
        let service = Resolution::new(
            db,
            self.clock.clone(),
            self.config.resolution.clone(),
            waker,
        );
        service.start_consumers(&self.bus, &self.config.bus.queue_prefix);
        service
    }

    /// Builds the control service on `db` and starts its consumer.
    pub fn control(&self, db: Db, waker: Waker) -> Control {
        let service = Control {
            db,
            clock: self.clock.clone(),
            config: self.config.control.clone(),
            waker,
        };
        service.start_consumers(&self.bus, &self.config.bus.queue_prefix);
        if self.config.control.discovery.enabled {
            let (runtime, control) = (self.clone(), service.clone());
            tokio::spawn(async move {
                let elector = match runtime.elector(&control.db).await {
                    Ok(elector) => elector,
                    Err(error) => {
                        tracing::error!(%error, "cluster discovery cannot elect a leader; it does not run");
                        return;
                    }
                };
                elector
                    .lead("control", move || {
                        let control = control.clone();
                        async move {
                            match kube::Client::try_default().await {
                                Ok(client) => meridian_control::discovery::run(control, client).await,
                                Err(error) => {
                                    tracing::error!(%error, "control.discovery needs a Kubernetes configuration");
                                    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                                }
                            }
                        }
                    })
                    .await;
            });
        }
        service
    }

    /// Builds the service-level service on `db`, starts its consumer and, under the leader
    /// election, its breach scheduler.
    ///
    /// # Errors
    /// A Lease is asked for and no Kubernetes configuration can be found.
    pub async fn service_level(&self, db: Db, waker: Waker) -> anyhow::Result<ServiceLevel> {
        let service = ServiceLevel::new(
            db,
            self.clock.clone(),
            self.config.service_level.clone(),
            waker,
        );
        service.start_consumers(&self.bus, &self.config.bus.queue_prefix);
        let scheduler = service.clone();
        self.lead(&service.db, "service-level", move || {
            meridian_service_level::scheduler::run(scheduler.clone())
        })
        .await?;
        Ok(service)
    }

    /// Builds the relationship service on `db`, starts its consumer and, under the leader
    /// election, its scheduler.
    ///
    /// # Errors
    /// No survey link secret, or a Lease is asked for and no Kubernetes configuration can be
    /// found.
    pub async fn relationship(&self, db: Db, waker: Waker) -> anyhow::Result<Relationship> {
        let service = Relationship::new(
            db,
            self.clock.clone(),
            self.config.relationship.clone(),
            waker,
        )?;
        service.start_consumers(&self.bus, &self.config.bus.queue_prefix);
        let scheduler = service.clone();
        self.lead(&service.db, "relationship", move || {
            meridian_relationship::scheduler::run(scheduler.clone())
        })
        .await?;
        Ok(service)
    }

    /// Builds the governance service on `db`, starts its consumer (every event, into the audit
    /// ledger) and, under the leader election, its checkpoint scheduler.
    ///
    /// # Errors
    /// No ledger signing key, or a Lease is asked for and no Kubernetes configuration can be
    /// found.
    pub async fn governance(&self, db: Db, waker: Waker) -> anyhow::Result<Governance> {
        let service = Governance::new(
            db,
            self.clock.clone(),
            self.config.governance.clone(),
            waker,
        )?;
        service.start_consumers(&self.bus, &self.config.bus.queue_prefix);
        let scheduler = service.clone();
        self.lead(&service.db, "governance", move || {
            meridian_governance::scheduler::run(scheduler.clone())
        })
        .await?;
        Ok(service)
    }

    /// Builds the notifier on `db` and starts its consumer and its sender.
    ///
    /// # Errors
    /// A transport that cannot be built.
    pub fn notifier(&self, db: Db, waker: Waker) -> anyhow::Result<Notifier> {
        let service = Notifier::new(db, self.clock.clone(), self.config.notifier.clone(), waker)?;
        service.start(&self.bus, &self.config.bus.queue_prefix);
        Ok(service)
    }

    /// Builds the workflow service on `db`: deploys the definitions of the workflows folder,
    /// then starts its consumer and its timer scheduler.
    ///
    /// # Errors
    /// A definition that does not validate, or the database failing.
    pub async fn workflow(&self, db: Db, waker: Waker) -> anyhow::Result<Workflow> {
        let service = Workflow::new(db, self.clock.clone(), self.config.workflow.clone(), waker);
        let dir = self.config.workflow.definitions_dir.clone();
        let deployed = if dir.is_empty() {
            Vec::new()
        } else if !Path::new(&dir).is_dir() {
            tracing::warn!(
                dir,
                "workflow.definitions_dir is not a folder; no definitions deployed from files"
            );
            Vec::new()
        } else {
            meridian_workflow::deploy_folder(&service, Path::new(&dir)).await?
        };
        let all = service.deployed().await?;
        let bindings = meridian_workflow::events::bindings(all.iter().map(AsRef::as_ref));
        tracing::info!(
            definitions = deployed.len(),
            bindings = bindings.len(),
            "workflow definitions deployed"
        );
        meridian_workflow::events::start(
            &self.bus,
            &self.config.bus.queue_prefix,
            service.clone(),
            bindings,
        );
        let timers = service.clone();
        self.lead(&service.db, "workflow", move || {
            meridian_workflow::scheduler::run(timers.clone())
        })
        .await?;
        Ok(service)
    }
}

/// Serves `resolution` (and what every service has) on `bind`; returns the bound address and
/// the server future.
///
/// # Errors
/// The address cannot be bound.
pub fn http_server(
    runtime: &Runtime,
    services: Services,
    bind: &str,
) -> anyhow::Result<(std::net::SocketAddr, actix_web::dev::Server)> {
    let readiness = Readiness {
        dbs: services.dbs(),
        bus: runtime.bus.clone(),
    };
    let openapi = web::Data::new(openapi_json());
    let metrics = web::Data::new(runtime.metrics.clone());
    let auth = web::Data::new(runtime.auth.clone());
    let readiness = web::Data::new(readiness);
    let max_body = runtime.config.http.max_body_bytes;
    let console = web::Data::new(crate::console::Console {
        dev_people: services.dev_people.clone(),
        oidc: runtime.config.console.oidc.clone(),
    });
    let in_flight = web::Data::new(meridian_chassis::http::InFlight::new(
        runtime.config.http.max_in_flight,
    ));
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(meridian_chassis::http::shed))
            .wrap(from_fn(observe))
            .app_data(in_flight.clone())
            .app_data(metrics.clone())
            .app_data(auth.clone())
            .app_data(readiness.clone())
            .app_data(openapi.clone())
            .app_data(console.clone())
            .configure(|cfg| meridian_chassis::http::configure(cfg, max_body))
            .configure(|cfg| {
                if let Some(resolution) = &services.resolution {
                    meridian_resolution::configure(resolution.clone())(cfg);
                }
                if let Some(workflow) = &services.workflow {
                    meridian_workflow::configure(workflow.clone())(cfg);
                }
                if let Some(control) = &services.control {
                    meridian_control::configure(control.clone())(cfg);
                }
                if let Some(notifier) = &services.notifier {
                    meridian_notifier::configure(notifier.clone())(cfg);
                }
                if let Some(service_level) = &services.service_level {
                    meridian_service_level::configure(service_level.clone())(cfg);
                }
                if let Some(relationship) = &services.relationship {
                    meridian_relationship::configure(relationship.clone())(cfg);
                }
                if let Some(governance) = &services.governance {
                    meridian_governance::configure(governance.clone())(cfg);
                }
            })
            .route("/v1/openapi.json", web::get().to(serve_openapi))
            .configure(crate::console::configure)
            .default_service(web::to(meridian_chassis::problem::not_found))
    })
    .disable_signals()
    .shutdown_timeout(10);
    if runtime.config.http.workers > 0 {
        server = server.workers(runtime.config.http.workers);
    }
    let server = server
        .bind(bind)
        .with_context(|| format!("http.bind: cannot listen on {bind}"))?;
    let address = server
        .addrs()
        .first()
        .copied()
        .context("no address bound")?;
    Ok((address, server.run()))
}

/// The OpenAPI document of every service this binary serves, as JSON.
pub fn openapi_json() -> String {
    let mut doc = meridian_resolution::api::openapi();
    doc.merge(meridian_workflow::api::openapi());
    doc.merge(meridian_control::api::openapi());
    doc.merge(meridian_notifier::api::openapi());
    doc.merge(meridian_service_level::api::openapi());
    doc.merge(meridian_relationship::api::openapi());
    doc.merge(meridian_governance::api::openapi());
    doc.info.title = "Meridian".to_owned();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let mut doc = serde_json::to_value(&doc).unwrap_or_default();
    meridian_chassis::http::document_problems(&mut doc);
    meridian_chassis::http::merge_all_of(&mut doc);
    meridian_chassis::http::texts_not_blank(&mut doc);
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".to_owned())
}

async fn serve_openapi(doc: web::Data<String>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.get_ref().clone())
}

/// Waits for Ctrl-C or SIGTERM, then stops the server gracefully.
pub async fn run_until_stopped(server: actix_web::dev::Server) -> anyhow::Result<()> {
    let handle = server.handle();
    let stop = async {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c().await?;
        anyhow::Ok(())
    };
    tokio::select! {
        result = server => result.context("http server")?,
        result = stop => {
            result?;
            tracing::info!("stopping");
            handle.stop(true).await;
        }
    }
    Ok(())
}

/// `meridian serve`.
///
/// # Errors
/// Start-up failures, named.
pub async fn serve(config: Config, service: Service, migrate_first: bool) -> anyhow::Result<()> {
    meridian_chassis::telemetry::init_logs(&config.telemetry)?;
    let runtime = Runtime::new(config).await?;
    let url = runtime.config.database.url.expose_secret().to_owned();
    let (db, waker) = runtime.database(service, &url, migrate_first).await?;
    let services = match service {
        Service::Resolution => Services {
            resolution: Some(runtime.resolution(db, waker)),
            ..Services::default()
        },
        Service::Workflow => Services {
            workflow: Some(runtime.workflow(db, waker).await?),
            ..Services::default()
        },
        Service::Control => Services {
            control: Some(runtime.control(db, waker)),
            ..Services::default()
        },
        Service::Notifier => Services {
            notifier: Some(runtime.notifier(db, waker)?),
            ..Services::default()
        },
        Service::ServiceLevel => Services {
            service_level: Some(runtime.service_level(db, waker).await?),
            ..Services::default()
        },
        Service::Relationship => Services {
            relationship: Some(runtime.relationship(db, waker).await?),
            ..Services::default()
        },
        Service::Governance => Services {
            governance: Some(runtime.governance(db, waker).await?),
            ..Services::default()
        },
    };
    if let Some(control) = &services.control
        && control.config.change_gate.enabled
    {
        let (address, gate) = meridian_control::api::gate::server(control.clone())?;
        tracing::info!(%address, "change gate listening (TLS)");
        tokio::spawn(gate);
    }
    let (address, server) = http_server(&runtime, services, &runtime.config.http.bind.clone())?;
    tracing::info!(service = service.name(), %address, "listening");
    // Tests and orchestration read the bound address from this line.
    println!("meridian: {} listening on http://{address}", service.name());
    run_until_stopped(server).await
}

/// A service's migrations.
pub fn migrations(service: Service) -> meridian_chassis::db::Migrations {
    match service {
        Service::Resolution => meridian_resolution::store::MIGRATIONS,
        Service::Workflow => meridian_workflow::store::MIGRATIONS,
        Service::Control => meridian_control::store::MIGRATIONS,
        Service::Notifier => meridian_notifier::store::MIGRATIONS,
        Service::ServiceLevel => meridian_service_level::store::MIGRATIONS,
        Service::Relationship => meridian_relationship::store::MIGRATIONS,
        Service::Governance => meridian_governance::store::MIGRATIONS,
    }
}

/// `meridian migrate`.
///
/// # Errors
/// The database unreachable, or a migration failing.
pub async fn migrate(config: &Config, service: Service) -> anyhow::Result<()> {
    meridian_chassis::telemetry::init_logs(&config.telemetry)?;
    let db = Db::connect(
        config.database.url.expose_secret(),
        1,
        Duration::from_secs(config.database.connect_timeout_seconds),
    )?;
    db.migrate(migrations(service))
        .await
        .with_context(|| format!("migrating {}", service.name()))?;
    println!("meridian: {} migrated", service.name());
    Ok(())
}

#[cfg(test)]
mod tests {
    /// `console.oidc` is checked at start: a bad issuer, client or scope is named.
    #[test]
    fn the_console_identity_provider_is_checked() {
        let layer = |issuer: &str, client: &str, scope: &str| {
            format!(
                "auth:\n  jwks_file: /etc/meridian/jwks.json\nconsole:\n  oidc:\n    issuer: \"{issuer}\"\n    client_id: \"{client}\"\n    scope: \"{scope}\"\n"
            )
        };
        let good = layer(
            "https://idp.example.org/realms/m",
            "console",
            "openid profile",
        );
        let config = super::Config::load_with(None, &[&good]).unwrap();
        assert_eq!(config.console.oidc.unwrap().client_id, "console");
        for (bad, key) in [
            (
                layer("ftp://idp", "console", "openid"),
                "console.oidc.issuer",
            ),
            (
                layer("https://idp", " ", "openid"),
                "console.oidc.client_id",
            ),
            (
                layer("https://idp", "console", "profile"),
                "console.oidc.scope",
            ),
        ] {
            let error = super::Config::load_with(None, &[&bad])
                .unwrap_err()
                .to_string();
            assert!(error.contains(key), "{error}");
        }
        let plain = "auth:\n  jwks_file: /etc/meridian/jwks.json\n";
        assert!(
            super::Config::load_with(None, &[plain])
                .unwrap()
                .console
                .oidc
                .is_none()
        );
    }

    /// The chart's ingress sends every route of a service to that service: each route's first
    /// path segment is listed under its service in `charts/meridian/templates/ingress.yaml`.
    #[test]
    fn the_ingress_routes_every_path_to_its_service() {
        let ingress = include_str!("../../../charts/meridian/templates/ingress.yaml");
        let listed = |service: &str| -> Vec<String> {
            let line = ingress
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("\"{service}\" (list")))
                .unwrap_or_else(|| panic!("{service} has no paths in the ingress"));
            line.split('"')
                .filter(|p| p.starts_with("/v1/"))
                .map(str::to_owned)
                .collect()
        };
        for (service, routes) in [
            ("resolution", meridian_resolution::api::ROUTES),
            ("workflow", meridian_workflow::api::ROUTES),
            ("control", meridian_control::api::ROUTES),
            ("notifier", meridian_notifier::api::ROUTES),
            ("service-level", meridian_service_level::api::ROUTES),
            ("relationship", meridian_relationship::api::ROUTES),
            ("governance", meridian_governance::api::ROUTES),
        ] {
            let prefixes = listed(service);
            for (_, path) in routes {
                let prefix: String = path.split('/').take(3).collect::<Vec<_>>().join("/");
                assert!(
                    prefixes.contains(&prefix),
                    "{path} of {service} is not routed by the ingress ({prefix})"
                );
            }
        }
    }

    /// The services' documents merge into one, where a schema is known by its name alone: two
    /// services may not give the same name to different schemas (the CI history was once
    /// documented as the incident history).
    #[test]
    fn no_two_services_document_different_schemas_under_one_name() {
        let mut seen: std::collections::HashMap<String, (&str, serde_json::Value)> =
            std::collections::HashMap::new();
        let mut clashes = Vec::new();
        for (service, doc) in [
            ("resolution", meridian_resolution::api::openapi()),
            ("workflow", meridian_workflow::api::openapi()),
            ("control", meridian_control::api::openapi()),
            ("notifier", meridian_notifier::api::openapi()),
            ("service-level", meridian_service_level::api::openapi()),
            ("relationship", meridian_relationship::api::openapi()),
            ("governance", meridian_governance::api::openapi()),
        ] {
            let doc = serde_json::to_value(&doc).unwrap();
            let schemas = doc["components"]["schemas"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for (name, schema) in schemas {
                match seen.get(&name) {
                    Some((other, before)) if before != &schema => {
                        clashes.push(format!("{name} ({other}, {service})"));
                    }
                    Some(_) => {}
                    None => {
                        seen.insert(name, (service, schema));
                    }
                }
            }
        }
        assert!(
            clashes.is_empty(),
            "one name, different schemas: {clashes:?}"
        );
    }

    /// The services share one API namespace (one process in `meridian dev`, one ingress on a
    /// cluster): no two may claim the same method and path.
    #[test]
    fn no_two_services_claim_the_same_route() {
        let mut seen = std::collections::HashMap::new();
        for (service, routes) in [
            ("resolution", meridian_resolution::api::ROUTES),
            ("workflow", meridian_workflow::api::ROUTES),
            ("control", meridian_control::api::ROUTES),
            ("notifier", meridian_notifier::api::ROUTES),
            ("service-level", meridian_service_level::api::ROUTES),
            ("relationship", meridian_relationship::api::ROUTES),
            ("governance", meridian_governance::api::ROUTES),
        ] {
            for route in routes {
                if let Some(other) = seen.insert(*route, service) {
                    panic!("{route:?} is claimed by {other} and {service}");
                }
            }
        }
    }

    /// The served document says what the API answers: every error is a problem in
    /// `application/problem+json`, every operation has a `default` (problem) response, and no
    /// schema is an `allOf` that no value could satisfy (a view flattening a closed input).
    #[test]
    fn the_openapi_document_describes_what_the_api_sends() {
        let doc: serde_json::Value = serde_json::from_str(&super::openapi_json()).unwrap();
        let text = doc.to_string();
        assert!(!text.contains("\"allOf\":[{\"$ref\":\"#/components/schemas/AgreementInput\""));
        // What the handlers check of a text is stated: its length, and that it is not blank.
        let title = &doc["components"]["schemas"]["CreateChange"]["properties"]["title"];
        assert_eq!(title["minLength"], 1, "{title}");
        assert_eq!(title["maxLength"], 200, "{title}");
        assert_eq!(
            title["pattern"],
            meridian_chassis::http::not_blank_pattern(),
            "{title}"
        );
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                operations += 1;
                let responses = operation["responses"].as_object().unwrap();
                assert!(
                    responses.contains_key("default"),
                    "{method} {path} has no default"
                );
                for (status, response) in responses {
                    let json = &response["content"]["application/json"]["schema"]["$ref"];
                    assert_ne!(
                        json, "#/components/schemas/ProblemBody",
                        "{method} {path} {status}: a problem documented as application/json"
                    );
                }
                for parameter in operation["parameters"].as_array().into_iter().flatten() {
                    if parameter["in"] == "path" {
                        let name = parameter["name"].as_str().unwrap();
                        assert!(
                            path.contains(&format!("{{{name}}}")),
                            "{method} {path}: `{name}` is documented in the path"
                        );
                    }
                }
            }
        }
        assert!(operations > 200, "{operations} operations");
        let view = &doc["components"]["schemas"]["AgreementView"];
        assert_eq!(view["additionalProperties"], false);
        assert!(view["properties"]["id"].is_object() && view["properties"]["name"].is_object());
    }
}
