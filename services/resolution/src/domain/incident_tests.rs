//! Every (state, action) pair: allowed ones move to the expected state and emit the expected
//! events; refused ones change nothing and say which actions the state allows.

use chrono::TimeZone;

use super::*;

fn p(n: i64) -> Priority {
    Priority::new(n).unwrap()
}

fn matrix() -> PriorityMatrix {
    PriorityMatrix::itil()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

fn new_incident() -> Incident {
    let (incident, events) = Incident::open(
        Uuid::now_v7(),
        "INC0000001".into(),
        NewIncident {
            title: "Mail down".into(),
            description: String::new(),
            caller: "carol".into(),
            service: Some("mail".into()),
            configuration_items: vec![],
            category: None,
            impact: Level::High,
            urgency: Level::High,
            assignment_group: None,
            assignee: None,
        },
        &matrix(),
        "alice",
        t0(),
    );
    assert_eq!(events, vec![IncidentEvent::Created]);
    incident
}

/// An incident standing in `state`, reached through real transitions.
fn in_state(state: State) -> Incident {
    let mut incident = new_incident();
    let now = t0();
    let path: &[Action] = match state {
        State::New => &[],
        State::Assigned => &[Action::Assign],
        State::InProgress => &[Action::Assign, Action::Start],
        State::Pending => &[Action::Assign, Action::Start, Action::Pend],
        State::Resolved => &[Action::Assign, Action::Start, Action::Resolve],
        State::Closed => &[
            Action::Assign,
            Action::Start,
            Action::Resolve,
            Action::Close,
        ],
        State::Cancelled => &[Action::Cancel],
    };
    for action in path {
        apply(&mut incident, *action, now).unwrap();
    }
    assert_eq!(incident.state, state);
    incident
}

const CRITERIA_MET: MajorCriteria<'static> = MajorCriteria {
    priorities: &[],
    service_qualifies: true,
};

fn apply(incident: &mut Incident, action: Action, now: DateTime<Utc>) -> Outcome {
    match action {
        Action::Assign => incident.assign("service-desk".into(), Some("bob".into()), now),
        Action::Start => incident.start("bob", now),
        Action::Pend => incident.pend(
            PendingReason::AwaitingCaller,
            Some("asked for logs".into()),
            now,
        ),
        Action::Resume => incident.resume(now),
        Action::Resolve => {
            incident.resolve(ResolutionCode::SolvedWorkaround, "restarted".into(), now)
        }
        Action::Close => incident.close(now),
        Action::Reopen => incident.reopen("came back".into(), now),
        Action::Cancel => incident.cancel("duplicate".into(), now),
        Action::Escalate => {
            incident.escalate(EscalationKind::Hierarchical, None, "slow".into(), now)
        }
        Action::Update => incident.update(
            Changes {
                title: Some("Mail down for all".into()),
                ..Changes::default()
            },
            &matrix(),
            now,
        ),
        Action::OverridePriority => incident.override_priority(p(2), "VIP".into(), now),
        Action::DeclareMajor => {
            incident.declare_major("mia".into(), "all users".into(), CRITERIA_MET, now)
        }
        Action::Note => incident.note(NoteKind::WorkNote, "looking".into(), now),
    }
}

/// The expected state after each allowed action (the state table, written out independently).
fn expected(state: State, action: Action) -> Option<State> {
    use Action as A;
    use State as S;
    match (state, action) {
        (S::New, A::Assign) => Some(S::Assigned),
        (S::Assigned, A::Start) => Some(S::InProgress),
        (S::InProgress, A::Pend) => Some(S::Pending),
        (S::Pending, A::Resume) => Some(S::InProgress),
        (S::Assigned | S::InProgress | S::Pending, A::Resolve) => Some(S::Resolved),
        (S::Resolved, A::Close) => Some(S::Closed),
        (S::Resolved, A::Reopen) => Some(S::InProgress),
        (S::New | S::Assigned | S::InProgress | S::Pending, A::Cancel) => Some(S::Cancelled),
        (
            S::New | S::Assigned | S::InProgress | S::Pending,
            A::Assign | A::Escalate | A::Update | A::OverridePriority | A::DeclareMajor | A::Note,
        ) => Some(state),
        (S::Resolved, A::Note) => Some(S::Resolved),
        _ => None,
    }
}

