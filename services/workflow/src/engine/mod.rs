//! The interpreter: pure, in memory, no I/O. An [`Instance`] is the whole running state of one
//! workflow (tokens, open tasks, pending timers, variables); each entry point (start, complete a
//! task, a timer firing, a message, a service reply, a child's end, cancel, retry) changes it in
//! place and returns the [`Effect`]s the outside world must carry out or record: tasks created
//! and closed, commands to send, events to publish, history. The durable engine stores the
//! instance and the effects in one transaction per step.
//!
//! Semantics, BPMN-like: a token moves through the graph until it reaches a node that waits
//! (user task, service task, timer, message, event gateway, call activity, a parallel join not
//! yet complete). A parallel gateway with several next nodes forks; one with several incoming
//! paths joins (waits for a token from each). The instance completes when no token is left; its
//! outcome is that of the last end reached.

pub mod expr;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use crate::definition::model::{
    Assignee, BoundaryTimer, Field, Mode, Node, ServiceTask, TimerAction, UserTask,
};
use crate::definition::{Compiled, duration};
use expr::{ExprError, Scope};

/// Where an instance stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Tokens are moving or waiting.
    Running,
    /// No token is left.
    Completed,
    /// Stopped by a person.
    Cancelled,
}

impl Status {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// The whole state of one running workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// Id.
    pub id: Uuid,
    /// The definition's id.
    pub definition: String,
    /// The definition's version (the instance keeps it to the end).
    pub version: String,
    /// The business object, e.g. the change's id.
    pub business_key: String,
    /// Who started it.
    pub initiator: String,
    /// Where it stands.
    pub status: Status,
    /// The outcome of the last end reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Variables, task results included (by node id).
    pub variables: serde_json::Map<String, Json>,
    /// Live tokens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<Token>,
    /// Tokens arrived at each parallel join.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub joins: BTreeMap<String, u32>,
    /// Open tasks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<Task>,
    /// Pending timers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timers: Vec<Timer>,
    /// The next local id (tokens, timers).
    pub seq: u32,
}

/// A token: where one path of the instance is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    /// Local id.
    pub id: u32,
    /// The node it is at.
    pub node: String,
    /// A service task's attempt (1-based), or 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
    /// The correlation id a service task's reply must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation: Option<String>,
    /// A multi-instance task's progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi: Option<Multi>,
    /// The awaited message (message node): event type and subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting: Option<Vec<(String, String, String)>>,
    /// The child instance a call activity waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<Uuid>,
    /// Why the token is stuck (an incident an operator can retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if"
)]
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A multi-instance task's progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Multi {
    /// Which entry into the task this is (a loop may enter it again).
    #[serde(default)]
    pub round: u32,
    /// The users, one task each.
    pub items: Vec<String>,
    /// Sequential: the next item to get a task.
    pub next: usize,
    /// Decisions so far: who and which outcome, in order.
    pub decisions: Vec<(String, String)>,
    /// The comment of each decision, in the same order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<Option<String>>,
}

/// A human task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Id (global).
    pub id: Uuid,
    /// The token it belongs to.
    pub token: u32,
    /// The user task node.
    pub node: String,
    /// The one person it is assigned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// Who may claim it.
    #[serde(default, skip_serializing_if = "Candidates::is_empty")]
    pub candidates: Candidates,
    /// Who may never complete it (segregation of duties).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forbidden: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
}

/// Who may claim a task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidates {
    /// Users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Roles (and groups: a group is a role of the token).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

impl Candidates {
    /// Nobody.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.roles.is_empty()
    }
}

/// A pending timer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timer {
    /// Local id.
    pub id: u32,
    /// The token it belongs to.
    pub token: u32,
    /// What it is.
    pub kind: TimerKind,
    /// When it fires.
    pub due_at: DateTime<Utc>,
}

/// The kinds of timers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// A boundary timer of a task (its index in `boundary`).
    Boundary(usize),
    /// An intermediate timer node.
    Wait,
    /// A timer branch of an event gateway (its index).
    Race(usize),
    /// A service task's reply did not come in time.
    ReplyTimeout,
    /// A service task's next attempt.
    Retry,
}

/// Someone acting on a task.
#[derive(Debug, Clone)]
pub struct Actor {
    /// User id.
    pub id: String,
    /// Roles (groups included).
    pub roles: Vec<String>,
    /// May act on any task (still bound by segregation of duties).
    pub admin: bool,
}

