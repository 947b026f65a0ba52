//! The rules of the management system, without I/O: risk assessment against the criteria,
//! the states of nonconformities, improvements and documents, auditor independence, objective
//! progress; and the clauses of ISO/IEC 20000-1 with what evidences each ([`clauses`]).

pub mod clauses;

use crate::config::RiskCriteria;

/// A risk's score (likelihood × impact) and level under the criteria.
pub fn assess(likelihood: i32, impact: i32, criteria: RiskCriteria) -> (i32, &'static str) {
    let score = likelihood * impact;
    let level = if score <= criteria.acceptance_score {
        "low"
    } else if score >= criteria.high_score {
        "high"
    } else {
        "medium"
    };
    (score, level)
}

/// Whether a risk may be accepted as it is: a low one, or any with a recorded treatment of
/// `accept` (taken knowingly by its owner).
pub fn acceptable(level: &str) -> bool {
    level == "low"
}

/// The steps of a nonconformity (10.1): recorded → reacted to → root cause analysed →
/// corrective action taken → effectiveness reviewed (closed when effective; back to analysis
/// when not).
pub const NC_FLOW: [(&str, &str, &str); 4] = [
    ("react", "open", "reacted"),
    ("analyse", "reacted", "analysed"),
    ("correct", "analysed", "corrected"),
    ("review", "corrected", "closed"),
];

/// The state after `action` from `state`, or `None`.
pub fn nc_step(action: &str, state: &str) -> Option<&'static str> {
    NC_FLOW
        .iter()
        .find(|(a, from, _)| *a == action && *from == state)
        .map(|(_, _, to)| *to)
}

/// The actions `state` allows.
pub fn nc_allowed(state: &str) -> Vec<&'static str> {
    NC_FLOW
        .iter()
        .filter(|(_, from, _)| *from == state)
        .map(|(a, _, _)| *a)
        .collect()
}

/// The steps of an improvement (10.2): proposed → evaluated against the criteria → approved or
/// rejected → planned → implemented → measured against its objective.
pub const IMPROVEMENT_FLOW: [(&str, &str, &str); 6] = [
    ("evaluate", "proposed", "evaluated"),
    ("approve", "evaluated", "approved"),
    ("reject", "evaluated", "rejected"),
    ("plan", "approved", "planned"),
    ("implement", "planned", "implemented"),
    ("measure", "implemented", "measured"),
];

/// The state after `action` from `state`, or `None`.
pub fn improvement_step(action: &str, state: &str) -> Option<&'static str> {
    IMPROVEMENT_FLOW
        .iter()
        .find(|(a, from, _)| *a == action && *from == state)
        .map(|(_, _, to)| *to)
}

/// The actions `state` allows.
pub fn improvement_allowed(state: &str) -> Vec<&'static str> {
    IMPROVEMENT_FLOW
        .iter()
        .filter(|(_, from, _)| *from == state)
        .map(|(a, _, _)| *a)
        .collect()
}

/// An improvement's priority: benefit counts twice, effort against it (1 to 5 each; 1 to 13).
pub fn priority(benefit: i32, effort: i32) -> i32 {
    2 * benefit - effort + 4
}

/// Why `auditor` may not lead or take part in an audit of an area whose owner and members are
/// `area_members` (9.2: auditors are independent of the area audited).
pub fn not_independent(auditor: &str, area_members: &[String]) -> bool {
    area_members.iter().any(|m| m == auditor)
}

/// How far an objective has come from its baseline to its target, percent (0 to 100).
pub fn progress(baseline: f64, target: f64, current: Option<f64>) -> Option<f64> {
    let current = current?;
    let span = target - baseline;
    if span.abs() < f64::EPSILON {
        return Some(if (current - target).abs() < f64::EPSILON {
            100.0
        } else {
            0.0
        });
    }
    Some(
        (((current - baseline) / span) * 100.0)
            .clamp(0.0, 100.0)
            .round(),
    )
}

/// Whether `current` meets `target` in `direction` (`at_least` or `at_most`).
pub fn met(target: f64, direction: &str, current: f64) -> bool {
    if direction == "at_most" {
        current <= target
    } else {
        current >= target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risks_are_assessed_against_the_criteria() {
        let criteria = RiskCriteria {
            acceptance_score: 6,
            high_score: 15,
        };
        assert_eq!(assess(2, 3, criteria), (6, "low"));
        assert_eq!(assess(3, 3, criteria), (9, "medium"));
        assert_eq!(assess(3, 5, criteria), (15, "high"));
    }

    #[test]
    fn a_nonconformity_is_reacted_to_analysed_corrected_and_reviewed_in_order() {
        assert_eq!(nc_step("analyse", "open"), None);
        assert_eq!(nc_step("react", "open"), Some("reacted"));
        assert_eq!(nc_step("review", "corrected"), Some("closed"));
        assert_eq!(nc_allowed("analysed"), ["correct"]);
        assert!(nc_allowed("closed").is_empty());
    }

    #[test]
    fn improvements_follow_their_flow_and_are_prioritised() {
        assert_eq!(improvement_step("approve", "proposed"), None);
        assert_eq!(improvement_allowed("evaluated"), ["approve", "reject"]);
        assert!(priority(5, 1) > priority(3, 3));
        assert_eq!((priority(1, 5), priority(5, 1)), (1, 13));
    }

    #[test]
    fn an_auditor_from_the_area_is_not_independent() {
        let members = vec!["olga".to_owned(), "dave".to_owned()];
        assert!(not_independent("olga", &members));
        assert!(!not_independent("ian", &members));
    }

    #[test]
    fn objective_progress_runs_from_baseline_to_target() {
        assert_eq!(progress(90.0, 99.0, Some(94.5)), Some(50.0));
        assert_eq!(progress(10.0, 2.0, Some(4.0)), Some(75.0), "downwards too");
        assert_eq!(progress(10.0, 2.0, Some(12.0)), Some(0.0));
        assert_eq!(progress(10.0, 2.0, None), None);
        assert!(met(2.0, "at_most", 1.5) && !met(99.0, "at_least", 98.0));
    }
}
