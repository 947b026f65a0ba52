//! The incident: its lifecycle and the rules of incident management (ISO/IEC 20000-1 8.6.1).
//!
//! State table (rows: states; an action not listed is refused with the allowed ones):
//!
//! | state       | actions                                                                   |
//! |-------------|---------------------------------------------------------------------------|
//! | new         | assign, escalate, update, override_priority, declare_major, note, cancel  |
//! | assigned    | assign, start, resolve, escalate, update, override_priority, declare_major, note, cancel |
//! | in_progress | assign, pend, resolve, escalate, update, override_priority, declare_major, note, cancel |
//! | pending     | assign, resume, resolve, escalate, update, override_priority, declare_major, note, cancel |
//! | resolved    | close, reopen, note                                                       |
//! | closed      | (none: the record is final)                                               |
//! | cancelled   | (none)                                                                    |
//!
//! Transitions: assign moves new → assigned (elsewhere it reassigns in place); start assigned →
//! in_progress; pend in_progress → pending (with a reason); resume pending → in_progress;
//! resolve assigned/in_progress/pending → resolved (code and notes required); close resolved →
//! closed; reopen resolved → in_progress; cancel any open state → cancelled. Each command is pure:
//! it changes the incident and returns the events it caused; the caller stores and publishes them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::priority::{Level, Priority, PriorityMatrix};

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Recorded, not yet assigned.
    New,
    /// With a group (and maybe a person), work not started.
    Assigned,
    /// Being worked on.
    InProgress,
    /// Waiting on someone else (the caller, a supplier, a change).
    Pending,
    /// Service restored; the caller may confirm or reopen.
    Resolved,
    /// Final.
    Closed,
    /// Withdrawn (raised in error, duplicate); final.
    Cancelled,
}

impl State {
    /// Every state.
    pub const ALL: [Self; 7] = [
        Self::New,
        Self::Assigned,
        Self::InProgress,
        Self::Pending,
        Self::Resolved,
        Self::Closed,
        Self::Cancelled,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Assigned => "assigned",
            Self::InProgress => "in_progress",
            Self::Pending => "pending",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses the wire name.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == value)
    }

    /// Open: not resolved, closed or cancelled.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Self::New | Self::Assigned | Self::InProgress | Self::Pending
        )
    }

    /// The actions this state allows (the rows of the state table).
    pub fn allowed(self) -> &'static [Action] {
        use Action::*;
        match self {
            Self::New => &[
                Assign,
                Escalate,
                Update,
                OverridePriority,
                DeclareMajor,
                Note,
                Cancel,
            ],
            Self::Assigned => &[
                Assign,
                Start,
                Resolve,
                Escalate,
                Update,
                OverridePriority,
                DeclareMajor,
                Note,
                Cancel,
            ],
            Self::InProgress => &[
                Assign,
                Pend,
                Resolve,
                Escalate,
                Update,
                OverridePriority,
                DeclareMajor,
                Note,
                Cancel,
            ],
            Self::Pending => &[
                Assign,
                Resume,
                Resolve,
                Escalate,
                Update,
                OverridePriority,
                DeclareMajor,
                Note,
                Cancel,
            ],
            Self::Resolved => &[Close, Reopen, Note],
            Self::Closed | Self::Cancelled => &[],
        }
    }
}

/// What can be done to an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Assign to a group and person.
    Assign,
    /// Start work.
    Start,
    /// Wait on someone.
    Pend,
    /// Stop waiting.
    Resume,
    /// Restore service.
    Resolve,
    /// Confirm resolution.
    Close,
    /// Resolution did not hold.
    Reopen,
    /// Withdraw.
    Cancel,
    /// Functional or hierarchical escalation.
    Escalate,
    /// Edit descriptive fields.
    Update,
    /// Set the priority by hand, with a reason.
    OverridePriority,
    /// Declare a major incident.
    DeclareMajor,
    /// Add a work note or comment.
    Note,
}

