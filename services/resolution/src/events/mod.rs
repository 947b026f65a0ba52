//! What the resolution service publishes (`resolution.incident.*`, `.problem.*`, `.request.*`,
//! through the outbox) and consumes (`consume`: read models and failed deployments;
//! `commands`: the fulfilment workflows' commands).

pub mod commands;
pub mod consume;
pub mod publish;

/// The CloudEvents `source` of everything this service publishes.
pub const SOURCE: &str = "/meridian/resolution";
