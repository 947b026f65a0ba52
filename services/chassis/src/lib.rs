//! The chassis every Meridian service stands on.
//!
//! A service crate owns its domain, its tables and its routes; everything they share lives here,
//! written once: configuration ([`config`]), logs, request ids and metrics ([`telemetry`]),
//! RFC 7807 errors and the JSON and query extractors that name the bad field ([`problem`]),
//! JWT authentication ([`auth`]), storage over PostgreSQL or SQLite ([`db`]), the bus over
//! RabbitMQ or in process ([`bus`]), the transactional outbox and its relay ([`outbox`]), the
//! consumer inbox ([`inbox`]), the audit trail ([`audit`]) and the HTTP surface every service has
//! (`/healthz`, `/readyz`, `/metrics`: [`http`]).
//!
//! Error policy per layer: domain code returns `thiserror` enums; store code returns
//! `diesel::QueryResult`; start-up and `main` use `anyhow` with context; HTTP handlers return
//! [`problem::Problem`].

pub mod audit;
pub mod auth;
pub mod batch;
pub mod bus;
pub mod checks;
pub mod clock;
pub mod config;
pub mod db;
pub mod faults;
pub mod fields;
pub mod guesses;
pub mod http;
pub mod inbox;
pub mod leader;
pub mod maintenance;
pub mod outbox;
pub mod problem;
pub mod schema;
pub mod telemetry;

#[cfg(feature = "testing")]
pub mod sinks;
#[cfg(feature = "testing")]
pub mod testing;

pub use clock::{Clock, SystemClock};
pub use problem::{Problem, ProblemCode};
