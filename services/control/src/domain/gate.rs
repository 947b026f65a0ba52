//! The change gate's rule (ISO/IEC 20000-1 8.5.1: changes to protected services go through change
//! management): a create, update or delete of a workload in a protected namespace is allowed only
//! when an approved change with an open window covers it — the change the workload's annotation
//! names, or one whose configuration items include the workload or its namespace — and never
//! during a freeze window. Members of a break-glass group pass, and the pass is recorded.
//!
//! Checked in this order: break-glass, freeze, the annotated change, changes by CI.

use chrono::{DateTime, Utc};

use crate::config::FreezeWindow;
use crate::domain::change::ChangeState;

/// What the API server asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateRequest {
    /// `CREATE`, `UPDATE` or `DELETE`.
    pub operation: String,
    /// `Deployment`, `StatefulSet` or `DaemonSet`.
    pub kind: String,
    /// The namespace.
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// Who asks.
    pub username: String,
    /// Their groups.
    pub groups: Vec<String>,
    /// The change the workload's annotation names (number or id), if any.
    pub annotated_change: Option<String>,
}

/// A change the store found that may cover the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Id.
    pub id: String,
    /// Number, e.g. `CHG0001234`.
    pub number: String,
    /// Its state.
    pub state: String,
    /// Its window.
    pub window: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through.
    Allow {
        /// Why, for the record.
        reason: String,
        /// The covering change.
        change: Option<Candidate>,
        /// A break-glass pass.
        break_glass: bool,
    },
    /// Refuse it, saying what would let it through.
    Deny {
        /// Why, shown to the person (kubectl prints it).
        reason: String,
    },
}

impl Verdict {
    /// Whether it lets the request through.
    pub fn allowed(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }
}

/// The states in which a change's window may be used.
const CLEARED: [ChangeState; 3] = [
    ChangeState::Approved,
    ChangeState::Scheduled,
    ChangeState::Implementing,
];

fn cleared(candidate: &Candidate) -> bool {
    ChangeState::parse(&candidate.state).is_some_and(|s| CLEARED.contains(&s))
}

fn open(candidate: &Candidate, now: DateTime<Utc>) -> bool {
    candidate
        .window
        .is_some_and(|(start, end)| start <= now && now < end)
}