impl Action {
    /// Every action.
    pub const ALL: [Self; 13] = [
        Self::Assign,
        Self::Start,
        Self::Pend,
        Self::Resume,
        Self::Resolve,
        Self::Close,
        Self::Reopen,
        Self::Cancel,
        Self::Escalate,
        Self::Update,
        Self::OverridePriority,
        Self::DeclareMajor,
        Self::Note,
    ];

    /// The wire name (also the last segment of the action's endpoint).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assign => "assign",
            Self::Start => "start",
            Self::Pend => "pend",
            Self::Resume => "resume",
            Self::Resolve => "resolve",
            Self::Close => "close",
            Self::Reopen => "reopen",
            Self::Cancel => "cancel",
            Self::Escalate => "escalate",
            Self::Update => "update",
            Self::OverridePriority => "override_priority",
            Self::DeclareMajor => "declare_major",
            Self::Note => "note",
        }
    }
}

/// Why an incident waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PendingReason {
    /// Waiting for the caller's answer.
    AwaitingCaller,
    /// Waiting for a supplier.
    AwaitingSupplier,
    /// Waiting for a change to be implemented.
    AwaitingChange,
    /// Waiting for something else (say what in the note).
    Other,
}

impl PendingReason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingCaller => "awaiting_caller",
            Self::AwaitingSupplier => "awaiting_supplier",
            Self::AwaitingChange => "awaiting_change",
            Self::Other => "other",
        }
    }

    /// Parses the wire name.
    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::AwaitingCaller,
            Self::AwaitingSupplier,
            Self::AwaitingChange,
            Self::Other,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == value)
    }
}

/// How an incident was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionCode {
    /// The cause was removed.
    SolvedPermanently,
    /// Service restored by a workaround; the cause remains.
    SolvedWorkaround,
    /// Fixed remotely.
    SolvedRemotely,
    /// Could not be reproduced.
    NotReproducible,
    /// Not solved: the fix costs more than it saves.
    NotSolvedTooCostly,
    /// The caller solved it.
    ResolvedByCaller,
    /// Another incident covers it.
    Duplicate,
}

impl ResolutionCode {
    /// Every code.
    pub const ALL: [Self; 7] = [
        Self::SolvedPermanently,
        Self::SolvedWorkaround,
        Self::SolvedRemotely,
        Self::NotReproducible,
        Self::NotSolvedTooCostly,
        Self::ResolvedByCaller,
        Self::Duplicate,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SolvedPermanently => "solved_permanently",
            Self::SolvedWorkaround => "solved_workaround",
            Self::SolvedRemotely => "solved_remotely",
            Self::NotReproducible => "not_reproducible",
            Self::NotSolvedTooCostly => "not_solved_too_costly",
            Self::ResolvedByCaller => "resolved_by_caller",
            Self::Duplicate => "duplicate",
        }
    }

    /// Parses the wire name.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == value)
    }
}

/// Functional (to another group) or hierarchical (to management) escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EscalationKind {
    /// To a group with more expertise; the incident moves to it.
    Functional,
    /// To a higher level of management; the escalation level rises.
    Hierarchical,
}

/// A work note (internal) or a comment (visible to the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    /// Internal.
    WorkNote,
    /// Public.
    Comment,
}