/// What the engine asks of the world, and what it records.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// The instance started.
    Started,
    /// The instance completed.
    Completed {
        /// Its outcome.
        outcome: Option<String>,
    },
    /// The instance was cancelled.
    Cancelled {
        /// By whom.
        by: String,
        /// Why.
        reason: String,
    },
    /// A token entered a node.
    Entered {
        /// The node.
        node: String,
    },
    /// A task was created.
    TaskCreated(Task),
    /// A task was completed.
    TaskCompleted {
        /// The task.
        task: Task,
        /// By whom.
        by: String,
        /// The outcome chosen.
        outcome: String,
        /// The comment.
        comment: Option<String>,
        /// The form's fields.
        fields: serde_json::Map<String, Json>,
    },
    /// An open task was closed without a decision (quorum reached, timer, cancel).
    TaskWithdrawn {
        /// The task.
        task: Task,
        /// Why.
        reason: String,
    },
    /// A task was claimed or delegated.
    TaskAssigned {
        /// The task.
        task: Task,
        /// By whom.
        by: String,
    },
    /// Candidates were added to an overdue task.
    TaskEscalated {
        /// The task, with its new candidates.
        task: Task,
        /// The timer.
        timer: String,
    },
    /// The assignees of a task are reminded.
    TaskReminded {
        /// The task.
        task: Task,
        /// The timer.
        timer: String,
    },
    /// A command to send to a service.
    Command {
        /// The service task node.
        node: String,
        /// The command type.
        command: String,
        /// The reply must carry it.
        correlation_id: String,
        /// The command's fields.
        input: Json,
        /// 1-based.
        attempt: u32,
    },
    /// A child instance to start (call activity).
    StartChild {
        /// The calling token.
        token: u32,
        /// The called definition's id.
        definition: String,
        /// Its variables.
        variables: serde_json::Map<String, Json>,
    },
    /// A token is stuck until an operator retries it.
    Incident {
        /// The node.
        node: String,
        /// Why.
        reason: String,
    },
    /// A stuck token was retried.
    Retried {
        /// The node.
        node: String,
        /// By whom.
        by: String,
    },
}

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The instance is not running.
    #[error("the instance is {0}")]
    NotRunning(&'static str),
    /// No such open task.
    #[error("no open task {0}")]
    NoTask(Uuid),
    /// The actor may not act on the task.
    #[error("{0}")]
    Forbidden(String),
    /// Segregation of duties excludes the actor (or the delegate) from the task.
    #[error("{0}")]
    Segregation(String),
    /// A bad input, naming the field.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field (`variables.risk`, `fields.risk`, `outcome`, …).
        field: String,
        /// Why.
        reason: String,
    },
    /// Nothing waits for this (timer, message, reply, child, retry).
    #[error("{0}")]
    Nothing(String),
}

/// Where to find people the definitions name indirectly.
pub trait Directory {
    /// The owner of a configuration item.
    fn ci_owner(&self, ci: &str) -> Option<String>;
}

/// A directory that knows nobody (no CMDB read model yet).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDirectory;

impl Directory for NoDirectory {
    fn ci_owner(&self, _ci: &str) -> Option<String> {
        None
    }
}

/// A directory that knows what it was given (the CI owners a step may need, read beforehand).
#[derive(Debug, Clone, Default)]
pub struct MapDirectory {
    /// CI id → owner.
    pub ci_owners: std::collections::HashMap<String, String>,
}

impl Directory for MapDirectory {
    fn ci_owner(&self, ci: &str) -> Option<String> {
        self.ci_owners.get(ci).cloned()
    }
}

/// The variables a definition's `ci_owner` rules read (their values are CI ids).
pub fn ci_owner_variables(compiled: &Compiled) -> Vec<&str> {
    let mut rules: Vec<&Assignee> = Vec::new();
    for node in &compiled.definition.nodes {
        let (assignee, timers) = match node {
            Node::UserTask(task) => (task.assignee.as_ref(), task.boundary.as_slice()),
            Node::ServiceTask(task) => (None, task.boundary.as_slice()),
            _ => continue,
        };
        rules.extend(assignee);
        for timer in timers {
            if let Some(TimerAction::Escalate { to }) = &timer.action {
                rules.push(to);
            }
        }
    }
    rules
        .into_iter()
        .filter_map(|rule| rule.ci_owner.as_deref())
        .collect()
}

/// A request to start an instance.
#[derive(Debug, Clone)]
pub struct Start {
    /// The new instance's id.
    pub id: Uuid,
    /// The business key.
    pub business_key: String,
    /// Who starts it.
    pub initiator: String,
    /// The variables, checked against the definition's.
    pub variables: serde_json::Map<String, Json>,
}

/// Checks `values` against typed `fields`; `prefix` names them in errors.
///
/// # Errors
/// The first missing, unknown or mistyped field.
pub fn check_fields(
    fields: &BTreeMap<String, Field>,
    values: &serde_json::Map<String, Json>,
    prefix: &str,
) -> Result<(), EngineError> {
    meridian_chassis::fields::check(fields, values, prefix)
        .map_err(|(field, reason)| EngineError::Invalid { field, reason })
}

/// Starts an instance of `compiled`.
///
/// # Errors
/// Variables that do not match the definition.
pub fn start(
    compiled: &Compiled,
    request: Start,
    now: DateTime<Utc>,
    directory: &dyn Directory,
) -> Result<(Instance, Vec<Effect>), EngineError> {
    check_fields(
        &compiled.definition.variables,
        &request.variables,
        "variables",
    )?;
    let mut variables = request.variables;
    variables.insert(
        "initiator".to_owned(),
        Json::String(request.initiator.clone()),
    );
    variables.insert(
        "business_key".to_owned(),
        Json::String(request.business_key.clone()),
    );
    let mut instance = Instance {
        id: request.id,
        definition: compiled.definition.id.clone(),
        version: compiled.version.clone(),
        business_key: request.business_key,
        initiator: request.initiator,
        status: Status::Running,
        outcome: None,
        variables,
        tokens: Vec::new(),
        joins: BTreeMap::new(),
        tasks: Vec::new(),
        timers: Vec::new(),
        seq: 0,
    };
    let mut run = Run::new(compiled, &mut instance, now, directory);
    run.effects.push(Effect::Started);
    let start = compiled
        .start()
        .map(|node| node.id().to_owned())
        .ok_or_else(|| EngineError::Nothing("the definition has no start".to_owned()))?;
    let token = run.new_token(&start);
    run.enter(token);
    let effects = run.finish();
    Ok((instance, effects))
}

