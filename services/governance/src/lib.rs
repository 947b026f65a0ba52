//! The governance service: the service management system of ISO/IEC 20000-1 — context and
//! scope (4), policy and roles (5), risks, opportunities and objectives (6), competence and
//! documented information (7), internal audit and management review (9), nonconformity,
//! corrective action and improvement (10) — the tamper-evident audit ledger of every event of
//! every service, and the evidence report that walks an auditor from each clause to its records.
//!
//! Layers: `api` (handlers) → `domain` (rules and the clause catalogue, no I/O) → `store`
//! (diesel, one transaction per command with its audit and outbox rows) → `events` (the ledger
//! consumer, the document approval workflow's command, nonconformities from breaches and
//! complaints); `ledger` (hashing, signing, verifying) and `evidence` (the report).

pub mod api;
pub mod config;
pub mod domain;
pub mod events;
pub mod evidence;
pub mod ledger;
pub mod scheduler;
pub mod store;

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use meridian_chassis::Clock;
use meridian_chassis::db::Db;
use meridian_chassis::outbox::Waker;

pub use config::GovernanceConfig;

/// The service's name: its database, queue and metrics label.
pub const NAME: &str = "governance";

/// What the handlers, the consumers and the scheduler share.
#[derive(Clone)]
pub struct Governance {
    /// The service's own database.
    pub db: Db,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The `governance` configuration section.
    pub config: GovernanceConfig,
    /// Wakes the outbox relay after a commit.
    pub waker: Waker,
    /// Signs the ledger's entries and checkpoints.
    pub key: Arc<SigningKey>,
}

impl std::fmt::Debug for Governance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governance")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl Governance {
    /// The service on `db`.
    ///
    /// # Errors
    /// No ledger signing key.
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        config: GovernanceConfig,
        waker: Waker,
    ) -> Result<Self, meridian_chassis::config::ConfigError> {
        config.validate_for_service()?;
        let key = ledger::signing_key(&config.ledger.signing_key).map_err(|r| {
            meridian_chassis::config::ConfigError::key("governance.ledger.signing_key", r)
        })?;
        Ok(Self {
            db,
            clock,
            config,
            waker,
            key: Arc::new(key),
        })
    }

    /// Starts the ledger's consumer (every event) and the consumer of the document approval
    /// workflow's command.
    pub fn start_consumers(&self, bus: &meridian_chassis::bus::Bus, queue_prefix: &str) {
        events::start(bus, queue_prefix, self.clone());
    }
}

/// Registers the service's routes and state on an actix app.
pub fn configure(service: Governance) -> impl FnOnce(&mut actix_web::web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(actix_web::web::Data::new(service));
        api::configure(cfg);
    }
}
