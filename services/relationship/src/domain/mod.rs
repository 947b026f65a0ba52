//! The rules of the relationship processes, without I/O: complaint states and escalation, survey
//! sampling and links, supplier scorecards, contract and review dates.

pub mod token;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A complaint's state (8.3.2: recorded, investigated, acted on, closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComplaintState {
    /// Recorded, not yet looked into.
    Recorded,
    /// Being investigated.
    Investigating,
    /// Action taken, waiting to be closed with the customer.
    Actioned,
    /// Closed.
    Closed,
}

impl ComplaintState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recorded => "recorded",
            Self::Investigating => "investigating",
            Self::Actioned => "actioned",
            Self::Closed => "closed",
        }
    }

    /// The state of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "recorded" => Self::Recorded,
            "investigating" => Self::Investigating,
            "actioned" => Self::Actioned,
            "closed" => Self::Closed,
            _ => return None,
        })
    }
}

/// What can be done to a complaint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComplaintAction {
    /// Take it up (or add to the investigation).
    Investigate,
    /// Record the action taken.
    Act,
    /// Close it with its resolution.
    Close,
    /// Open it again.
    Reopen,
    /// Escalate it by hand.
    Escalate,
}

impl ComplaintAction {
    /// Every action, as its path segment.
    pub const ALL: [Self; 5] = [
        Self::Investigate,
        Self::Act,
        Self::Close,
        Self::Reopen,
        Self::Escalate,
    ];

    /// The path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Investigate => "investigate",
            Self::Act => "act",
            Self::Close => "close",
            Self::Reopen => "reopen",
            Self::Escalate => "escalate",
        }
    }

    /// The action of a path segment.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The state after this action from `from`; `None` when `from` does not allow it.
    pub fn apply(self, from: ComplaintState) -> Option<ComplaintState> {
        use ComplaintState as S;
        match (self, from) {
            (Self::Investigate, S::Recorded | S::Investigating) => Some(S::Investigating),
            (Self::Act, S::Investigating | S::Actioned) => Some(S::Actioned),
            (Self::Close, S::Actioned) => Some(S::Closed),
            (Self::Reopen, S::Closed) => Some(S::Investigating),
            (Self::Escalate, s) if s != S::Closed => Some(s),
            _ => None,
        }
    }

    /// The actions `state` allows.
    pub fn allowed(state: ComplaintState) -> Vec<&'static str> {
        Self::ALL
            .into_iter()
            .filter(|a| a.apply(state).is_some())
            .map(Self::as_str)
            .collect()
    }
}

/// The next escalation of a complaint at `level` (0 = never escalated): the role it goes to and
/// when the one after is due; `None` past the last configured role.
pub fn escalation(
    level: i32,
    roles: &[String],
    every_hours: i64,
    now: DateTime<Utc>,
) -> Option<(String, DateTime<Utc>)> {
    let role = roles.get(usize::try_from(level).ok()?)?;
    Some((role.clone(), now + Duration::hours(every_hours)))
}

/// Whether a closed ticket gets a survey: a stable draw from its id, so a redelivered event or
/// another replica decides the same way.
pub fn sampled(ticket_id: &str, percent: u32) -> bool {
    let digest = Sha256::digest(ticket_id.as_bytes());
    let draw = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 100;
    draw < percent
}

/// A contract's service level target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// What is measured, e.g. `availability`, `response_hours`.
    pub metric: String,
    /// The agreed level.
    pub target: f64,
    /// Its unit, e.g. `%`, `hours`.
    #[serde(default)]
    pub unit: String,
    /// `at_least` (higher is better) or `at_most`.
    pub comparison: String,
}

impl Target {
    /// Whether `value` meets the target.
    pub fn met_by(&self, value: f64) -> bool {
        if self.comparison == "at_most" {
            value <= self.target
        } else {
            value >= self.target
        }
    }
}

/// One line of a supplier scorecard: a target and the period's measurements against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScoreLine {
    /// The metric.
    pub metric: String,
    /// The target.
    pub target: f64,
    /// Its unit.
    pub unit: String,
    /// `at_least` or `at_most`.
    pub comparison: String,
    /// Measurements in the period.
    pub measurements: i32,
    /// How many met the target.
    pub met: i32,
    /// Their average.
    pub average: Option<f64>,
}