/// Completes an open task.
///
/// # Errors
/// No such task, an actor who may not, a bad outcome or form field.
#[expect(clippy::too_many_arguments, reason = "one per part of a completion")]
pub fn complete(
    compiled: &Compiled,
    instance: &mut Instance,
    task_id: Uuid,
    actor: &Actor,
    outcome: &str,
    comment: Option<String>,
    fields: serde_json::Map<String, Json>,
    now: DateTime<Utc>,
    directory: &dyn Directory,
) -> Result<Vec<Effect>, EngineError> {
    // A task its instance no longer holds is closed, even when that closing ended the instance:
    // the second of two racing deciders hears `task_closed`, as it would had the instance gone on.
    let index = instance
        .tasks
        .iter()
        .position(|t| t.id == task_id)
        .ok_or(EngineError::NoTask(task_id))?;
    running(instance)?;
    let task = instance.tasks[index].clone();
    may_complete(&task, actor)?;
    let Some(Node::UserTask(spec)) = compiled.node(&task.node) else {
        return Err(EngineError::NoTask(task_id));
    };
    if !spec.outcomes.iter().any(|o| o == outcome) {
        return Err(EngineError::Invalid {
            field: "outcome".to_owned(),
            reason: format!("must be one of {}", spec.outcomes.join(", ")),
        });
    }
    check_fields(&spec.form, &fields, "fields")?;
    let token_id = task.token;
    let Some(token) = instance.tokens.iter().find(|t| t.id == token_id) else {
        return Err(EngineError::NoTask(task_id));
    };
    if let Some(multi) = &token.multi
        && multi.decisions.iter().any(|(by, _)| *by == actor.id)
    {
        return Err(EngineError::Forbidden(format!(
            "{} has already decided this task once; one person counts once",
            actor.id
        )));
    }
    instance.tasks.remove(index);
    let mut run = Run::new(compiled, instance, now, directory);
    run.effects.push(Effect::TaskCompleted {
        task: task.clone(),
        by: actor.id.clone(),
        outcome: outcome.to_owned(),
        comment: comment.clone(),
        fields: fields.clone(),
    });
    run.task_done(token_id, spec, &actor.id, outcome, comment, fields);
    Ok(run.finish())
}

/// Whether `actor` may complete `task`: never when segregation forbids them; else the assignee,
/// a candidate, or an admin.
///
/// # Errors
/// Why not.
pub fn may_complete(task: &Task, actor: &Actor) -> Result<(), EngineError> {
    if task.forbidden.contains(&actor.id) {
        return Err(EngineError::Segregation(format!(
            "segregation of duties: {} may not act on this task",
            actor.id
        )));
    }
    if actor.admin || may_work(task, actor) {
        Ok(())
    } else {
        Err(EngineError::Forbidden(format!(
            "{} is neither the assignee nor a candidate of this task",
            actor.id
        )))
    }
}

/// Whether `actor` is the task's assignee or one of its candidates.
pub fn may_work(task: &Task, actor: &Actor) -> bool {
    match &task.assignee {
        Some(assignee) => *assignee == actor.id,
        None => {
            task.candidates.users.contains(&actor.id)
                || task
                    .candidates
                    .roles
                    .iter()
                    .any(|r| actor.roles.iter().any(|a| a == r))
        }
    }
}

/// Claims an unassigned task (a candidate), or delegates it (`to`: the assignee, a candidate of
/// an unassigned task, or an admin).
///
/// # Errors
/// No such task, or someone who may not.
pub fn assign(
    instance: &mut Instance,
    task_id: Uuid,
    actor: &Actor,
    to: Option<&str>,
) -> Result<Vec<Effect>, EngineError> {
    running(instance)?;
    let task = instance
        .tasks
        .iter_mut()
        .find(|t| t.id == task_id)
        .ok_or(EngineError::NoTask(task_id))?;
    let target = to.unwrap_or(&actor.id);
    if task.forbidden.iter().any(|f| f == target) {
        return Err(EngineError::Segregation(format!(
            "segregation of duties: {target} may not act on this task"
        )));
    }
    if !(actor.admin || may_work(task, actor)) {
        return Err(EngineError::Forbidden(format!(
            "{} is neither the assignee nor a candidate of this task",
            actor.id
        )));
    }
    if to.is_none() && task.assignee.as_deref().is_some_and(|a| a != actor.id) {
        return Err(EngineError::Forbidden(
            "the task is assigned to someone else".to_owned(),
        ));
    }
    task.assignee = Some(target.to_owned());
    Ok(vec![Effect::TaskAssigned {
        task: task.clone(),
        by: actor.id.clone(),
    }])
}

/// A timer fires.
///
/// # Errors
/// No such pending timer.
pub fn fire(
    compiled: &Compiled,
    instance: &mut Instance,
    timer_id: u32,
    now: DateTime<Utc>,
    directory: &dyn Directory,
) -> Result<Vec<Effect>, EngineError> {
    running(instance)?;
    let index = instance
        .timers
        .iter()
        .position(|t| t.id == timer_id)
        .ok_or_else(|| EngineError::Nothing(format!("no pending timer {timer_id}")))?;
    let timer = instance.timers.remove(index);
    let mut run = Run::new(compiled, instance, now, directory);
    run.timer(timer);
    Ok(run.finish())
}

