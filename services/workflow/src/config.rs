//! The `workflow` section of the configuration.

use serde::Deserialize;

/// The defaults of the `workflow` section, compiled in.
pub const DEFAULTS: &str = include_str!("defaults.yaml");

/// `workflow`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowConfig {
    /// The folder whose `.yaml` definitions are deployed at start (a new content becomes the
    /// newest version). Default `workflows`; empty: none.
    pub definitions_dir: String,
    /// How often due timers are looked for, in milliseconds. Default 1000.
    pub timer_poll_ms: u64,
    /// Timers fired per look. Default 100.
    pub timer_batch: u32,
}

impl WorkflowConfig {
    /// Checks what serde cannot.
    ///
    /// # Errors
    /// A key and what is wrong with it.
    pub fn validate(&self) -> Result<(), meridian_chassis::config::ConfigError> {
        if self.timer_poll_ms == 0 {
            return Err(meridian_chassis::config::ConfigError::key(
                "workflow.timer_poll_ms",
                "must be at least 1",
            ));
        }
        if self.timer_batch == 0 {
            return Err(meridian_chassis::config::ConfigError::key(
                "workflow.timer_batch",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
