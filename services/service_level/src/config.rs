//! The `service_level` section of the configuration.

use meridian_chassis::config::ConfigError;
use serde::Deserialize;

/// The defaults of the `service_level` section, compiled in.
pub const DEFAULTS: &str = include_str!("defaults.yaml");

/// `service_level`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceLevelConfig {
    /// How often clocks due for a warning or a breach are looked for. Default 250 ms (a breach is
    /// announced within a second of its due time).
    pub scheduler_poll_ms: u64,
    /// Clocks handled per look. Default 1000.
    pub scheduler_batch: i64,
    /// The priority whose targets time service requests (requests have none of their own): an
    /// agreement's targets for it apply to the requests of its service. Default 4.
    pub request_priority: i32,
}

impl ServiceLevelConfig {
    /// Checks what serde cannot.
    ///
    /// # Errors
    /// The first bad key, named.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(10..=1000).contains(&self.scheduler_poll_ms) {
            return Err(ConfigError::key(
                "service_level.scheduler_poll_ms",
                "must be 10 to 1000 (breaches are announced within a second)",
            ));
        }
        if !(1..=5).contains(&self.request_priority) {
            return Err(ConfigError::key(
                "service_level.request_priority",
                "must be 1 to 5",
            ));
        }
        if self.scheduler_batch < 1 {
            return Err(ConfigError::key(
                "service_level.scheduler_batch",
                "must be positive",
            ));
        }
        Ok(())
    }
}
