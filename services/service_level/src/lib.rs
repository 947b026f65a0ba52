//! The service-level service: the service catalogue (ISO/IEC 20000-1 8.2.4), service level
//! management with SLA and OLA clocks computed from each ticket's event history (8.3.3), and
//! service reporting (9.1, 9.4); availability, continuity, capacity, demand and budgeting follow
//! in the same service.
//!
//! Incidents' events from resolution are kept as each ticket's history; after each one the
//! ticket's clocks are recomputed from the whole history under the agreements in force, and a
//! scheduler announces warnings and breaches (`service_level.sla.warning`, `.breached`) within a
//! second of their time.

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
use tokio::sync::Notify;

pub use config::ServiceLevelConfig;

/// The service's name.
pub const NAME: &str = "service-level";

/// What the handlers, the consumer and the scheduler share.
#[derive(Clone)]
pub struct ServiceLevel {
    /// The service's own database.
    pub db: Db,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The `service_level` configuration section.
    pub config: ServiceLevelConfig,
    /// Wakes the outbox relay after a commit.
    pub waker: Waker,
    /// Wakes the scheduler when a clock's next check may have moved earlier.
    pub checks: Arc<Notify>,
}

impl std::fmt::Debug for ServiceLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceLevel")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl ServiceLevel {
    /// The service on `db`.
    pub fn new(db: Db, clock: Arc<dyn Clock>, config: ServiceLevelConfig, waker: Waker) -> Self {
        Self {
            db,
            clock,
            config,
            waker,
            checks: Arc::new(Notify::new()),
        }
    }

    /// Starts the consumer of resolution's events.
    pub fn start_consumers(&self, bus: &meridian_chassis::bus::Bus, queue_prefix: &str) {
        events::start(bus, queue_prefix, self.clone());
    }
}

/// Registers the service's routes and state.
pub fn configure(service: ServiceLevel) -> impl FnOnce(&mut actix_web::web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(actix_web::web::Data::new(service));
        api::configure(cfg);
    }
}
