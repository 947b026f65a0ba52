//! SLA clocks, computed from a ticket's event history, never kept as counters: the elapsed time
//! is the working time (per the agreement's calendar) of every stretch of history in which the
//! clock counts — not paused on the customer or a supplier, not resolved, and for an OLA, while
//! the ticket is with the OLA's group. The target is that of the ticket's priority now, under the
//! agreement that applies now, so a priority or SLA change mid-ticket keeps the time already
//! counted (paused time stays paused) and only moves the due time.
//!
//! Response stops at the first moment work starts (in progress) or the ticket is resolved;
//! resolution stops when it is resolved or closed, and a reopened ticket counts again. A clock
//! still running is breached from its due time on, exactly; a stopped clock met its target if it
//! stopped at or before it.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::calendar::Calendar;

/// A ticket's state, as the clocks read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketState {
    /// Recorded, nobody on it.
    New,
    /// Assigned to a group or person.
    Assigned,
    /// Being worked.
    InProgress,
    /// Waiting (for the reason given).
    Pending,
    /// Resolved.
    Resolved,
    /// Closed.
    Closed,
    /// Cancelled.
    Cancelled,
}

impl TicketState {
    /// From resolution's state names.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "new" => Self::New,
            "assigned" => Self::Assigned,
            "in_progress" => Self::InProgress,
            "pending" => Self::Pending,
            "resolved" => Self::Resolved,
            "closed" => Self::Closed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

/// The ticket as it stood after one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moment {
    /// When.
    pub at: DateTime<Utc>,
    /// Its state.
    pub state: TicketState,
    /// Why it is pending, when it is.
    pub pending_reason: String,
    /// Its priority, 1 (highest) to 5.
    pub priority: i32,
    /// The group it is assigned to.
    pub group: String,
}

/// Response and resolution targets for one priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Targets {
    /// Time to first response (work started).
    pub response: Option<Duration>,
    /// Time to resolution.
    pub resolution: Option<Duration>,
}

/// An agreement as the clocks need it.
#[derive(Debug, Clone, PartialEq)]
pub struct Agreement {
    /// The calendar time is counted in.
    pub calendar: Calendar,
    /// Targets by priority.
    pub targets: BTreeMap<i32, Targets>,
    /// The share of the target at which a warning is raised (e.g. 75).
    pub warning_percent: u32,
    /// Pending reasons that pause the clock (the customer, a supplier).
    pub pause_reasons: Vec<String>,
    /// An OLA counts only while the ticket is with this group.
    pub group: Option<String>,
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Time to respond.
    Response,
    /// Time to resolve.
    Resolution,
}

impl Metric {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Response => "response",
            Self::Resolution => "resolution",
        }
    }
}

/// Where a clock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Counting.
    Running,
    /// Not counting now (pending on the customer or a supplier, with another group, outside its
    /// hours counts as running).
    Paused,
    /// Stopped within its target.
    Met,
    /// Past its target (running on, or stopped late).
    Breached,
    /// The ticket was cancelled.
    Cancelled,
}