/// The scorecard of `targets` from `(metric, value)` measurements of the period.
pub fn scorecard(targets: &[Target], measured: &[(String, f64)]) -> Vec<ScoreLine> {
    targets
        .iter()
        .map(|t| {
            let values: Vec<f64> = measured
                .iter()
                .filter(|(m, _)| *m == t.metric)
                .map(|(_, v)| *v)
                .collect();
            let count = i32::try_from(values.len()).unwrap_or(i32::MAX);
            let met =
                i32::try_from(values.iter().filter(|v| t.met_by(**v)).count()).unwrap_or(i32::MAX);
            #[expect(clippy::cast_precision_loss, reason = "a count of measurements")]
            let average =
                (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
            ScoreLine {
                metric: t.metric.clone(),
                target: t.target,
                unit: t.unit.clone(),
                comparison: t.comparison.clone(),
                measurements: count,
                met,
                average,
            }
        })
        .collect()
}

/// The last day notice can be given on a contract ending `ends_on` with `notice_days`.
pub fn notice_by(ends_on: NaiveDate, notice_days: i32) -> NaiveDate {
    ends_on - Duration::days(i64::from(notice_days))
}

/// From this day a contract is announced as expiring: `warning_days` before its notice date.
pub fn expiry_warning_from(ends_on: NaiveDate, notice_days: i32, warning_days: i64) -> NaiveDate {
    notice_by(ends_on, notice_days) - Duration::days(warning_days)
}

/// The next due date after `due`, stepping `interval_days` until it is after `today` (a review
/// missed for months is due once, not once per missed interval).
pub fn next_due(due: NaiveDate, interval_days: i32, today: NaiveDate) -> NaiveDate {
    let step = Duration::days(i64::from(interval_days.max(1)));
    let mut next = due + step;
    while next <= today {
        next += step;
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complaint_is_investigated_acted_on_and_closed_in_that_order() {
        use ComplaintAction as A;
        use ComplaintState as S;
        assert_eq!(A::Close.apply(S::Recorded), None);
        assert_eq!(A::Act.apply(S::Recorded), None);
        assert_eq!(A::Investigate.apply(S::Recorded), Some(S::Investigating));
        assert_eq!(A::Act.apply(S::Investigating), Some(S::Actioned));
        assert_eq!(A::Close.apply(S::Actioned), Some(S::Closed));
        assert_eq!(A::Escalate.apply(S::Closed), None);
        assert_eq!(A::Reopen.apply(S::Closed), Some(S::Investigating));
        assert_eq!(A::allowed(S::Closed), vec!["reopen"]);
    }

    #[test]
    fn escalation_climbs_the_configured_roles_and_stops_after_the_last() {
        let roles = vec![
            "relationship-manager".to_owned(),
            "service-manager".to_owned(),
        ];
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let (role, next) = escalation(0, &roles, 24, now).unwrap();
        assert_eq!(
            (role.as_str(), next),
            ("relationship-manager", now + Duration::hours(24))
        );
        assert_eq!(escalation(1, &roles, 24, now).unwrap().0, "service-manager");
        assert!(escalation(2, &roles, 24, now).is_none());
    }

    #[test]
    fn sampling_is_stable_and_follows_the_rate() {
        let ids: Vec<String> = (0..2000).map(|i| format!("ticket-{i}")).collect();
        let taken = ids.iter().filter(|id| sampled(id, 25)).count();
        assert!((400..600).contains(&taken), "{taken} of 2000 at 25%");
        assert!(ids.iter().all(|id| sampled(id, 25) == sampled(id, 25)));
        assert!(ids.iter().all(|id| sampled(id, 100) && !sampled(id, 0)));
    }

    #[test]
    fn a_scorecard_counts_the_measurements_meeting_each_target() {
        let targets = vec![
            Target {
                metric: "availability".into(),
                target: 99.5,
                unit: "%".into(),
                comparison: "at_least".into(),
            },
            Target {
                metric: "response_hours".into(),
                target: 4.0,
                unit: "hours".into(),
                comparison: "at_most".into(),
            },
            Target {
                metric: "unmeasured".into(),
                target: 1.0,
                unit: String::new(),
                comparison: "at_least".into(),
            },
        ];
        let measured = vec![
            ("availability".to_owned(), 99.9),
            ("availability".to_owned(), 99.1),
            ("response_hours".to_owned(), 3.0),
        ];
        let card = scorecard(&targets, &measured);
        assert_eq!((card[0].measurements, card[0].met), (2, 1));
        assert!((card[0].average.unwrap() - 99.5).abs() < 1e-9);
        assert_eq!((card[1].measurements, card[1].met), (1, 1));
        assert_eq!((card[2].measurements, card[2].average), (0, None));
    }

    #[test]
    fn contract_dates() {
        let end = NaiveDate::from_ymd_opt(2027, 6, 30).unwrap();
        assert_eq!(
            notice_by(end, 90),
            NaiveDate::from_ymd_opt(2027, 4, 1).unwrap()
        );
        assert_eq!(
            expiry_warning_from(end, 90, 30),
            NaiveDate::from_ymd_opt(2027, 3, 2).unwrap()
        );
        let due = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        assert_eq!(
            next_due(due, 90, today),
            NaiveDate::from_ymd_opt(2026, 12, 27).unwrap()
        );
    }
}