/// An incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    /// Id (UUID v7: time-ordered).
    pub id: Uuid,
    /// Human number, `INC0001234`.
    pub number: String,
    /// Short summary.
    pub title: String,
    /// What happened.
    pub description: String,
    /// Who reported it.
    pub caller: String,
    /// The affected service (a catalogue id).
    pub service: Option<String>,
    /// The affected configuration items.
    pub configuration_items: Vec<String>,
    /// Category.
    pub category: Option<String>,
    /// Impact.
    pub impact: Level,
    /// Urgency.
    pub urgency: Level,
    /// Priority (from the matrix unless overridden).
    pub priority: Priority,
    /// Set when a person overrode the matrix: why.
    pub priority_override_reason: Option<String>,
    /// State.
    pub state: State,
    /// Why it waits (pending only).
    pub pending_reason: Option<PendingReason>,
    /// The group working on it.
    pub assignment_group: Option<String>,
    /// The person working on it.
    pub assignee: Option<String>,
    /// 0, raised by each hierarchical escalation.
    pub escalation_level: i32,
    /// Declared a major incident.
    pub major: bool,
    /// The major incident's responsible manager.
    pub major_manager: Option<String>,
    /// How it was resolved.
    pub resolution_code: Option<ResolutionCode>,
    /// What was done to resolve it.
    pub resolution_notes: Option<String>,
    /// Who recorded it.
    pub created_by: String,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it was (last) resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// When it was closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version, the ETag; +1 per change.
    pub version: i64,
}

/// What happened to an incident; each becomes an event on the bus and a history entry.
#[derive(Debug, Clone, PartialEq)]
pub enum IncidentEvent {
    /// Recorded.
    Created,
    /// Descriptive fields edited.
    Updated {
        /// Which.
        fields: Vec<&'static str>,
    },
    /// Assigned or reassigned.
    Assigned {
        /// The group before.
        previous_group: Option<String>,
        /// The person before.
        previous_assignee: Option<String>,
    },
    /// Started, pended or resumed.
    StateChanged {
        /// The state before.
        from: State,
        /// Why (the pending reason and note).
        reason: Option<String>,
    },
    /// Escalated.
    Escalated {
        /// How.
        kind: EscalationKind,
        /// Why.
        reason: String,
        /// The group before (functional).
        previous_group: Option<String>,
    },
    /// Priority changed (matrix or override).
    PriorityChanged {
        /// Before.
        previous: Priority,
        /// Set for an override.
        override_reason: Option<String>,
    },
    /// Resolved.
    Resolved,
    /// Closed.
    Closed,
    /// Reopened.
    Reopened {
        /// Why.
        reason: String,
    },
    /// Cancelled.
    Cancelled {
        /// Why.
        reason: String,
    },
    /// Declared major.
    MajorDeclared {
        /// The responsible manager.
        manager: String,
        /// Why.
        reason: String,
    },
    /// A work note or comment.
    Noted {
        /// Which.
        kind: NoteKind,
        /// The text.
        body: String,
    },
}

impl IncidentEvent {
    /// The routing key's last segment (`resolution.incident.<name>`); `None` for notes, which
    /// stay in the history and are not published.
    pub fn name(&self) -> Option<&'static str> {
        Some(match self {
            Self::Created => "created",
            Self::Updated { .. } => "updated",
            Self::Assigned { .. } => "assigned",
            Self::StateChanged { .. } => "state_changed",
            Self::Escalated { .. } => "escalated",
            Self::PriorityChanged { .. } => "priority_changed",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
            Self::Reopened { .. } => "reopened",
            Self::Cancelled { .. } => "cancelled",
            Self::MajorDeclared { .. } => "major_declared",
            Self::Noted { .. } => return None,
        })
    }

    /// The history entry's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Noted {
                kind: NoteKind::WorkNote,
                ..
            } => "work_note",
            Self::Noted {
                kind: NoteKind::Comment,
                ..
            } => "comment",
            other => other.name().unwrap_or("note"),
        }
    }
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncidentError {
    /// The state does not allow the action.
    #[error("an incident that is {} cannot {}", state.as_str(), action.as_str())]
    NotAllowed {
        /// The current state.
        state: State,
        /// The refused action.
        action: Action,
    },
    /// The major incident criteria are not met.
    #[error("priority {priority} and the affected service do not meet the major incident criteria")]
    MajorCriteriaNotMet {
        /// The incident's priority.
        priority: u8,
    },
    /// Already major.
    #[error("the incident is already a major incident")]
    AlreadyMajor,
}

