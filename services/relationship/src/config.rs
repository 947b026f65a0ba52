//! The `relationship` section of the configuration.

use meridian_chassis::config::ConfigError;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The defaults of the `relationship` section, compiled in.
pub const DEFAULTS: &str = include_str!("defaults.yaml");

/// `relationship`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationshipConfig {
    /// Where people reach Meridian: survey links start with it. Default `http://localhost:8080`.
    pub public_url: String,
    /// The service-level service's base URL: a service review's performance figures are read
    /// from its service reports. Default `http://127.0.0.1:8080` (`meridian dev`).
    pub service_level_url: String,
    /// How often the scheduler looks for complaints to escalate, contracts near their notice
    /// period, supplier reviews and periodic surveys due. Default 60 s.
    pub scheduler_poll_seconds: u64,
    /// `relationship.complaints`.
    pub complaints: ComplaintsConfig,
    /// `relationship.surveys`.
    pub surveys: SurveysConfig,
    /// `relationship.contracts`.
    pub contracts: ContractsConfig,
}

/// `relationship.complaints`: how long a complaint may stay unresolved.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplaintsConfig {
    /// A complaint not closed this many hours after it was recorded is escalated. Default 120.
    pub resolve_within_hours: i64,
    /// After an escalation, the next one comes this many hours later. Default 24.
    pub escalate_every_hours: i64,
    /// Who each escalation level goes to: level 1 to the first role, and so on; past the last,
    /// no further automatic escalation. Default `[relationship-manager, service-manager]`.
    pub escalation_roles: Vec<String>,
}

/// `relationship.surveys`: satisfaction surveys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurveysConfig {
    /// The share of closed incidents and requests that get a survey, 0 to 100. Default 100.
    pub sampling_percent: u32,
    /// A survey link stops working this many days after it was sent. Default 14.
    pub expires_after_days: i64,
    /// How many wrong survey links a client may try a minute before it is answered 429 (0: no
    /// limit). Default 20.
    pub guesses_per_minute: u32,
    /// The key that signs survey links (HMAC-SHA256), at least 32 characters; the relationship
    /// service does not start without it. `meridian dev` makes one.
    pub link_secret: SecretString,
}

/// `relationship.contracts`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractsConfig {
    /// `relationship.contract.expiring` is raised this many days before the last day notice can
    /// be given (the end date less the notice period). Default 30.
    pub expiry_warning_days: i64,
}

impl RelationshipConfig {
    /// Checks what serde cannot.
    ///
    /// # Errors
    /// The first bad key, named.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, url) in [
            ("relationship.public_url", &self.public_url),
            ("relationship.service_level_url", &self.service_level_url),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::key(key, "must be an http or https URL"));
            }
        }
        if !(1..=3600).contains(&self.scheduler_poll_seconds) {
            return Err(ConfigError::key(
                "relationship.scheduler_poll_seconds",
                "must be 1 to 3600",
            ));
        }
        if !(1..=8760).contains(&self.complaints.resolve_within_hours) {
            return Err(ConfigError::key(
                "relationship.complaints.resolve_within_hours",
                "must be 1 to 8760",
            ));
        }
        if !(1..=8760).contains(&self.complaints.escalate_every_hours) {
            return Err(ConfigError::key(
                "relationship.complaints.escalate_every_hours",
                "must be 1 to 8760",
            ));
        }
        if self
            .complaints
            .escalation_roles
            .iter()
            .any(|r| r.trim().is_empty())
        {
            return Err(ConfigError::key(
                "relationship.complaints.escalation_roles",
                "must not hold an empty role",
            ));
        }
        if self.surveys.sampling_percent > 100 {
            return Err(ConfigError::key(
                "relationship.surveys.sampling_percent",
                "must be 0 to 100",
            ));
        }
        if !(1..=365).contains(&self.surveys.expires_after_days) {
            return Err(ConfigError::key(
                "relationship.surveys.expires_after_days",
                "must be 1 to 365",
            ));
        }
        let secret = self.surveys.link_secret.expose_secret();
        if !secret.is_empty() && secret.len() < 32 {
            return Err(ConfigError::key(
                "relationship.surveys.link_secret",
                "must be at least 32 characters",
            ));
        }
        if !(0..=365).contains(&self.contracts.expiry_warning_days) {
            return Err(ConfigError::key(
                "relationship.contracts.expiry_warning_days",
                "must be 0 to 365",
            ));
        }
        Ok(())
    }

    /// Checks what the running service needs beyond [`RelationshipConfig::validate`].
    ///
    /// # Errors
    /// No survey link secret.
    pub fn validate_for_service(&self) -> Result<(), ConfigError> {
        if self.surveys.link_secret.expose_secret().len() < 32 {
            return Err(ConfigError::key(
                "relationship.surveys.link_secret",
                "must be set (at least 32 characters) for the relationship service to sign survey links",
            ));
        }
        Ok(())
    }
}
