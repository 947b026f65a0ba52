//! The notifier: turns bus events into e-mail, chat and webhook messages, and gives approvers a
//! safe way to decide from them.
//!
//! - Tasks of the workflow engine (`workflow.task.created`, `.reminded`, `.escalated`) reach
//!   their assignee or candidates on each person's preferred channel, with a one-click action
//!   link ([`api::actions`]): single use, bound to the task and the approver, expiring, its
//!   token kept only as a hash. Opening it only shows what is being decided; confirming it sends
//!   the decision to the workflow engine, which checks authorisation and segregation of duties
//!   again at that moment.
//! - Routing rules send any other event (a major incident, an SLA warning, a contract about to
//!   expire) to a user, a role, a group or a shared chat channel.
//! - Integrators subscribe to event types (`/v1/webhooks`) and receive CloudEvents, signed
//!   (HMAC-SHA256 with a timestamp, the Standard Webhooks scheme).
//! - Every notification and delivery is recorded with its state, retried with backoff, then
//!   marked failed and visible; nothing is sent to internal addresses unless allowed.

pub mod api;
pub mod channels;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod events;
pub mod store;

use std::sync::Arc;

use meridian_chassis::Clock;
use meridian_chassis::db::Db;
use meridian_chassis::outbox::Waker;
use tokio::sync::Notify;

pub use config::NotifierConfig;

use channels::email::Mailer;
use channels::http::Http;

/// The service's name.
pub const NAME: &str = "notifier";

/// What the handlers, the consumer and the sender share.
#[derive(Clone)]
pub struct Notifier {
    /// The service's own database.
    pub db: Db,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The `notifier` configuration section.
    pub config: NotifierConfig,
    /// Wakes the outbox relay after a commit.
    pub waker: Waker,
    /// E-mail.
    pub mailer: Mailer,
    /// HTTP deliveries.
    pub http: Http,
    /// Wakes the sender when something new is due.
    pub due: Arc<Notify>,
    /// Wrong link tokens per client.
    pub guesses: Arc<meridian_chassis::guesses::Guesses>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("db", &self.db)
            .field("mailer", &self.mailer)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// The service on `db`, with its transports from `config`.
    ///
    /// # Errors
    /// A transport that cannot be built (bad sender address, TLS parameters, mail folder).
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        config: NotifierConfig,
        waker: Waker,
    ) -> anyhow::Result<Self> {
        let mailer = Mailer::from_config(&config.email)?;
        let http = Http::new(
            config.webhooks.allow_private,
            std::time::Duration::from_secs(config.webhooks.timeout_seconds),
        );
        Ok(Self {
            db,
            clock,
            waker,
            mailer,
            http,
            due: Arc::new(Notify::new()),
            guesses: Arc::new(meridian_chassis::guesses::Guesses::new(
                config.link_guesses_per_minute,
            )),
            config,
        })
    }

    /// Starts the consumer of every event and the sender.
    pub fn start(&self, bus: &meridian_chassis::bus::Bus, queue_prefix: &str) {
        events::start(bus, queue_prefix, self.clone());
        tokio::spawn(delivery::run(self.clone()));
    }
}

/// Registers the service's routes and state.
pub fn configure(service: Notifier) -> impl FnOnce(&mut actix_web::web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(actix_web::web::Data::new(service));
        api::configure(cfg);
    }
}