/// The major incident criteria (from configuration), and what is known of the incident's service.
#[derive(Debug, Clone, Copy)]
pub struct MajorCriteria<'a> {
    /// Priorities that qualify.
    pub priorities: &'a [Priority],
    /// Whether the affected service's criticality qualifies.
    pub service_qualifies: bool,
}

/// A new incident's fields, validated by the caller.
#[derive(Debug, Clone)]
pub struct NewIncident {
    /// Summary.
    pub title: String,
    /// Details.
    pub description: String,
    /// Reporter.
    pub caller: String,
    /// Service.
    pub service: Option<String>,
    /// CIs.
    pub configuration_items: Vec<String>,
    /// Category.
    pub category: Option<String>,
    /// Impact.
    pub impact: Level,
    /// Urgency.
    pub urgency: Level,
    /// Initial group.
    pub assignment_group: Option<String>,
    /// Initial person.
    pub assignee: Option<String>,
}

/// Descriptive fields to change (`None`: leave as is).
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Summary.
    pub title: Option<String>,
    /// Details.
    pub description: Option<String>,
    /// Reporter.
    pub caller: Option<String>,
    /// Service (`Some(None)` clears it).
    pub service: Option<Option<String>>,
    /// CIs.
    pub configuration_items: Option<Vec<String>>,
    /// Category (`Some(None)` clears it).
    pub category: Option<Option<String>>,
    /// Impact.
    pub impact: Option<Level>,
    /// Urgency.
    pub urgency: Option<Level>,
}

type Outcome = Result<Vec<IncidentEvent>, IncidentError>;

impl Incident {
    /// Records a new incident. With an assignment group it starts assigned.
    pub fn open(
        id: Uuid,
        number: String,
        fields: NewIncident,
        matrix: &PriorityMatrix,
        actor: &str,
        now: DateTime<Utc>,
    ) -> (Self, Vec<IncidentEvent>) {
        let state = if fields.assignment_group.is_some() {
            State::Assigned
        } else {
            State::New
        };
        let incident = Self {
            id,
            number,
            title: fields.title,
            description: fields.description,
            caller: fields.caller,
            service: fields.service,
            configuration_items: fields.configuration_items,
            category: fields.category,
            impact: fields.impact,
            urgency: fields.urgency,
            priority: matrix.priority(fields.impact, fields.urgency),
            priority_override_reason: None,
            state,
            pending_reason: None,
            assignment_group: fields.assignment_group,
            assignee: fields.assignee,
            escalation_level: 0,
            major: false,
            major_manager: None,
            resolution_code: None,
            resolution_notes: None,
            created_by: actor.to_owned(),
            created_at: now,
            updated_at: now,
            resolved_at: None,
            closed_at: None,
            version: 1,
        };
        (incident, vec![IncidentEvent::Created])
    }

    fn check(&self, action: Action) -> Result<(), IncidentError> {
        if self.state.allowed().contains(&action) {
            Ok(())
        } else {
            Err(IncidentError::NotAllowed {
                state: self.state,
                action,
            })
        }
    }

    fn touch(&mut self, now: DateTime<Utc>) {
        self.updated_at = now;
        self.version += 1;
    }

    fn change_state(&mut self, to: State, reason: Option<String>) -> IncidentEvent {
        let from = self.state;
        self.state = to;
        IncidentEvent::StateChanged { from, reason }
    }

    /// Assigns to `group` (and `assignee`); a new incident becomes assigned.
    ///
    /// # Errors
    /// [`IncidentError::NotAllowed`] outside open states.
    pub fn assign(
        &mut self,
        group: String,
        assignee: Option<String>,
        now: DateTime<Utc>,
    ) -> Outcome {
        self.check(Action::Assign)?;
        let event = IncidentEvent::Assigned {
            previous_group: self.assignment_group.replace(group),
            previous_assignee: std::mem::replace(&mut self.assignee, assignee),
        };
        if self.state == State::New {
            self.state = State::Assigned;
        }
        self.touch(now);
        Ok(vec![event])
    }