/// A bus event arrives: every token waiting for this type and subject moves on.
///
/// # Errors
/// Nothing waits for it.
pub fn message(
    compiled: &Compiled,
    instance: &mut Instance,
    event_type: &str,
    subject: &str,
    payload: Json,
    now: DateTime<Utc>,
    directory: &dyn Directory,
) -> Result<Vec<Effect>, EngineError> {
    running(instance)?;
    let waiting: Vec<(u32, String)> = instance
        .tokens
        .iter()
        .filter_map(|token| {
            token.awaiting.as_ref().and_then(|awaiting| {
                awaiting
                    .iter()
                    .find(|(t, s, _)| t == event_type && s == subject)
                    .map(|(_, _, next)| (token.id, next.clone()))
            })
        })
        .collect();
    if waiting.is_empty() {
        return Err(EngineError::Nothing(format!(
            "nothing waits for {event_type} about {subject}"
        )));
    }
    let mut run = Run::new(compiled, instance, now, directory);
    for (token, next) in waiting {
        let node = run.token(token).map(|t| t.node.clone()).unwrap_or_default();
        run.instance.variables.insert(node, payload.clone());
        run.clear_waits(token);
        run.move_to(token, &next);
    }
    Ok(run.finish())
}

/// A service replies to a command.
///
/// # Errors
/// Nothing waits for this correlation id.
pub fn reply(
    compiled: &Compiled,
    instance: &mut Instance,
    correlation_id: &str,
    result: Result<Json, String>,
    now: DateTime<Utc>,
    directory: &dyn Directory,
) -> Result<Vec<Effect>, EngineError> {
    running(instance)?;
    let token = instance
        .tokens
        .iter()
        .find(|t| t.correlation.as_deref() == Some(correlation_id))
        .map(|t| t.id)
        .ok_or_else(|| EngineError::Nothing(format!("nothing waits for reply {correlation_id}")))?;
    let mut run = Run::new(compiled, instance, now, directory);
    match result {
        Ok(payload) => {
            let node = run.token(token).map(|t| t.node.clone()).unwrap_or_default();
            run.instance.variables.insert(node.clone(), payload);
            run.clear_waits(token);
            if let Some(Node::ServiceTask(spec)) = compiled.node(&node) {
                run.move_to(token, &spec.next);
            }
        }
        Err(reason) => run.attempt_failed(token, &reason),
    }
    Ok(run.finish())
}

/// A child instance ended: its calling token moves on, with the child's outcome and variables.
///
/// # Errors
/// No token waits for this child.
pub fn child_completed(
    compiled: &Compiled,
    instance: &mut Instance,
    child: Uuid,
    outcome: Option<String>,
    variables: serde_json::Map<String, Json>,
    now: DateTime<Utc>,
    directory: &dyn Directory,
) -> Result<Vec<Effect>, EngineError> {
    running(instance)?;
    let token = instance
        .tokens
        .iter()
        .find(|t| t.child == Some(child))
        .map(|t| t.id)
        .ok_or_else(|| EngineError::Nothing(format!("no call waits for instance {child}")))?;
    let mut run = Run::new(compiled, instance, now, directory);
    let node = run.token(token).map(|t| t.node.clone()).unwrap_or_default();
    let mut result = variables;
    result.insert(
        "outcome".to_owned(),
        outcome.map_or(Json::Null, Json::String),
    );
    run.instance
        .variables
        .insert(node.clone(), Json::Object(result));
    if let Some(Node::CallActivity { next, .. }) = compiled.node(&node) {
        run.clear_waits(token);
        run.move_to(token, next);
    }
    Ok(run.finish())
}

/// Records the child instance a call activity started (after [`Effect::StartChild`]).
pub fn child_started(instance: &mut Instance, token: u32, child: Uuid) {
    if let Some(t) = instance.tokens.iter_mut().find(|t| t.id == token) {
        t.child = Some(child);
    }
}

/// Cancels a running instance: open tasks are withdrawn, timers dropped.
///
/// # Errors
/// The instance is not running.
pub fn cancel(instance: &mut Instance, by: &str, reason: &str) -> Result<Vec<Effect>, EngineError> {
    running(instance)?;
    let mut effects: Vec<Effect> = instance
        .tasks
        .drain(..)
        .map(|task| Effect::TaskWithdrawn {
            task,
            reason: "instance cancelled".to_owned(),
        })
        .collect();
    instance.timers.clear();
    instance.tokens.clear();
    instance.status = Status::Cancelled;
    effects.push(Effect::Cancelled {
        by: by.to_owned(),
        reason: reason.to_owned(),
    });
    Ok(effects)
}

/// Retries the node of every stuck token (an operator, after fixing the cause).
///
/// # Errors
/// No token is stuck.
pub fn retry(
    compiled: &Compiled,
    instance: &mut Instance,
    by: &str,
    now: DateTime<Utc>,
    directory: &dyn Directory,
) -> Result<Vec<Effect>, EngineError> {
    running(instance)?;
    let stuck: Vec<(u32, String)> = instance
        .tokens
        .iter()
        .filter(|t| t.incident.is_some())
        .map(|t| (t.id, t.node.clone()))
        .collect();
    if stuck.is_empty() {
        return Err(EngineError::Nothing("no incident to retry".to_owned()));
    }
    let mut run = Run::new(compiled, instance, now, directory);
    for (token, node) in stuck {
        if let Some(t) = run.token_mut(token) {
            t.incident = None;
            t.attempt = 0;
        }
        run.effects.push(Effect::Retried {
            node,
            by: by.to_owned(),
        });
        if run.instance.tasks.iter().any(|t| t.token == token) {
            // Its tasks are still open (a completion condition failed): the next decision
            // evaluates it again.
            continue;
        }
        // The node runs again from the start, its old timers gone.
        run.instance.timers.retain(|t| t.token != token);
        run.enter(token);
    }
    Ok(run.finish())
}

