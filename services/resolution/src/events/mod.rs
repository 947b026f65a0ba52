//! What the resolution service publishes (`resolution.incident.*`, through the outbox) and
//! consumes (`service_level.service.*`, into the catalogue read model).

pub mod consume;
pub mod publish;

/// The CloudEvents `source` of everything this service publishes.
pub const SOURCE: &str = "/meridian/resolution";
