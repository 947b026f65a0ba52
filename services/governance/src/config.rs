//! The `governance` section of the configuration.

use meridian_chassis::config::ConfigError;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The defaults of the `governance` section, compiled in.
pub const DEFAULTS: &str = include_str!("defaults.yaml");

/// `governance`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernanceConfig {
    /// How often the scheduler looks whether a ledger checkpoint is due. Default 60 s.
    pub scheduler_poll_seconds: u64,
    /// `governance.ledger`.
    pub ledger: LedgerConfig,
    /// `governance.risks`.
    pub risks: RiskCriteria,
    /// `governance.evidence`.
    pub evidence: EvidenceConfig,
    /// `governance.nonconformities`.
    pub nonconformities: NonconformityConfig,
}

/// `governance.ledger`: the audit ledger's signatures and checkpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// The Ed25519 key that signs every entry and checkpoint: the base64 of its 32-byte seed
    /// (secret). The governance service does not start without it; `meridian dev` makes one.
    pub signing_key: SecretString,
    /// A checkpoint after this many new entries. Default 1000.
    pub checkpoint_every: i64,
    /// And at least this often while entries come. Default 300 s.
    pub checkpoint_interval_seconds: i64,
}

/// `governance.risks`: the criteria risks are assessed against (likelihood × impact, 1 to 25).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskCriteria {
    /// A risk scoring at most this is acceptable (low). Default 6.
    pub acceptance_score: i32,
    /// From this score a risk is high (between the two: medium). Default 15.
    pub high_score: i32,
}

/// `governance.evidence`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceConfig {
    /// Standing records (scope, policy, roles) not confirmed for this long are stale evidence.
    /// Default 365.
    pub stale_after_days: i64,
}

/// `governance.nonconformities`: where nonconformities come from besides audits and people.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NonconformityConfig {
    /// Each SLA breach (`service_level.sla.breached`) is recorded as a nonconformity. Default
    /// true.
    pub from_sla_breaches: bool,
    /// Each escalated complaint (`relationship.complaint.escalated`, once per complaint).
    /// Default true.
    pub from_complaints: bool,
}

impl GovernanceConfig {
    /// Checks what serde cannot.
    ///
    /// # Errors
    /// The first bad key, named.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=3600).contains(&self.scheduler_poll_seconds) {
            return Err(ConfigError::key(
                "governance.scheduler_poll_seconds",
                "must be 1 to 3600",
            ));
        }
        if !self.ledger.signing_key.expose_secret().is_empty() {
            crate::ledger::signing_key(&self.ledger.signing_key)
                .map_err(|reason| ConfigError::key("governance.ledger.signing_key", reason))?;
        }
        if self.ledger.checkpoint_every < 1 {
            return Err(ConfigError::key(
                "governance.ledger.checkpoint_every",
                "must be positive",
            ));
        }
        if self.ledger.checkpoint_interval_seconds < 1 {
            return Err(ConfigError::key(
                "governance.ledger.checkpoint_interval_seconds",
                "must be positive",
            ));
        }
        let r = self.risks;
        if !(1..=25).contains(&r.acceptance_score)
            || !(1..=25).contains(&r.high_score)
            || r.acceptance_score >= r.high_score
        {
            return Err(ConfigError::key(
                "governance.risks",
                "acceptance_score and high_score are 1 to 25, acceptance below high",
            ));
        }
        if !(1..=3650).contains(&self.evidence.stale_after_days) {
            return Err(ConfigError::key(
                "governance.evidence.stale_after_days",
                "must be 1 to 3650",
            ));
        }
        Ok(())
    }

    /// Checks what the running service needs beyond [`GovernanceConfig::validate`].
    ///
    /// # Errors
    /// No ledger signing key.
    pub fn validate_for_service(&self) -> Result<(), ConfigError> {
        crate::ledger::signing_key(&self.ledger.signing_key)
            .map(|_| ())
            .map_err(|reason| ConfigError::key("governance.ledger.signing_key", reason))
    }
}