fn running(instance: &Instance) -> Result<(), EngineError> {
    match instance.status {
        Status::Running => Ok(()),
        other => Err(EngineError::NotRunning(other.as_str())),
    }
}

/// One step's work on an instance.
struct Run<'a> {
    compiled: &'a Compiled,
    instance: &'a mut Instance,
    now: DateTime<Utc>,
    directory: &'a dyn Directory,
    effects: Vec<Effect>,
    /// Tokens to move, in order (no recursion: forks push here).
    queue: Vec<u32>,
}

impl<'a> Run<'a> {
    fn new(
        compiled: &'a Compiled,
        instance: &'a mut Instance,
        now: DateTime<Utc>,
        directory: &'a dyn Directory,
    ) -> Self {
        Self {
            compiled,
            instance,
            now,
            directory,
            effects: Vec::new(),
            queue: Vec::new(),
        }
    }

    fn finish(mut self) -> Vec<Effect> {
        self.drain();
        if self.instance.status == Status::Running && self.instance.tokens.is_empty() {
            self.instance.status = Status::Completed;
            self.instance.timers.clear();
            self.effects.push(Effect::Completed {
                outcome: self.instance.outcome.clone(),
            });
        }
        self.effects
    }

    fn next_id(&mut self) -> u32 {
        self.instance.seq += 1;
        self.instance.seq
    }

    fn new_token(&mut self, node: &str) -> u32 {
        let id = self.next_id();
        self.instance.tokens.push(Token {
            id,
            node: node.to_owned(),
            attempt: 0,
            correlation: None,
            multi: None,
            awaiting: None,
            child: None,
            incident: None,
        });
        id
    }

    fn token(&self, id: u32) -> Option<&Token> {
        self.instance.tokens.iter().find(|t| t.id == id)
    }

    fn token_mut(&mut self, id: u32) -> Option<&mut Token> {
        self.instance.tokens.iter_mut().find(|t| t.id == id)
    }

    fn remove_token(&mut self, id: u32) {
        self.instance.tokens.retain(|t| t.id != id);
        self.instance.timers.retain(|t| t.token != id);
    }

    /// Drops the token's timers and waits (its node is done).
    fn clear_waits(&mut self, id: u32) {
        self.instance.timers.retain(|t| t.token != id);
        if let Some(token) = self.token_mut(id) {
            token.awaiting = None;
            token.correlation = None;
            token.child = None;
            token.multi = None;
            token.attempt = 0;
        }
    }

    fn move_to(&mut self, id: u32, node: &str) {
        if let Some(token) = self.token_mut(id) {
            node.clone_into(&mut token.node);
        }
        self.queue.push(id);
    }

    fn enter(&mut self, id: u32) {
        self.queue.push(id);
    }

    fn drain(&mut self) {
        while !self.queue.is_empty() {
            let id = self.queue.remove(0);
            self.execute(id);
        }
    }

    fn schedule(&mut self, token: u32, kind: TimerKind, after: &str) {
        match duration::parse(after) {
            Ok(wait) => {
                let id = self.next_id();
                self.instance.timers.push(Timer {
                    id,
                    token,
                    kind,
                    due_at: self.now + wait,
                });
            }
            Err(reason) => self.incident(token, reason),
        }
    }

    fn incident(&mut self, token: u32, reason: String) {
        let node = self
            .token(token)
            .map(|t| t.node.clone())
            .unwrap_or_default();
        if let Some(t) = self.token_mut(token) {
            t.incident = Some(reason.clone());
        }
        self.effects.push(Effect::Incident { node, reason });
    }