    /// Starts work; without an assignee, the actor takes it.
    ///
    /// # Errors
    /// [`IncidentError::NotAllowed`] unless assigned.
    pub fn start(&mut self, actor: &str, now: DateTime<Utc>) -> Outcome {
        self.check(Action::Start)?;
        let mut events = Vec::new();
        if self.assignee.is_none() {
            events.push(IncidentEvent::Assigned {
                previous_group: self.assignment_group.clone(),
                previous_assignee: self.assignee.replace(actor.to_owned()),
            });
        }
        events.push(self.change_state(State::InProgress, None));
        self.touch(now);
        Ok(events)
    }

    /// Waits on someone (SLA clocks pause on this).
    ///
    /// # Errors
    /// [`IncidentError::NotAllowed`] unless in progress.
    pub fn pend(
        &mut self,
        reason: PendingReason,
        note: Option<String>,
        now: DateTime<Utc>,
    ) -> Outcome {
        self.check(Action::Pend)?;
        self.pending_reason = Some(reason);
        let why = match note {
            Some(note) => format!("{}: {note}", reason.as_str()),
            None => reason.as_str().to_owned(),
        };
        let event = self.change_state(State::Pending, Some(why));
        self.touch(now);
        Ok(vec![event])
    }

    /// Stops waiting.
    ///
    /// # Errors
    /// [`IncidentError::NotAllowed`] unless pending.
    pub fn resume(&mut self, now: DateTime<Utc>) -> Outcome {
        self.check(Action::Resume)?;
        self.pending_reason = None;
        let event = self.change_state(State::InProgress, None);
        self.touch(now);
        Ok(vec![event])
    }

    /// Restores service, with how and what was done.
    ///
    /// # Errors
    /// [`IncidentError::NotAllowed`] unless assigned, in progress or pending.
    pub fn resolve(&mut self, code: ResolutionCode, notes: String, now: DateTime<Utc>) -> Outcome {
        self.check(Action::Resolve)?;
        self.state = State::Resolved;
        self.pending_reason = None;
        self.resolution_code = Some(code);
        self.resolution_notes = Some(notes);
        self.resolved_at = Some(now);
        self.touch(now);
        Ok(vec![IncidentEvent::Resolved])
    }

    /// Confirms the resolution; the record becomes final.
    ///
    /// # Errors
    /// [`IncidentError::NotAllowed`] unless resolved.
    pub fn close(&mut self, now: DateTime<Utc>) -> Outcome {
        self.check(Action::Close)?;
        self.state = State::Closed;
        self.closed_at = Some(now);
        self.touch(now);
        Ok(vec![IncidentEvent::Closed])
    }

    /// The resolution did not hold: back to work, resolution cleared.
    ///
    /// # Errors
    /// [`IncidentError::NotAllowed`] unless resolved.
    pub fn reopen(&mut self, reason: String, now: DateTime<Utc>) -> Outcome {
        self.check(Action::Reopen)?;
        self.state = State::InProgress;
        self.resolution_code = None;
        self.resolution_notes = None;
        self.resolved_at = None;
        self.touch(now);
        Ok(vec![IncidentEvent::Reopened { reason }])
    }

    /// Withdraws an open incident.
    ///
    /// # Errors
    /// [`IncidentError::NotAllowed`] unless open.
    pub fn cancel(&mut self, reason: String, now: DateTime<Utc>) -> Outcome {
        self.check(Action::Cancel)?;
        self.state = State::Cancelled;
        self.pending_reason = None;
        self.closed_at = Some(now);
        self.touch(now);
        Ok(vec![IncidentEvent::Cancelled { reason }])
    }

