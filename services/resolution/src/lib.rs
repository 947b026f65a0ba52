//! The resolution service: incident management (ISO/IEC 20000-1 8.6.1).
//!
//! Layers, data flowing one way: `api` (handlers) → `domain` (rules, no I/O) → `store`
//! (diesel, one transaction per command, with its history, audit and outbox rows) → `events`
//! (what is published and consumed). Later: service requests, problems and known errors.

pub mod api;
pub mod config;
pub mod domain;
pub mod events;
pub mod store;

use std::sync::Arc;

use meridian_chassis::Clock;
use meridian_chassis::batch::Batcher;
use meridian_chassis::bus::Bus;
use meridian_chassis::db::Db;
use meridian_chassis::outbox::Waker;

pub use config::ResolutionConfig;

/// The service's name: its database, queue and metrics label.
pub const NAME: &str = "resolution";

/// What the handlers share.
#[derive(Clone)]
pub struct Resolution {
    /// The service's own database.
    pub db: Db,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The `resolution` configuration section.
    pub config: ResolutionConfig,
    /// Wakes the outbox relay after a commit.
    pub waker: Waker,
    /// Commits concurrent incident creations together (group commit).
    pub creations:
        Batcher<api::incidents::Creation, domain::incident::Incident, meridian_chassis::Problem>,
}

impl std::fmt::Debug for Resolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolution").field("db", &self.db).finish()
    }
}

impl Resolution {
    /// The service on `db`: starts the group-commit lanes of incident creation.
    pub fn new(db: Db, clock: Arc<dyn Clock>, config: ResolutionConfig, waker: Waker) -> Self {
        let creations = Batcher::new(
            "incident-create",
            db.clone(),
            api::incidents::create_all(config.priority_matrix, config.problems),
        );
        Self {
            db,
            clock,
            config,
            waker,
            creations,
        }
    }

    /// Starts the service's consumers on `bus` (read models, failed deployments, the request
    /// fulfilment workflows' commands).
    pub fn start_consumers(&self, bus: &Bus, queue_prefix: &str) {
        events::consume::start(
            bus,
            queue_prefix,
            self.db.clone(),
            self.clock.clone(),
            self.config.priority_matrix,
            self.config.problems,
        );
        events::commands::start(bus, queue_prefix, self.clone());
    }
}

/// Registers the service's routes and state on an actix app.
pub fn configure(service: Resolution) -> impl FnOnce(&mut actix_web::web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(actix_web::web::Data::new(service));
        api::configure(cfg);
    }
}