    fn scope<'s>(&'s self, extra: &'s [(&'s str, Json)]) -> Scope<'s> {
        Scope {
            variables: &self.instance.variables,
            extra,
        }
    }

    /// Runs the node the token is at.
    fn execute(&mut self, id: u32) {
        let compiled = self.compiled;
        let Some(node_id) = self.token(id).map(|t| t.node.clone()) else {
            return;
        };
        let Some(node) = compiled.node(&node_id) else {
            self.incident(id, format!("the definition has no node `{node_id}`"));
            return;
        };
        self.effects.push(Effect::Entered {
            node: node_id.clone(),
        });
        match node {
            Node::Start { next, .. } => self.move_to(id, next),
            Node::End { outcome, .. } => {
                if outcome.is_some() {
                    self.instance.outcome.clone_from(outcome);
                }
                self.remove_token(id);
            }
            Node::ExclusiveGateway {
                branches, default, ..
            } => {
                let mut chosen = None;
                for branch in branches {
                    match expr::condition(compiled, &branch.when, &self.scope(&[])) {
                        Ok(true) => {
                            chosen = Some(branch.next.as_str());
                            break;
                        }
                        Ok(false) => {}
                        Err(error) => return self.incident(id, error.to_string()),
                    }
                }
                match chosen.or(default.as_deref()) {
                    Some(next) => self.move_to(id, next),
                    None => self.incident(id, "no branch holds and there is no default".to_owned()),
                }
            }
            Node::ParallelGateway { next, .. } => {
                let incoming = compiled.incoming(&node_id);
                if incoming > 1 {
                    let arrived = self.instance.joins.entry(node_id.clone()).or_insert(0);
                    *arrived += 1;
                    if (*arrived as usize) < incoming {
                        self.remove_token(id);
                        return;
                    }
                    self.instance.joins.remove(&node_id);
                }
                let mut targets = next.iter();
                if let Some(first) = targets.next() {
                    for other in targets {
                        let token = self.new_token(other);
                        self.enter(token);
                    }
                    self.move_to(id, first);
                }
            }
            Node::UserTask(spec) => self.user_task(id, spec),
            Node::ServiceTask(spec) => {
                self.send_command(id, spec);
                self.boundary(id, &spec.boundary);
            }
            Node::Timer { duration, .. } => self.schedule(id, TimerKind::Wait, duration),
            Node::Message {
                event,
                correlate,
                next,
                ..
            } => match self.subject(correlate.as_deref()) {
                Ok(subject) => {
                    if let Some(t) = self.token_mut(id) {
                        t.awaiting = Some(vec![(event.clone(), subject, next.clone())]);
                    }
                }
                Err(error) => self.incident(id, error.to_string()),
            },
            Node::EventGateway { branches, .. } => {
                let mut awaiting = Vec::new();
                for (i, branch) in branches.iter().enumerate() {
                    if let Some(message) = &branch.message {
                        match self.subject(message.correlate.as_deref()) {
                            Ok(subject) => {
                                awaiting.push((
                                    message.event.clone(),
                                    subject,
                                    branch.next.clone(),
                                ));
                            }
                            Err(error) => return self.incident(id, error.to_string()),
                        }
                    } else if let Some(timer) = &branch.timer {
                        self.schedule(id, TimerKind::Race(i), timer);
                    }
                }
                if let Some(t) = self.token_mut(id) {
                    t.awaiting = Some(awaiting);
                }
            }
            Node::CallActivity {
                definition,
                variables,
                ..
            } => {
                let mut child = serde_json::Map::new();
                for (name, source) in variables {
                    match expr::eval(compiled, source, &self.scope(&[])) {
                        Ok(value) => {
                            child.insert(name.clone(), expr::to_json(&value));
                        }
                        Err(error) => return self.incident(id, error.to_string()),
                    }
                }
                self.effects.push(Effect::StartChild {
                    token: id,
                    definition: definition.clone(),
                    variables: child,
                });
            }
        }
    }

    fn subject(&self, correlate: Option<&str>) -> Result<String, ExprError> {
        match correlate {
            None => Ok(self.instance.business_key.clone()),
            Some(source) => {
                let value = expr::eval(self.compiled, source, &self.scope(&[]))?;
                Ok(match expr::to_json(&value) {
                    Json::String(s) => s,
                    other => other.to_string(),
                })
            }
        }
    }

    /// The users a definition's and a task's segregation rules exclude.
    fn forbidden(&self, spec: &UserTask) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for name in self
            .compiled
            .definition
            .segregation
            .iter()
            .chain(&spec.segregation)
        {
            match self.instance.variables.get(name) {
                Some(Json::String(user)) => out.push(user.clone()),
                Some(Json::Array(users)) => {
                    out.extend(users.iter().filter_map(Json::as_str).map(str::to_owned));
                }
                _ => {}
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn user_task(&mut self, id: u32, spec: &UserTask) {
        let forbidden = self.forbidden(spec);
        if let Some(multi) = &spec.multi_instance {
            let items = match expr::users(self.compiled, &multi.over, &self.scope(&[])) {
                Ok(items) => items,
                Err(error) => return self.incident(id, error.to_string()),
            };
            // One task per person, and none for a person segregation excludes.
            let mut people: Vec<String> = Vec::new();
            for item in items {
                if !people.contains(&item) && !forbidden.contains(&item) {
                    people.push(item);
                }
            }
            if people.is_empty() {
                return self.incident(id, format!("`{}` gives nobody who may decide", multi.over));
            }
            let first: Vec<String> = match multi.mode {
                Mode::Parallel => people.clone(),
                Mode::Sequential => people.iter().take(1).cloned().collect(),
            };
            let round = self.next_id();
            if let Some(t) = self.token_mut(id) {
                t.multi = Some(Multi {
                    round,
                    items: people,
                    next: first.len(),
                    decisions: Vec::new(),
                    comments: Vec::new(),
                });
            }
            for user in first {
                self.create_task(id, spec, Some(user), Candidates::default(), &forbidden);
            }
        } else {
            let assignee = spec.assignee.clone().unwrap_or_default();
            match self.resolve(&assignee) {
                Ok((user, candidates)) => {
                    self.create_task(id, spec, user, candidates, &forbidden);
                }
                Err(reason) => return self.incident(id, reason),
            }
        }
        self.boundary(id, &spec.boundary);
    }

    /// An assignee rule to one user or to candidates.
    fn resolve(&self, rule: &Assignee) -> Result<(Option<String>, Candidates), String> {
        if let Some(user) = &rule.user {
            return Ok((Some(user.clone()), Candidates::default()));
        }
        let mut candidates = Candidates::default();
        if let Some(role) = rule.role.as_ref().or(rule.group.as_ref()) {
            candidates.roles.push(role.clone());
        }
        if let Some(source) = &rule.expression {
            let users =
                expr::users(self.compiled, source, &self.scope(&[])).map_err(|e| e.to_string())?;
            if let [one] = users.as_slice() {
                return Ok((Some(one.clone()), candidates));
            }
            candidates.users = users;
        }
        if let Some(variable) = &rule.ci_owner {
            let ci = self
                .instance
                .variables
                .get(variable)
                .and_then(Json::as_str)
                .ok_or_else(|| format!("`{variable}` holds no CI id"))?;
            let owner = self
                .directory
                .ci_owner(ci)
                .ok_or_else(|| format!("the CI `{ci}` has no known owner"))?;
            return Ok((Some(owner), candidates));
        }
        Ok((None, candidates))
    }

    fn create_task(
        &mut self,
        token: u32,
        spec: &UserTask,
        assignee: Option<String>,
        candidates: Candidates,
        forbidden: &[String],
    ) {
        let due_at = spec
            .due
            .as_deref()
            .and_then(|due| duration::parse(due).ok())
            .map(|d| self.now + d);
        let task = Task {
            id: Uuid::now_v7(),
            token,
            node: spec.id.clone(),
            assignee,
            candidates,
            forbidden: forbidden.to_vec(),
            created_at: self.now,
            due_at,
        };
        self.instance.tasks.push(task.clone());
        self.effects.push(Effect::TaskCreated(task));
    }

    fn boundary(&mut self, token: u32, timers: &[BoundaryTimer]) {
        for (i, timer) in timers.iter().enumerate() {
            self.schedule(token, TimerKind::Boundary(i), &timer.after);
        }
    }

    /// A task of the token was completed: record it and decide whether the node is done.
    fn task_done(
        &mut self,
        token: u32,
        spec: &UserTask,
        by: &str,
        outcome: &str,
        comment: Option<String>,
        fields: serde_json::Map<String, Json>,
    ) {
        let multi = self.token_mut(token).and_then(|t| {
            t.multi.as_mut().map(|m| {
                m.decisions.push((by.to_owned(), outcome.to_owned()));
                if comment.is_some() || !m.comments.is_empty() {
                    m.comments.resize(m.decisions.len() - 1, None);
                    m.comments.push(comment.clone());
                }
                m.clone()
            })
        });
        let Some(multi) = multi else {
            let mut result = fields;
            result.insert("outcome".to_owned(), json!(outcome));
            result.insert("by".to_owned(), json!(by));
            result.insert("at".to_owned(), json!(self.now));
            if let Some(comment) = comment {
                result.insert("comment".to_owned(), json!(comment));
            }
            self.instance
                .variables
                .insert(spec.id.clone(), Json::Object(result));
            return self.leave(token, &spec.next);
        };
        let result = multi_result(spec, &multi);
        let done = match spec
            .multi_instance
            .as_ref()
            .and_then(|m| m.completion.as_deref())
        {
            Some(source) => {
                let extra: Vec<(&str, Json)> = result
                    .iter()
                    .filter(|(k, _)| *k != "decisions")
                    .map(|(k, v)| (k.as_str(), v.clone()))
                    .collect();
                match expr::condition(self.compiled, source, &self.scope(&extra)) {
                    Ok(done) => done || multi.decisions.len() == multi.items.len(),
                    Err(error) => return self.incident(token, error.to_string()),
                }
            }
            None => multi.decisions.len() == multi.items.len(),
        };
        self.instance
            .variables
            .insert(spec.id.clone(), Json::Object(result));
        if done {
            self.leave(token, &spec.next);
        } else if spec.multi_instance.as_ref().map(|m| m.mode) == Some(Mode::Sequential)
            && let Some(user) = multi.items.get(multi.next).cloned()
        {
            if let Some(m) = self.token_mut(token).and_then(|t| t.multi.as_mut()) {
                m.next += 1;
            }
            let forbidden = self.forbidden(spec);
            self.create_task(token, spec, Some(user), Candidates::default(), &forbidden);
        }
    }

    /// The token's node is done: withdraw its open tasks, drop its timers, go on to `next`.
    fn leave(&mut self, token: u32, next: &str) {
        self.withdraw(token, "the task was decided");
        self.clear_waits(token);
        self.move_to(token, next);
    }

    fn withdraw(&mut self, token: u32, reason: &str) {
        let (withdrawn, kept): (Vec<Task>, Vec<Task>) = std::mem::take(&mut self.instance.tasks)
            .into_iter()
            .partition(|t| t.token == token);
        self.instance.tasks = kept;
        for task in withdrawn {
            self.effects.push(Effect::TaskWithdrawn {
                task,
                reason: reason.to_owned(),
            });
        }
    }

    fn timer(&mut self, timer: Timer) {
        let compiled = self.compiled;
        let Some(node_id) = self.token(timer.token).map(|t| t.node.clone()) else {
            return;
        };
        let node = compiled.node(&node_id);
        match (timer.kind, node) {
            (TimerKind::Wait, Some(Node::Timer { next, .. })) => {
                let next = next.clone();
                self.move_to(timer.token, &next);
            }
            (TimerKind::Race(i), Some(Node::EventGateway { branches, .. })) => {
                if let Some(branch) = branches.get(i) {
                    self.clear_waits(timer.token);
                    self.move_to(timer.token, &branch.next);
                }
            }
            (TimerKind::Boundary(i), Some(node)) => {
                let timers = match node {
                    Node::UserTask(spec) => &spec.boundary,
                    Node::ServiceTask(spec) => &spec.boundary,
                    _ => return,
                };
                if let Some(spec) = timers.get(i) {
                    self.boundary_fired(timer.token, spec);
                }
            }
            (TimerKind::ReplyTimeout, Some(_)) => {
                self.attempt_failed(timer.token, "no reply in time");
            }
            (TimerKind::Retry, Some(Node::ServiceTask(spec))) => {
                self.send_command(timer.token, spec);
            }
            _ => {}
        }
    }

    fn boundary_fired(&mut self, token: u32, spec: &BoundaryTimer) {
        if spec.interrupting {
            if let Some(next) = &spec.next {
                self.withdraw(token, &format!("timer {} interrupted the task", spec.id));
                self.clear_waits(token);
                self.move_to(token, next);
            }
            return;
        }
        let open: Vec<usize> = (0..self.instance.tasks.len())
            .filter(|&i| self.instance.tasks[i].token == token)
            .collect();
        match &spec.action {
            Some(TimerAction::Remind) => {
                for i in open {
                    self.effects.push(Effect::TaskReminded {
                        task: self.instance.tasks[i].clone(),
                        timer: spec.id.clone(),
                    });
                }
            }
            Some(TimerAction::Escalate { to }) => match self.resolve(to) {
                Ok((user, candidates)) => {
                    for i in open {
                        let task = &mut self.instance.tasks[i];
                        let added = user.iter().chain(&candidates.users);
                        for u in added {
                            if !task.candidates.users.contains(u) && !task.forbidden.contains(u) {
                                task.candidates.users.push(u.clone());
                            }
                        }
                        for r in &candidates.roles {
                            if !task.candidates.roles.contains(r) {
                                task.candidates.roles.push(r.clone());
                            }
                        }
                        // An escalated task is open to its new candidates too.
                        if let Some(assignee) = task.assignee.take()
                            && !task.candidates.users.contains(&assignee)
                        {
                            task.candidates.users.push(assignee);
                        }
                        self.effects.push(Effect::TaskEscalated {
                            task: task.clone(),
                            timer: spec.id.clone(),
                        });
                    }
                }
                Err(reason) => self.incident(token, reason),
            },
            None => {}
        }
    }

    fn send_command(&mut self, token: u32, spec: &ServiceTask) {
        let mut input = serde_json::Map::new();
        for (name, source) in &spec.input {
            match expr::eval(self.compiled, source, &self.scope(&[])) {
                Ok(value) => {
                    input.insert(name.clone(), expr::to_json(&value));
                }
                Err(error) => return self.incident(token, error.to_string()),
            }
        }
        let instance = self.instance.id;
        let Some(t) = self.token_mut(token) else {
            return;
        };
        t.attempt += 1;
        let attempt = t.attempt;
        let correlation_id = format!("{instance}:{token}:{attempt}");
        t.correlation = Some(correlation_id.clone());
        self.effects.push(Effect::Command {
            node: spec.id.clone(),
            command: spec.command.clone(),
            correlation_id,
            input: Json::Object(input),
            attempt,
        });
        self.instance
            .timers
            .retain(|t| !(t.token == token && t.kind == TimerKind::ReplyTimeout));
        self.schedule(token, TimerKind::ReplyTimeout, &spec.retry.timeout);
    }

    /// A service task's attempt failed: try again after the backoff, or raise an incident.
    fn attempt_failed(&mut self, token: u32, reason: &str) {
        let compiled = self.compiled;
        let Some((node, attempt)) = self.token(token).map(|t| (t.node.clone(), t.attempt)) else {
            return;
        };
        let Some(Node::ServiceTask(spec)) = compiled.node(&node) else {
            return;
        };
        self.instance
            .timers
            .retain(|t| !(t.token == token && t.kind == TimerKind::ReplyTimeout));
        if let Some(t) = self.token_mut(token) {
            t.correlation = None;
        }
        if attempt >= spec.retry.attempts {
            return self.incident(
                token,
                format!("{} failed after {attempt} attempts: {reason}", spec.command),
            );
        }
        let backoff =
            duration::parse(&spec.retry.backoff).unwrap_or_else(|_| chrono::Duration::seconds(10));
        let factor = 1_i32 << attempt.saturating_sub(1).min(16);
        let id = self.next_id();
        self.instance.timers.push(Timer {
            id,
            token,
            kind: TimerKind::Retry,
            due_at: self.now + backoff * factor,
        });
    }
}

/// A multi-instance task's result: the count of each outcome, `completed`, `total`, and the
/// decisions.
fn multi_result(spec: &UserTask, multi: &Multi) -> serde_json::Map<String, Json> {
    let mut result = serde_json::Map::new();
    for outcome in &spec.outcomes {
        let count = multi.decisions.iter().filter(|(_, o)| o == outcome).count();
        result.insert(outcome.clone(), json!(count));
    }
    result.insert("completed".to_owned(), json!(multi.decisions.len()));
    result.insert("total".to_owned(), json!(multi.items.len()));
    result.insert(
        "decisions".to_owned(),
        Json::Array(
            multi
                .decisions
                .iter()
                .enumerate()
                .map(|(i, (by, outcome))| {
                    let comment = multi.comments.get(i).cloned().flatten();
                    json!({ "by": by, "outcome": outcome, "comment": comment })
                })
                .collect(),
        ),
    );
    result
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
