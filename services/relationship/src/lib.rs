//! The relationship service: business relationship management (ISO/IEC 20000-1 8.3.2) —
//! customers and their parties, service reviews at planned intervals, complaints with their
//! escalation, satisfaction surveys — and supplier management (8.3.4, 8.2.3) — suppliers and
//! what they operate, contracts and internal agreements with their targets, measurements,
//! disputes and periodic supplier reviews through the supplier-review workflow.
//!
//! Layers, data flowing one way: `api` (handlers) → `domain` (rules, no I/O) → `store` (diesel,
//! one transaction per command, with its audit and outbox rows) → `events` (what is published
//! and consumed). The `scheduler` escalates complaints, announces expiring contracts and starts
//! supplier reviews and periodic surveys when they fall due.

pub mod api;
pub mod config;
pub mod domain;
pub mod events;
pub mod scheduler;
pub mod store;

use std::sync::Arc;

use meridian_chassis::Clock;
use meridian_chassis::db::Db;
use meridian_chassis::outbox::Waker;

pub use config::RelationshipConfig;

/// The service's name: its database, queue and metrics label.
pub const NAME: &str = "relationship";

/// What the handlers, the consumer and the scheduler share.
#[derive(Clone)]
pub struct Relationship {
    /// The service's own database.
    pub db: Db,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The `relationship` configuration section.
    pub config: RelationshipConfig,
    /// Wakes the outbox relay after a commit.
    pub waker: Waker,
    /// Wrong survey links per client.
    pub guesses: Arc<meridian_chassis::guesses::Guesses>,
}

impl std::fmt::Debug for Relationship {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relationship")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl Relationship {
    /// The service on `db`.
    ///
    /// # Errors
    /// No key to sign survey links with.
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        config: RelationshipConfig,
        waker: Waker,
    ) -> Result<Self, meridian_chassis::config::ConfigError> {
        config.validate_for_service()?;
        Ok(Self {
            db,
            clock,
            guesses: Arc::new(meridian_chassis::guesses::Guesses::new(
                config.surveys.guesses_per_minute,
            )),
            config,
            waker,
        })
    }

    /// Starts the consumer of the catalogue, closed tickets and supplier-review workflows.
    pub fn start_consumers(&self, bus: &meridian_chassis::bus::Bus, queue_prefix: &str) {
        events::start(bus, queue_prefix, self.clone());
    }
}

/// Registers the service's routes and state on an actix app.
pub fn configure(service: Relationship) -> impl FnOnce(&mut actix_web::web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(actix_web::web::Data::new(service));
        api::configure(cfg);
    }
}