impl Stage {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Met => "met",
            Self::Breached => "breached",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A computed clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clock {
    /// What it measures.
    pub metric: Metric,
    /// The target now (of the ticket's priority now).
    pub target: Duration,
    /// Working time counted up to `now` (or up to where it stopped).
    pub elapsed: Duration,
    /// Where it stands.
    pub stage: Stage,
    /// When it breaches (or breached), if it runs or ran late; `None` while paused.
    pub due_at: Option<DateTime<Utc>>,
    /// When the warning is due (or was), while running.
    pub warn_at: Option<DateTime<Utc>>,
    /// When it stopped (met, breached and stopped, or cancelled).
    pub stopped_at: Option<DateTime<Utc>>,
}

fn stops(metric: Metric, state: TicketState) -> bool {
    match metric {
        Metric::Response => matches!(
            state,
            TicketState::InProgress | TicketState::Resolved | TicketState::Closed
        ),
        Metric::Resolution => matches!(state, TicketState::Resolved | TicketState::Closed),
    }
}

fn counts(agreement: &Agreement, moment: &Moment) -> bool {
    if moment.state == TicketState::Pending
        && agreement.pause_reasons.contains(&moment.pending_reason)
    {
        return false;
    }
    agreement.group.as_ref().is_none_or(|g| *g == moment.group)
}

/// The clock of `metric` for a ticket with `history` (any order) under `agreement`, at `now`;
/// `None` when the agreement sets no such target for the ticket's priority.
pub fn compute(
    history: &[Moment],
    agreement: &Agreement,
    metric: Metric,
    now: DateTime<Utc>,
) -> Option<Clock> {
    let mut history: Vec<&Moment> = history.iter().filter(|m| m.at <= now).collect();
    history.sort_by_key(|m| m.at);
    let last = *history.last()?;
    let targets = agreement.targets.get(&last.priority)?;
    let target = match metric {
        Metric::Response => targets.response?,
        Metric::Resolution => targets.resolution?,
    };
    let warn_share = target * i32::try_from(agreement.warning_percent.min(100)).unwrap_or(75) / 100;
    // Response stops for good at the first response; resolution at the last resolution.
    let mut elapsed = Duration::zero();
    let mut done_at = None;
    let mut cancelled_at = None;
    for (i, moment) in history.iter().enumerate() {
        let end = history.get(i + 1).map_or(now, |next| next.at);
        if stops(metric, moment.state) {
            done_at.get_or_insert(moment.at);
            if metric == Metric::Response {
                break;
            }
            continue;
        }
        if metric == Metric::Resolution {
            done_at = None;
        }
        if moment.state == TicketState::Cancelled {
            cancelled_at = Some(moment.at);
            break;
        }
        if counts(agreement, moment) {
            elapsed += agreement.calendar.working_time(moment.at, end);
        }
    }
    let (stage, due_at, warn_at, stopped_at) = if let Some(done) = done_at {
        let stage = if elapsed > target {
            Stage::Breached
        } else {
            Stage::Met
        };
        (stage, None, None, Some(done))
    } else if let Some(cancelled) = cancelled_at {
        (Stage::Cancelled, None, None, Some(cancelled))
    } else if !counts(agreement, last) {
        let stage = if elapsed >= target {
            Stage::Breached
        } else {
            Stage::Paused
        };
        (stage, None, None, None)
    } else {
        // Counting now: project from the last event, where the counted time stood before it.
        let before = elapsed - agreement.calendar.working_time(last.at, now);
        let due = agreement.calendar.add(last.at, target - before);
        let warn = (warn_share > before)
            .then(|| agreement.calendar.add(last.at, warn_share - before))
            .flatten();
        let stage = if due.is_some_and(|d| now >= d) {
            Stage::Breached
        } else {
            Stage::Running
        };
        (stage, due, warn, None)
    };
    Some(Clock {
        metric,
        target,
        elapsed,
        stage,
        due_at,
        warn_at,
        stopped_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::calendar::Hours;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn moment(when: &str, state: TicketState, priority: i32) -> Moment {
        Moment {
            at: at(when),
            state,
            pending_reason: String::new(),
            priority,
            group: "service-desk".to_owned(),
        }
    }

    fn pending(when: &str, reason: &str, priority: i32) -> Moment {
        Moment {
            pending_reason: reason.to_owned(),
            ..moment(when, TicketState::Pending, priority)
        }
    }

    fn agreement(calendar: Calendar) -> Agreement {
        Agreement {
            calendar,
            targets: BTreeMap::from([
                (
                    1,
                    Targets {
                        response: Some(Duration::minutes(15)),
                        resolution: Some(Duration::hours(4)),
                    },
                ),
                (
                    3,
                    Targets {
                        response: Some(Duration::hours(1)),
                        resolution: Some(Duration::hours(8)),
                    },
                ),
            ]),
            warning_percent: 75,
            pause_reasons: vec!["awaiting_caller".to_owned(), "awaiting_supplier".to_owned()],
            group: None,
        }
    }

    fn office() -> Calendar {
        let day = Some(Hours {
            start: 9 * 60,
            end: 17 * 60,
        });
        Calendar {
            week: [day, day, day, day, day, None, None],
            ..Calendar::always()
        }
    }

    #[test]
    fn a_running_clock_has_its_due_and_warning_times_and_breaches_exactly_at_the_due_time() {
        let history = [moment("2026-11-26T10:00:00Z", TicketState::New, 3)];
        let a = agreement(Calendar::always());
        let c = compute(&history, &a, Metric::Resolution, at("2026-11-26T12:00:00Z")).unwrap();
        assert_eq!((c.stage, c.elapsed), (Stage::Running, Duration::hours(2)));
        assert_eq!(c.due_at, Some(at("2026-11-26T18:00:00Z")));
        assert_eq!(c.warn_at, Some(at("2026-11-26T16:00:00Z")));
        let just_before =
            compute(&history, &a, Metric::Resolution, at("2026-11-26T17:59:59Z")).unwrap();
        assert_eq!(just_before.stage, Stage::Running);
        let exactly =
            compute(&history, &a, Metric::Resolution, at("2026-11-26T18:00:00Z")).unwrap();
        assert_eq!(exactly.stage, Stage::Breached);
    }

    #[test]
    fn pending_on_the_customer_pauses_and_resuming_moves_the_due_time_by_the_pause() {
        let a = agreement(Calendar::always());
        let history = [
            moment("2026-11-26T10:00:00Z", TicketState::InProgress, 3),
            pending("2026-11-26T12:00:00Z", "awaiting_caller", 3),
            moment("2026-11-26T15:00:00Z", TicketState::InProgress, 3),
        ];
        let paused = compute(
            &history[..2],
            &a,
            Metric::Resolution,
            at("2026-11-26T14:00:00Z"),
        )
        .unwrap();
        assert_eq!(
            (paused.stage, paused.elapsed, paused.due_at),
            (Stage::Paused, Duration::hours(2), None)
        );
        let resumed =
            compute(&history, &a, Metric::Resolution, at("2026-11-26T16:00:00Z")).unwrap();
        assert_eq!(
            resumed.elapsed,
            Duration::hours(3),
            "the 3 paused hours are not counted"
        );
        assert_eq!(
            resumed.due_at,
            Some(at("2026-11-26T21:00:00Z")),
            "18:00 plus the 3 paused hours"
        );
        // Pending for another reason (e.g. a change) does not pause.
        let other = [
            moment("2026-11-26T10:00:00Z", TicketState::InProgress, 3),
            pending("2026-11-26T12:00:00Z", "awaiting_change", 3),
        ];
        let c = compute(&other, &a, Metric::Resolution, at("2026-11-26T14:00:00Z")).unwrap();
        assert_eq!((c.stage, c.elapsed), (Stage::Running, Duration::hours(4)));
    }

    #[test]
    fn a_priority_change_keeps_the_counted_time_and_paused_time_and_moves_only_the_target() {
        let a = agreement(Calendar::always());
        let history = [
            moment("2026-11-26T10:00:00Z", TicketState::InProgress, 3),
            pending("2026-11-26T11:00:00Z", "awaiting_supplier", 3),
            moment("2026-11-26T13:00:00Z", TicketState::InProgress, 3),
            moment("2026-11-26T14:00:00Z", TicketState::InProgress, 1),
        ];
        let c = compute(&history, &a, Metric::Resolution, at("2026-11-26T15:00:00Z")).unwrap();
        assert_eq!(c.target, Duration::hours(4));
        assert_eq!(
            c.elapsed,
            Duration::hours(3),
            "10-11, 13-15: the 2 paused hours stay paused"
        );
        assert_eq!(c.due_at, Some(at("2026-11-26T16:00:00Z")));
        assert_eq!(
            c.stage,
            Stage::Running,
            "not a false breach from the paused time"
        );
        // Raised from 3 to 1 after 5 counted hours: breached at once, at 14:00+... (already past 4h).
        let late = [
            moment("2026-11-26T08:00:00Z", TicketState::InProgress, 3),
            moment("2026-11-26T13:00:00Z", TicketState::InProgress, 1),
        ];
        let c = compute(&late, &a, Metric::Resolution, at("2026-11-26T13:00:01Z")).unwrap();
        assert_eq!(c.stage, Stage::Breached);
        assert_eq!(
            c.due_at,
            Some(at("2026-11-26T12:00:00Z")),
            "the moment 4 counted hours were reached"
        );
    }

    #[test]
    fn an_agreement_change_is_a_new_target_over_the_same_history() {
        let mut a = agreement(Calendar::always());
        let history = [moment("2026-11-26T10:00:00Z", TicketState::New, 3)];
        let before = compute(&history, &a, Metric::Resolution, at("2026-11-26T12:00:00Z")).unwrap();
        a.targets.insert(
            3,
            Targets {
                response: None,
                resolution: Some(Duration::hours(24)),
            },
        );
        let after = compute(&history, &a, Metric::Resolution, at("2026-11-26T12:00:00Z")).unwrap();
        assert_eq!(before.elapsed, after.elapsed);
        assert_eq!(after.due_at, Some(at("2026-11-27T10:00:00Z")));
        assert!(
            compute(&history, &a, Metric::Response, at("2026-11-26T12:00:00Z")).is_none(),
            "no response target"
        );
    }

    #[test]
    fn resolution_stops_met_or_breached_and_a_reopened_ticket_counts_on() {
        let a = agreement(Calendar::always());
        let met = [
            moment("2026-11-26T10:00:00Z", TicketState::New, 3),
            moment("2026-11-26T18:00:00Z", TicketState::Resolved, 3),
        ];
        let c = compute(&met, &a, Metric::Resolution, at("2026-11-27T10:00:00Z")).unwrap();
        assert_eq!(
            (c.stage, c.stopped_at),
            (Stage::Met, Some(at("2026-11-26T18:00:00Z"))),
            "resolved exactly at the due time is met"
        );
        let reopened = [
            moment("2026-11-26T10:00:00Z", TicketState::New, 3),
            moment("2026-11-26T16:00:00Z", TicketState::Resolved, 3),
            moment("2026-11-26T20:00:00Z", TicketState::InProgress, 3),
        ];
        let c = compute(
            &reopened,
            &a,
            Metric::Resolution,
            at("2026-11-26T21:00:00Z"),
        )
        .unwrap();
        assert_eq!((c.stage, c.elapsed), (Stage::Running, Duration::hours(7)));
        assert_eq!(c.due_at, Some(at("2026-11-26T22:00:00Z")));
        // Response stopped at the first start of work, and stays stopped.
        let r = compute(&reopened, &a, Metric::Response, at("2026-11-26T21:00:00Z")).unwrap();
        assert_eq!(
            (r.stage, r.stopped_at),
            (Stage::Breached, Some(at("2026-11-26T16:00:00Z")))
        );
    }

    #[test]
    fn business_hours_weekends_and_time_zones_shape_the_due_time() {
        let a = agreement(office());
        // Opened Friday 15:00 UTC, P3 (8 working hours): 2h Friday, 6h Monday → Monday 15:00.
        let history = [moment("2026-11-27T15:00:00Z", TicketState::New, 3)];
        let c = compute(&history, &a, Metric::Resolution, at("2026-11-28T12:00:00Z")).unwrap();
        assert_eq!(c.due_at, Some(at("2026-11-30T15:00:00Z")));
        assert_eq!(c.elapsed, Duration::hours(2), "Saturday counts nothing");
        let mut tokyo = office();
        tokyo.tz = "Asia/Tokyo".parse().unwrap();
        let c = compute(
            &history,
            &agreement(tokyo),
            Metric::Resolution,
            at("2026-11-27T15:00:01Z"),
        )
        .unwrap();
        // 15:00 UTC Friday is 00:00 Saturday in Tokyo: 8 working hours from Monday 09:00 JST (00:00 UTC).
        assert_eq!(c.due_at, Some(at("2026-11-30T08:00:00Z")));
    }

    #[test]
    fn an_ola_counts_only_while_its_group_holds_the_ticket_and_a_cancelled_ticket_stops() {
        let mut a = agreement(Calendar::always());
        a.group = Some("network".to_owned());
        let mut with_network = moment("2026-11-26T11:00:00Z", TicketState::Assigned, 3);
        with_network.group = "network".to_owned();
        let history = [
            moment("2026-11-26T10:00:00Z", TicketState::New, 3),
            with_network,
        ];
        let c = compute(&history, &a, Metric::Resolution, at("2026-11-26T13:00:00Z")).unwrap();
        assert_eq!(c.elapsed, Duration::hours(2));
        let cancelled = [
            moment("2026-11-26T10:00:00Z", TicketState::New, 3),
            moment("2026-11-26T11:00:00Z", TicketState::Cancelled, 3),
        ];
        let c = compute(
            &cancelled,
            &agreement(Calendar::always()),
            Metric::Resolution,
            at("2026-11-26T20:00:00Z"),
        )
        .unwrap();
        assert_eq!((c.stage, c.elapsed), (Stage::Cancelled, Duration::hours(1)));
    }
}
