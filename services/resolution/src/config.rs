//! The `resolution` section of the configuration.

use serde::Deserialize;

use crate::domain::priority::{Priority, PriorityMatrix};

/// The defaults of the `resolution` section, compiled in.
pub const DEFAULTS: &str = include_str!("defaults.yaml");

/// `resolution`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolutionConfig {
    /// Impact × urgency → priority. Default the ITIL matrix (high/high = 1 … low/low = 5).
    pub priority_matrix: PriorityMatrix,
    /// When an incident may be declared major.
    pub major_incident: MajorIncidentConfig,
    /// Alerts from monitoring (`/v1/intake/*`).
    pub intake: IntakeConfig,
    /// Problem management.
    pub problems: ProblemsConfig,
}

/// `resolution.problems`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProblemsConfig {
    /// A new incident on the CI (or, for a problem naming no CI, the service) of a problem
    /// resolved within this many days is a recurrence: it is linked and the problem's review
    /// reopens. 0 turns the detection off. Default 90.
    pub recurrence_window_days: u32,
    /// `GET /v1/problems/proposals` by default: the days looked back. Default 7.
    pub trend_window_days: i64,
    /// … and the unexplained incidents on one CI or service that call for a problem. Default 3.
    pub trend_min_incidents: usize,
}

impl ProblemsConfig {
    /// Problems resolved since when count, for incidents created `now`; `None` when off.
    pub fn recurrence_since(
        self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::NaiveDateTime> {
        (self.recurrence_window_days > 0).then(|| {
            (now - chrono::Duration::days(i64::from(self.recurrence_window_days))).naive_utc()
        })
    }
}

/// `resolution.intake`: alerts from monitoring into incidents.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeConfig {
    /// The bearer token monitoring sends (Alertmanager's `http_config.authorization`). Empty:
    /// not accepted.
    pub token: secrecy::SecretString,
    /// The key of an HMAC-SHA256 signature of the body, sent as `X-Meridian-Signature:
    /// sha256=<hex>`. Empty: not accepted.
    pub hmac_secret: secrecy::SecretString,
    /// A resolved alert resolves its incident (otherwise it only adds a note). Default false.
    pub resolve_on_resolved: bool,
    /// The label naming the service. Default `service`.
    pub service_label: String,
    /// The labels naming the CI, first found wins. Default `[ci, instance]`.
    pub ci_labels: Vec<String>,
    /// Impact and urgency by the `severity` label (an unknown severity is medium/medium).
    pub severities: std::collections::BTreeMap<String, SeverityLevels>,
    /// Mapping rules, first match wins: alerts whose labels equal `match` get its service, CI,
    /// group or category.
    pub rules: Vec<IntakeRule>,
}

/// `resolution.intake.severities.<severity>`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityLevels {
    /// Impact.
    pub impact: crate::domain::priority::Level,
    /// Urgency.
    pub urgency: crate::domain::priority::Level,
}

/// `resolution.intake.rules[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeRule {
    /// Labels and the values they must have.
    #[serde(rename = "match")]
    pub matches: std::collections::BTreeMap<String, String>,
    /// The service the alert is about.
    pub service: Option<String>,
    /// The CI it is about.
    pub configuration_item: Option<String>,
    /// The group that gets the incident.
    pub assignment_group: Option<String>,
    /// The incident's category (default `monitoring`).
    pub category: Option<String>,
}

/// `resolution.major_incident`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MajorIncidentConfig {
    /// Priorities that qualify. Default `[1]`.
    pub priorities: Vec<Priority>,
    /// Catalogue criticalities of the affected service that qualify (`low`, `medium`, `high`,
    /// `critical`). Default `[critical]`.
    pub service_criticalities: Vec<String>,
}

impl ResolutionConfig {
    /// Checks what serde cannot.
    ///
    /// # Errors
    /// A key and what is wrong with it.
    pub fn validate(&self) -> Result<(), meridian_chassis::config::ConfigError> {
        for criticality in &self.major_incident.service_criticalities {
            if !["low", "medium", "high", "critical"].contains(&criticality.as_str()) {
                return Err(meridian_chassis::config::ConfigError::key(
                    "resolution.major_incident.service_criticalities",
                    format!("`{criticality}` is not one of low, medium, high, critical"),
                ));
            }
        }
        if !(1..=365).contains(&self.problems.trend_window_days) {
            return Err(meridian_chassis::config::ConfigError::key(
                "resolution.problems.trend_window_days",
                "must be 1 to 365",
            ));
        }
        if !(2..=1000).contains(&self.problems.trend_min_incidents) {
            return Err(meridian_chassis::config::ConfigError::key(
                "resolution.problems.trend_min_incidents",
                "must be 2 to 1000",
            ));
        }
        if self.problems.recurrence_window_days > 3650 {
            return Err(meridian_chassis::config::ConfigError::key(
                "resolution.problems.recurrence_window_days",
                "must be 0 (off) to 3650",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Root {
        resolution: ResolutionConfig,
    }

    #[test]
    fn the_shipped_defaults_parse_and_validate() {
        let root: Root = meridian_chassis::config::load_from(&[DEFAULTS], None, vec![]).unwrap();
        root.resolution.validate().unwrap();
        assert_eq!(root.resolution.major_incident.priorities.len(), 1);
        assert_eq!(
            root.resolution.priority_matrix,
            crate::domain::priority::PriorityMatrix::itil()
        );
    }

    #[test]
    fn a_matrix_cell_out_of_range_fails_naming_it() {
        let error = meridian_chassis::config::load_from::<Root>(
            &[
                DEFAULTS,
                "resolution:\n  priority_matrix:\n    low:\n      low: 9\n",
            ],
            None,
            vec![],
        )
        .err()
        .unwrap();
        assert!(
            error
                .to_string()
                .contains("resolution.priority_matrix.low.low"),
            "{error}"
        );
    }

    #[test]
    fn a_recurrence_window_over_ten_years_fails_naming_it_and_zero_turns_it_off() {
        let load = |days: &str| {
            meridian_chassis::config::load_from::<Root>(
                &[
                    DEFAULTS,
                    &format!("resolution:\n  problems:\n    recurrence_window_days: {days}\n"),
                ],
                None,
                vec![],
            )
            .unwrap()
            .resolution
        };
        let error = load("3651").validate().err().unwrap();
        assert!(
            error
                .to_string()
                .contains("resolution.problems.recurrence_window_days"),
            "{error}"
        );
        let bad_trend = meridian_chassis::config::load_from::<Root>(
            &[
                DEFAULTS,
                "resolution:\n  problems:\n    trend_min_incidents: 1\n",
            ],
            None,
            vec![],
        )
        .unwrap()
        .resolution
        .validate()
        .err()
        .unwrap();
        assert!(
            bad_trend
                .to_string()
                .contains("resolution.problems.trend_min_incidents"),
            "{bad_trend}"
        );
        let off = load("0");
        off.validate().unwrap();
        assert_eq!(
            off.problems
                .recurrence_since(meridian_chassis::Clock::now(&meridian_chassis::SystemClock)),
            None
        );
        let on = load("30").problems;
        let now = meridian_chassis::Clock::now(&meridian_chassis::SystemClock);
        assert_eq!(
            on.recurrence_since(now),
            Some((now - chrono::Duration::days(30)).naive_utc())
        );
    }
}