#[test]
fn every_state_and_action_pair_follows_the_state_table() {
    let later = t0() + chrono::Duration::minutes(5);
    let mut covered = 0;
    for state in State::ALL {
        for action in Action::ALL {
            let mut incident = in_state(state);
            let before = incident.clone();
            let result = apply(&mut incident, action, later);
            match expected(state, action) {
                Some(next) => {
                    let events = result.unwrap_or_else(|e| panic!("{state:?} {action:?}: {e}"));
                    assert!(!events.is_empty(), "{state:?} {action:?} emitted nothing");
                    assert_eq!(incident.state, next, "{state:?} {action:?}");
                    assert_eq!(incident.version, before.version + 1);
                    assert_eq!(incident.updated_at, later);
                    assert!(state.allowed().contains(&action));
                    covered += 1;
                }
                None => {
                    let error = result.unwrap_err();
                    assert_eq!(error, IncidentError::NotAllowed { state, action });
                    assert_eq!(
                        incident, before,
                        "a refused {action:?} changed the incident"
                    );
                    assert!(!state.allowed().contains(&action));
                }
            }
        }
    }
    // The table has 37 allowed pairs (7 + 9 + 9 + 9 + 3); a change to the table must change this test too.
    assert_eq!(covered, 37);
}

#[test]
fn a_new_incident_takes_its_priority_from_the_matrix() {
    let incident = new_incident();
    assert_eq!(incident.priority, p(1));
    assert_eq!(incident.state, State::New);
    assert_eq!(incident.version, 1);
}

#[test]
fn an_incident_created_with_a_group_starts_assigned() {
    let (incident, _) = Incident::open(
        Uuid::now_v7(),
        "INC0000002".into(),
        NewIncident {
            title: "x".into(),
            description: String::new(),
            caller: "c".into(),
            service: None,
            configuration_items: vec![],
            category: None,
            impact: Level::Low,
            urgency: Level::Medium,
            assignment_group: Some("network".into()),
            assignee: None,
        },
        &matrix(),
        "alice",
        t0(),
    );
    assert_eq!(incident.state, State::Assigned);
    assert_eq!(incident.priority, p(4));
}

#[test]
fn assignment_reports_the_previous_group_and_person() {
    let mut incident = in_state(State::Assigned);
    let events = incident.assign("network".into(), None, t0()).unwrap();
    assert_eq!(
        events,
        vec![IncidentEvent::Assigned {
            previous_group: Some("service-desk".into()),
            previous_assignee: Some("bob".into()),
        }]
    );
    assert_eq!(incident.assignee, None);
}

#[test]
fn starting_without_an_assignee_assigns_the_actor() {
    let mut incident = new_incident();
    incident.assign("service-desk".into(), None, t0()).unwrap();
    let events = incident.start("dave", t0()).unwrap();
    assert_eq!(incident.assignee.as_deref(), Some("dave"));
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].name(), Some("assigned"));
    assert_eq!(events[1].name(), Some("state_changed"));
}

#[test]
fn pending_records_its_reason_and_resuming_clears_it() {
    let mut incident = in_state(State::InProgress);
    let events = incident
        .pend(PendingReason::AwaitingSupplier, None, t0())
        .unwrap();
    assert_eq!(
        incident.pending_reason,
        Some(PendingReason::AwaitingSupplier)
    );
    assert_eq!(
        events,
        vec![IncidentEvent::StateChanged {
            from: State::InProgress,
            reason: Some("awaiting_supplier".into()),
        }]
    );
    incident.resume(t0()).unwrap();
    assert_eq!(incident.pending_reason, None);
}