/// Decides `request` at `now`. `annotated` is the change the annotation names (when the store
/// found it); `by_ci` the changes whose CIs include the workload or its namespace.
pub fn decide(
    request: &GateRequest,
    now: DateTime<Utc>,
    freezes: &[FreezeWindow],
    break_glass_groups: &[String],
    annotated: Option<&Candidate>,
    by_ci: &[Candidate],
) -> Verdict {
    let what = format!(
        "{} of {} {}/{}",
        request.operation.to_lowercase(),
        request.kind,
        request.namespace,
        request.name
    );
    if let Some(group) = request
        .groups
        .iter()
        .find(|g| break_glass_groups.contains(g))
    {
        return Verdict::Allow {
            reason: format!(
                "break-glass: {} is in {group}; {what} recorded for review",
                request.username
            ),
            change: None,
            break_glass: true,
        };
    }
    if let Some(freeze) = freezes.iter().find(|f| f.start <= now && now < f.end) {
        return Verdict::Deny {
            reason: format!(
                "Meridian change gate: {what} refused: the freeze window \"{}\" lasts until {}",
                freeze.name,
                freeze.end.format("%Y-%m-%d %H:%M UTC")
            ),
        };
    }
    if let Some(named) = &request.annotated_change {
        let Some(change) = annotated else {
            return Verdict::Deny {
                reason: format!(
                    "Meridian change gate: {what} refused: the annotated change {named} does not exist"
                ),
            };
        };
        if !cleared(change) {
            return Verdict::Deny {
                reason: format!(
                    "Meridian change gate: {what} refused: change {} is {}, not approved",
                    change.number, change.state
                ),
            };
        }
        if !open(change, now) {
            let window = change.window.map_or_else(
                || "it has no window".to_owned(),
                |(start, end)| {
                    format!(
                        "its window is {} to {}",
                        start.format("%Y-%m-%d %H:%M"),
                        end.format("%Y-%m-%d %H:%M UTC")
                    )
                },
            );
            return Verdict::Deny {
                reason: format!(
                    "Meridian change gate: {what} refused: change {} is not open now ({window})",
                    change.number
                ),
            };
        }
        return Verdict::Allow {
            reason: format!("{what} under change {} (annotated)", change.number),
            change: Some(change.clone()),
            break_glass: false,
        };
    }
    if let Some(change) = by_ci.iter().find(|c| cleared(c) && open(c, now)) {
        return Verdict::Allow {
            reason: format!(
                "{what} under change {} (its configuration items cover the workload)",
                change.number
            ),
            change: Some(change.clone()),
            break_glass: false,
        };
    }
    Verdict::Deny {
        reason: format!(
            "Meridian change gate: {what} refused: no approved change with an open window covers it; \
             annotate the workload with the change (meridian.io/change: CHG…) or list it among the \
             change's configuration items"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, h, 0, 0).unwrap()
    }

    fn request(annotation: Option<&str>, groups: &[&str]) -> GateRequest {
        GateRequest {
            operation: "UPDATE".to_owned(),
            kind: "Deployment".to_owned(),
            namespace: "payments".to_owned(),
            name: "api".to_owned(),
            username: "ci-bot".to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            annotated_change: annotation.map(str::to_owned),
        }
    }

    fn change(state: &str, window: Option<(u32, u32)>) -> Candidate {
        Candidate {
            id: "c1".to_owned(),
            number: "CHG0000001".to_owned(),
            state: state.to_owned(),
            window: window.map(|(s, e)| (at(s), at(e))),
        }
    }

    fn freeze() -> FreezeWindow {
        FreezeWindow {
            name: "year-end close".to_owned(),
            start: at(9),
            end: at(17),
        }
    }

    #[test]
    fn an_approved_annotated_change_with_an_open_window_lets_it_through() {
        let c = change("scheduled", Some((10, 14)));
        let v = decide(
            &request(Some("CHG0000001"), &[]),
            at(12),
            &[],
            &[],
            Some(&c),
            &[],
        );
        assert!(
            matches!(
                v,
                Verdict::Allow {
                    change: Some(_),
                    break_glass: false,
                    ..
                }
            ),
            "{v:?}"
        );
    }

    #[test]
    fn outside_its_window_or_unapproved_or_unknown_it_is_refused_saying_why() {
        let r = request(Some("CHG0000001"), &[]);
        let early = decide(
            &r,
            at(9),
            &[],
            &[],
            Some(&change("approved", Some((10, 14)))),
            &[],
        );
        assert!(
            matches!(&early, Verdict::Deny { reason } if reason.contains("not open now")),
            "{early:?}"
        );
        let pending = decide(
            &r,
            at(12),
            &[],
            &[],
            Some(&change("assessed", Some((10, 14)))),
            &[],
        );
        assert!(
            matches!(&pending, Verdict::Deny { reason } if reason.contains("is assessed, not approved"))
        );
        let unknown = decide(&r, at(12), &[], &[], None, &[]);
        assert!(matches!(&unknown, Verdict::Deny { reason } if reason.contains("does not exist")));
    }

    #[test]
    fn a_change_covering_the_workloads_ci_lets_it_through_without_annotation() {
        let r = request(None, &[]);
        let none = decide(&r, at(12), &[], &[], None, &[]);
        assert!(
            matches!(&none, Verdict::Deny { reason } if reason.contains("annotate the workload"))
        );
        let closed = decide(
            &r,
            at(12),
            &[],
            &[],
            None,
            &[change("implemented", Some((10, 14)))],
        );
        assert!(!closed.allowed());
        let ok = decide(
            &r,
            at(12),
            &[],
            &[],
            None,
            &[change("implementing", Some((10, 14)))],
        );
        assert!(ok.allowed());
    }

    #[test]
    fn a_freeze_refuses_even_an_approved_change_but_break_glass_passes() {
        let c = change("approved", Some((10, 14)));
        let frozen = decide(
            &request(Some("CHG0000001"), &[]),
            at(12),
            &[freeze()],
            &[],
            Some(&c),
            &[],
        );
        assert!(matches!(&frozen, Verdict::Deny { reason } if reason.contains("year-end close")));
        let glass = ["sre-oncall".to_owned()];
        let passed = decide(
            &request(None, &["system:authenticated", "sre-oncall"]),
            at(12),
            &[freeze()],
            &glass,
            None,
            &[],
        );
        assert!(
            matches!(
                passed,
                Verdict::Allow {
                    break_glass: true,
                    ..
                }
            ),
            "{passed:?}"
        );
    }
}
