//! The control service: the configuration management database (ISO/IEC 20000-1 8.2.6) — typed
//! CIs with attributes checked against their type, typed directional relations, impact
//! analysis, and every change on the CI's history — and change management, whose approvals the
//! workflow engine runs (submit publishes `control.change.submitted`; the decision comes back
//! over the bus, [`events`]). Release and deployment management follow (issue 4).

pub mod api;
pub mod config;
pub mod discovery;
pub mod domain;
pub mod events;
pub mod store;

use std::sync::Arc;

use meridian_chassis::Clock;
use meridian_chassis::db::Db;
use meridian_chassis::outbox::Waker;

pub use config::ControlConfig;

/// The service's name.
pub const NAME: &str = "control";

/// What the handlers share.
#[derive(Clone)]
pub struct Control {
    /// The service's own database.
    pub db: Db,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The `control` configuration section.
    pub config: ControlConfig,
    /// Wakes the outbox relay after a commit.
    pub waker: Waker,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").field("db", &self.db).finish()
    }
}

impl Control {
    /// Starts the consumer of the approval workflows' commands and outcomes.
    pub fn start_consumers(&self, bus: &meridian_chassis::bus::Bus, queue_prefix: &str) {
        events::start(bus, queue_prefix, self.clone());
    }
}

/// Registers the service's routes and state.
pub fn configure(service: Control) -> impl FnOnce(&mut actix_web::web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(actix_web::web::Data::new(service));
        api::configure(cfg);
    }
}

#[cfg(test)]
#[path = "discovery_tests.rs"]
mod discovery_tests;