#[test]
fn resolving_records_code_notes_and_time_and_reopening_clears_them() {
    let mut incident = in_state(State::InProgress);
    incident
        .resolve(ResolutionCode::SolvedPermanently, "patched".into(), t0())
        .unwrap();
    assert_eq!(
        incident.resolution_code,
        Some(ResolutionCode::SolvedPermanently)
    );
    assert_eq!(incident.resolved_at, Some(t0()));
    let events = incident.reopen("still broken".into(), t0()).unwrap();
    assert_eq!(
        events,
        vec![IncidentEvent::Reopened {
            reason: "still broken".into()
        }]
    );
    assert_eq!(incident.resolution_code, None);
    assert_eq!(incident.resolved_at, None);
}

#[test]
fn functional_escalation_moves_the_incident_to_the_new_group() {
    let mut incident = in_state(State::InProgress);
    incident
        .escalate(
            EscalationKind::Functional,
            Some("dba".into()),
            "needs a DBA".into(),
            t0(),
        )
        .unwrap();
    assert_eq!(incident.assignment_group.as_deref(), Some("dba"));
    assert_eq!(incident.assignee, None);
    assert_eq!(incident.escalation_level, 0);
}

#[test]
fn hierarchical_escalation_raises_the_level() {
    let mut incident = in_state(State::Assigned);
    incident
        .escalate(
            EscalationKind::Hierarchical,
            None,
            "breach near".into(),
            t0(),
        )
        .unwrap();
    incident
        .escalate(EscalationKind::Hierarchical, None, "breached".into(), t0())
        .unwrap();
    assert_eq!(incident.escalation_level, 2);
}

#[test]
fn a_new_impact_recomputes_the_priority_unless_overridden() {
    let mut incident = new_incident();
    let events = incident
        .update(
            Changes {
                impact: Some(Level::Low),
                ..Changes::default()
            },
            &matrix(),
            t0(),
        )
        .unwrap();
    assert_eq!(incident.priority, p(3));
    assert_eq!(
        events[1],
        IncidentEvent::PriorityChanged {
            previous: p(1),
            override_reason: None,
        }
    );
    incident
        .override_priority(p(1), "board meeting".into(), t0())
        .unwrap();
    let events = incident
        .update(
            Changes {
                urgency: Some(Level::Low),
                ..Changes::default()
            },
            &matrix(),
            t0(),
        )
        .unwrap();
    assert_eq!(incident.priority, p(1));
    assert_eq!(events.len(), 1);
}

#[test]
fn an_update_that_changes_nothing_emits_nothing() {
    let mut incident = new_incident();
    let events = incident
        .update(
            Changes {
                title: Some("Mail down".into()),
                ..Changes::default()
            },
            &matrix(),
            t0(),
        )
        .unwrap();
    assert!(events.is_empty());
    assert_eq!(incident.version, 1);
}

#[test]
fn a_major_incident_needs_the_criteria() {
    let mut incident = new_incident();
    incident
        .update(
            Changes {
                impact: Some(Level::Low),
                urgency: Some(Level::Low),
                ..Changes::default()
            },
            &matrix(),
            t0(),
        )
        .unwrap();
    let strict = MajorCriteria {
        priorities: &[p(1)],
        service_qualifies: false,
    };
    assert_eq!(
        incident.declare_major("mia".into(), "x".into(), strict, t0()),
        Err(IncidentError::MajorCriteriaNotMet { priority: 5 })
    );
    assert!(!incident.major);
    incident
        .override_priority(p(1), "all sites".into(), t0())
        .unwrap();
    incident
        .declare_major("mia".into(), "x".into(), strict, t0())
        .unwrap();
    assert!(incident.major);
    assert_eq!(incident.major_manager.as_deref(), Some("mia"));
    assert_eq!(
        incident.declare_major("mia".into(), "x".into(), strict, t0()),
        Err(IncidentError::AlreadyMajor)
    );
}

#[test]
fn notes_are_history_but_not_bus_events() {
    let event = IncidentEvent::Noted {
        kind: NoteKind::Comment,
        body: "hi".into(),
    };
    assert_eq!(event.name(), None);
    assert_eq!(event.kind(), "comment");
}