    /// Escalates: functionally to `group` (the assignee is cleared: the new group picks), or
    /// hierarchically (the escalation level rises).
    ///
    /// # Errors
    /// [`IncidentError::NotAllowed`] unless open.
    pub fn escalate(
        &mut self,
        kind: EscalationKind,
        group: Option<String>,
        reason: String,
        now: DateTime<Utc>,
    ) -> Outcome {
        self.check(Action::Escalate)?;
        let previous_group = self.assignment_group.clone();
        match (kind, group) {
            (EscalationKind::Functional, Some(group)) => {
                self.assignment_group = Some(group);
                self.assignee = None;
                if self.state == State::New {
                    self.state = State::Assigned;
                }
            }
            (EscalationKind::Functional, None) => {}
            (EscalationKind::Hierarchical, _) => self.escalation_level += 1,
        }
        self.touch(now);
        Ok(vec![IncidentEvent::Escalated {
            kind,
            reason,
            previous_group,
        }])
    }

    /// Sets the priority by hand, with a reason; it stays until another override.
    ///
    /// # Errors
    /// [`IncidentError::NotAllowed`] unless open.
    pub fn override_priority(
        &mut self,
        priority: Priority,
        reason: String,
        now: DateTime<Utc>,
    ) -> Outcome {
        self.check(Action::OverridePriority)?;
        let previous = self.priority;
        self.priority = priority;
        self.priority_override_reason = Some(reason.clone());
        self.touch(now);
        Ok(vec![IncidentEvent::PriorityChanged {
            previous,
            override_reason: Some(reason),
        }])
    }

    /// Edits descriptive fields; a new impact or urgency recomputes the priority unless a person
    /// overrode it.
    ///
    /// # Errors
    /// [`IncidentError::NotAllowed`] unless open.
    pub fn update(
        &mut self,
        changes: Changes,
        matrix: &PriorityMatrix,
        now: DateTime<Utc>,
    ) -> Outcome {
        self.check(Action::Update)?;
        let mut fields = Vec::new();
        macro_rules! apply {
            ($($field:ident),*) => {$(
                if let Some(value) = changes.$field {
                    if self.$field != value {
                        self.$field = value;
                        fields.push(stringify!($field));
                    }
                }
            )*};
        }
        apply!(
            title,
            description,
            caller,
            service,
            configuration_items,
            category,
            impact,
            urgency
        );
        if fields.is_empty() {
            return Ok(Vec::new());
        }
        let mut events = vec![IncidentEvent::Updated {
            fields: fields.clone(),
        }];
        let recomputed = matrix.priority(self.impact, self.urgency);
        if self.priority_override_reason.is_none() && recomputed != self.priority {
            events.push(IncidentEvent::PriorityChanged {
                previous: std::mem::replace(&mut self.priority, recomputed),
                override_reason: None,
            });
        }
        self.touch(now);
        Ok(events)
    }

    /// Declares a major incident under `manager`, if the criteria are met.
    ///
    /// # Errors
    /// [`IncidentError::NotAllowed`] unless open; [`IncidentError::AlreadyMajor`];
    /// [`IncidentError::MajorCriteriaNotMet`].
    pub fn declare_major(
        &mut self,
        manager: String,
        reason: String,
        criteria: MajorCriteria<'_>,
        now: DateTime<Utc>,
    ) -> Outcome {
        self.check(Action::DeclareMajor)?;
        if self.major {
            return Err(IncidentError::AlreadyMajor);
        }
        if !criteria.priorities.contains(&self.priority) && !criteria.service_qualifies {
            return Err(IncidentError::MajorCriteriaNotMet {
                priority: self.priority.get(),
            });
        }
        self.major = true;
        self.major_manager = Some(manager.clone());
        self.touch(now);
        Ok(vec![IncidentEvent::MajorDeclared { manager, reason }])
    }

    /// Adds a work note or comment.
    ///
    /// # Errors
    /// [`IncidentError::NotAllowed`] on closed or cancelled incidents.
    pub fn note(&mut self, kind: NoteKind, body: String, now: DateTime<Utc>) -> Outcome {
        self.check(Action::Note)?;
        self.touch(now);
        Ok(vec![IncidentEvent::Noted { kind, body }])
    }
}

#[cfg(test)]
#[path = "incident_tests.rs"]
mod tests;
