//! Durable instances: every step is one transaction that locks the instance, runs the
//! interpreter, and writes the new state with everything the step caused: task rows and their
//! candidates, quorum decisions, timers, subscriptions, history, the audit row, and the outbox
//! rows of events and commands. A child instance started by a call activity, and the parent a
//! finished child resumes, are written in the same transaction.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use meridian_chassis::audit;
use meridian_chassis::bus::Envelope;
use meridian_chassis::db::AnyConnection;
use meridian_chassis::outbox;
use meridian_chassis::per_backend;
use meridian_proto::Message;
use meridian_proto::common::v1::Timestamp;
use meridian_proto::workflow::v1 as pb;
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::definitions::Registry;
use super::schema::{
    wf_decisions, wf_history, wf_inbox, wf_instances, wf_subscriptions, wf_task_candidates,
    wf_tasks, wf_timers,
};
use crate::definition::Compiled;
use crate::engine::{
    self, Directory, Effect, EngineError, Instance, MapDirectory, Start, Status, Task,
};

/// Where events come from.
pub const SOURCE: &str = "/meridian/workflow";

/// Who acts in a step, when, and the compiled definitions.
#[derive(Clone, Copy)]
pub struct StepContext<'a> {
    /// The user (or `system:<part>`).
    pub actor: &'a str,
    /// When.
    pub now: DateTime<Utc>,
    /// The request's trace id or the message's correlation id.
    pub correlation_id: Option<&'a str>,
    /// Compiled definitions.
    pub registry: &'a Registry,
}

/// Why a step did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// No such instance.
    #[error("no such instance")]
    NotFound,
    /// The interpreter refused.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    /// No connection.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

impl meridian_chassis::batch::Transient for StepError {
    fn transient(&self) -> bool {
        matches!(self, Self::Db(error) if meridian_chassis::db::contention(error))
    }
}

impl From<meridian_chassis::db::DbError> for StepError {
    fn from(error: meridian_chassis::db::DbError) -> Self {
        match error {
            meridian_chassis::db::DbError::Query(error) => Self::Db(error),
            meridian_chassis::db::DbError::Unavailable(reason) => Self::Unavailable(reason),
        }
    }
}

impl From<StepError> for meridian_chassis::db::DbError {
    fn from(error: StepError) -> Self {
        match error {
            StepError::Db(error) => Self::Query(error),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// The query columns of an instance.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = wf_instances)]
pub struct InstanceRow {
    /// Id.
    pub id: String,
    /// Definition id.
    pub definition: String,
    /// Version.
    pub version: String,
    /// Business key.
    pub business_key: String,
    /// Initiator.
    pub initiator: String,
    /// Status.
    pub status: String,
    /// Outcome.
    pub outcome: Option<String>,
    /// A stuck token's reason.
    pub incident: Option<String>,
    /// The calling instance.
    pub parent_id: Option<String>,
    /// The state, JSON.
    pub state: String,
    /// Started.
    pub started_at: NaiveDateTime,
    /// Last step.
    pub updated_at: NaiveDateTime,
    /// Ended.
    pub ended_at: Option<NaiveDateTime>,
}

fn corrupt(id: &str, what: &str) -> diesel::result::Error {
    diesel::result::Error::DeserializationError(format!("instance {id}: {what}").into())
}

impl InstanceRow {
    /// The interpreter's state.
    ///
    /// # Errors
    /// A state that does not parse.
    pub fn instance(&self) -> QueryResult<Instance> {
        serde_json::from_str(&self.state).map_err(|e| corrupt(&self.id, &e.to_string()))
    }
}

/// Loads an instance row (locked until the transaction ends on PostgreSQL; SQLite has one
/// writer).
///
/// # Errors
/// A query failing.
pub fn load_for_update(conn: &mut AnyConnection, id: Uuid) -> QueryResult<Option<InstanceRow>> {
    let key = id.to_string();
    match conn {
        AnyConnection::Postgresql(pg) => wf_instances::table
            .find(key)
            .select(InstanceRow::as_select())
            .for_update()
            .first(pg)
            .optional(),
        AnyConnection::Sqlite(sqlite) => wf_instances::table
            .find(key)
            .select(InstanceRow::as_select())
            .first(sqlite)
            .optional(),
    }
}

/// Loads an instance row.
///
/// # Errors
/// A query failing.
pub fn find(conn: &mut AnyConnection, id: Uuid) -> QueryResult<Option<InstanceRow>> {
    wf_instances::table
        .find(id.to_string())
        .select(InstanceRow::as_select())
        .first(conn)
        .optional()
}

/// What a task list shows of each of `ids`' instances, in one query: id → (definition,
/// business key), without the interpreter state.
///
/// # Errors
/// A query failing.
pub fn keys_of(
    conn: &mut AnyConnection,
    ids: &[String],
) -> QueryResult<std::collections::HashMap<String, (String, String)>> {
    let rows: Vec<(String, String, String)> = wf_instances::table
        .filter(wf_instances::id.eq_any(ids))
        .select((
            wf_instances::id,
            wf_instances::definition,
            wf_instances::business_key,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, definition, key)| (id, (definition, key)))
        .collect())
}

/// Starts an instance of `compiled` and stores it with what its first step caused.
///
/// # Errors
/// Bad variables ([`StepError::Engine`]) or a query failing.
pub fn start(
    conn: &mut AnyConnection,
    ctx: StepContext<'_>,
    compiled: &Compiled,
    request: Start,
    parent: Option<Uuid>,
) -> Result<Instance, StepError> {
    let mut writes = Writes::default();
    let instance = start_into(conn, ctx, compiled, request, parent, &mut writes)?;
    writes.flush(conn)?;
    Ok(instance)
}

/// Runs one step on a stored instance: `op` gets the definition and the state.
///
/// # Errors
/// No such instance, the interpreter refusing, or a query failing.
pub fn step(
    conn: &mut AnyConnection,
    ctx: StepContext<'_>,
    id: Uuid,
    op: impl FnOnce(&Compiled, &mut Instance, &dyn Directory) -> Result<Vec<Effect>, EngineError>,
) -> Result<Instance, StepError> {
    let mut writes = Writes::default();
    let instance = step_into(conn, ctx, id, op, &mut writes)?;
    writes.flush(conn)?;
    Ok(instance)
}

/// As [`start`], into `writes` (flushed by the caller, in the same transaction).
///
/// # Errors
/// As [`start`].
pub fn start_into(
    conn: &mut AnyConnection,
    ctx: StepContext<'_>,
    compiled: &Compiled,
    request: Start,
    parent: Option<Uuid>,
    writes: &mut Writes,
) -> Result<Instance, StepError> {
    let directory = ci_directory(conn, compiled, &request.variables)?;
    let (mut instance, effects) = engine::start(compiled, request, ctx.now, &directory)?;
    writes.states.insert(
        instance.id,
        Entry {
            stored: None,
            current: instance.clone(),
            parent,
        },
    );
    record(conn, ctx, compiled, None, &mut instance, effects, writes)?;
    Ok(instance)
}

/// As [`step`], into `writes` (flushed by the caller, in the same transaction). Several steps
/// on one instance in one `writes` see each other's state.
///
/// # Errors
/// As [`step`].
pub fn step_into(
    conn: &mut AnyConnection,
    ctx: StepContext<'_>,
    id: Uuid,
    op: impl FnOnce(&Compiled, &mut Instance, &dyn Directory) -> Result<Vec<Effect>, EngineError>,
    writes: &mut Writes,
) -> Result<Instance, StepError> {
    let (definition, version) = match writes.states.get(&id) {
        Some(entry) => (
            entry.current.definition.clone(),
            entry.current.version.clone(),
        ),
        None => {
            let row = load_for_update(conn, id)?.ok_or(StepError::NotFound)?;
            let instance = row.instance()?;
            let parent = row
                .parent_id
                .as_deref()
                .and_then(|p| Uuid::parse_str(p).ok());
            writes.states.insert(
                id,
                Entry {
                    stored: Some(instance.clone()),
                    current: instance,
                    parent,
                },
            );
            (row.definition, row.version)
        }
    };
    let compiled = ctx.registry.get(conn, &definition, &version)?;
    let before = writes
        .states
        .get(&id)
        .map(|e| e.current.clone())
        .ok_or(StepError::NotFound)?;
    let mut instance = before.clone();
    let directory = ci_directory(conn, &compiled, &instance.variables)?;
    let effects = op(&compiled, &mut instance, &directory)?;
    record(
        conn,
        ctx,
        &compiled,
        Some(&before),
        &mut instance,
        effects,
        writes,
    )?;
    Ok(instance)
}

/// The owners of the CIs the definition's `ci_owner` rules name in these variables (no query
/// when it has no such rule).
fn ci_directory(
    conn: &mut AnyConnection,
    compiled: &Compiled,
    variables: &serde_json::Map<String, Json>,
) -> QueryResult<MapDirectory> {
    let cis: Vec<String> = engine::ci_owner_variables(compiled)
        .into_iter()
        .filter_map(|name| {
            variables
                .get(name)
                .and_then(Json::as_str)
                .map(str::to_owned)
        })
        .collect();
    Ok(MapDirectory {
        ci_owners: super::ci_owners::owners(conn, &cis)?,
    })
}

fn naive(at: DateTime<Utc>) -> NaiveDateTime {
    at.naive_utc()
}

fn timestamp(at: DateTime<Utc>) -> Option<Timestamp> {
    Some(Timestamp {
        unix_micros: at.timestamp_micros(),
    })
}

/// An instance touched in this transaction: as stored, and as it is now.
#[derive(Debug)]
struct Entry {
    stored: Option<Instance>,
    current: Instance,
    parent: Option<Uuid>,
}

/// A task row as it will be written (inserted or updated whole).
#[derive(Debug, Clone)]
struct TaskWrite {
    instance_id: String,
    task: Task,
    name: String,
    state: &'static str,
    created_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    completed_by: Option<String>,
    outcome: Option<String>,
    comment: Option<String>,
    fields: Option<String>,
}

/// A history row: id, instance, at, actor, kind, node, details.
type HistoryWrite = (
    String,
    String,
    NaiveDateTime,
    String,
    &'static str,
    Option<String>,
    String,
);

/// An audit row: actor, action, instance, after, before, at.
type AuditWrite = (String, String, String, Json, Option<Json>, DateTime<Utc>);

/// Everything the steps of one transaction write, flushed with one statement per table.
#[derive(Debug, Default)]
pub struct Writes {
    states: std::collections::HashMap<Uuid, Entry>,
    order: Vec<Uuid>,
    updated_at: Option<DateTime<Utc>>,
    tasks: Vec<TaskWrite>,
    candidates: Vec<(String, &'static str, String)>,
    decisions: Vec<(String, String, i32, String, String)>,
    history: Vec<HistoryWrite>,
    audits: Vec<AuditWrite>,
    envelopes: Vec<Envelope>,
}

/// Records the instance's new state and what `effects` cause, to be written by
/// [`Writes::flush`].
#[expect(clippy::too_many_lines, reason = "one arm per effect, in one place")]
fn record(
    conn: &mut AnyConnection,
    ctx: StepContext<'_>,
    compiled: &Compiled,
    before: Option<&Instance>,
    instance: &mut Instance,
    mut effects: Vec<Effect>,
    writes: &mut Writes,
) -> Result<(), StepError> {
    // Children first: starting one changes the parent's state (the token waits for it).
    let mut started_children = Vec::new();
    for effect in effects.clone() {
        let Effect::StartChild {
            token,
            definition,
            variables,
        } = effect
        else {
            continue;
        };
        let failure = match ctx.registry.newest(conn, &definition)? {
            None => Some(format!("no definition `{definition}` is deployed")),
            Some(called) => {
                let request = Start {
                    id: Uuid::now_v7(),
                    business_key: instance.business_key.clone(),
                    initiator: instance.initiator.clone(),
                    variables,
                };
                let child_id = request.id;
                let directory = ci_directory(conn, &called, &request.variables)?;
                match engine::start(&called, request, ctx.now, &directory) {
                    Ok((child, child_effects)) => {
                        engine::child_started(instance, token, child_id);
                        started_children.push((called, child, child_effects));
                        None
                    }
                    Err(error) => Some(error.to_string()),
                }
            }
        };
        if let Some(reason) = failure
            && let Some(t) = instance.tokens.iter_mut().find(|t| t.id == token)
        {
            let node = t.node.clone();
            t.incident = Some(reason.clone());
            effects.push(Effect::Incident { node, reason });
        }
    }
    if let Some(entry) = writes.states.get_mut(&instance.id) {
        entry.current = instance.clone();
    }
    if !writes.order.contains(&instance.id) {
        writes.order.push(instance.id);
    }
    writes.updated_at = Some(ctx.now);

    let id = instance.id.to_string();
    let envelope = |event_type: &str, payload: Vec<u8>| Envelope {
        id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        source: SOURCE.to_owned(),
        subject: instance.id.to_string(),
        time: ctx.now,
        correlation_id: ctx.correlation_id.map(str::to_owned),
        causation_id: None,
        actor: Some(ctx.actor.to_owned()),
        payload,
    };
    let name_of = |node: &str| {
        compiled
            .node(node)
            .map_or_else(|| node.to_owned(), |n| n.name().to_owned())
    };
    let outcomes_of = |node: &str| match compiled.node(node) {
        Some(crate::definition::Node::UserTask(spec)) => spec.outcomes.clone(),
        _ => Vec::new(),
    };
    // What the approver decides on, as the task's `summary` evaluates now; an expression
    // that fails leaves the summary empty (the notification still goes out).
    let summary_of = |node: &str| match compiled.node(node) {
        Some(crate::definition::Node::UserTask(spec)) => spec
            .summary
            .as_ref()
            .and_then(|source| {
                let scope = crate::engine::expr::Scope {
                    variables: &instance.variables,
                    extra: &[],
                };
                crate::engine::expr::eval(compiled, source, &scope).ok()
            })
            .map(|value| crate::engine::expr::to_json(&value).to_string())
            .unwrap_or_default(),
        _ => String::new(),
    };
    let form_of = |node: &str| match compiled.node(node) {
        Some(crate::definition::Node::UserTask(spec)) if !spec.form.is_empty() => {
            serde_json::to_string(&spec.form).unwrap_or_default()
        }
        _ => String::new(),
    };
    let task_write = |task: &Task, state: &'static str| TaskWrite {
        instance_id: id.clone(),
        task: task.clone(),
        name: name_of(&task.node),
        state,
        created_at: task.created_at,
        ended_at: (state != "open").then_some(ctx.now),
        completed_by: None,
        outcome: None,
        comment: None,
        fields: None,
    };
    for effect in &effects {
        let (kind, node, details) = match effect {
            Effect::Started => {
                writes.envelopes.push(envelope(
                    "workflow.instance.started",
                    pb::InstanceStarted {
                        instance_id: id.clone(),
                        definition: instance.definition.clone(),
                        version: instance.version.clone(),
                        business_key: instance.business_key.clone(),
                        initiator: instance.initiator.clone(),
                    }
                    .encode_to_vec(),
                ));
                ("started", None, json!({"version": instance.version}))
            }
            Effect::Completed { outcome } => {
                writes.envelopes.push(envelope(
                    "workflow.instance.completed",
                    pb::InstanceCompleted {
                        instance_id: id.clone(),
                        definition: instance.definition.clone(),
                        business_key: instance.business_key.clone(),
                        outcome: outcome.clone().unwrap_or_default(),
                        variables_json: Json::Object(instance.variables.clone()).to_string(),
                    }
                    .encode_to_vec(),
                ));
                ("completed", None, json!({"outcome": outcome}))
            }
            Effect::Cancelled { by, reason } => {
                writes.envelopes.push(envelope(
                    "workflow.instance.cancelled",
                    pb::InstanceCancelled {
                        instance_id: id.clone(),
                        definition: instance.definition.clone(),
                        business_key: instance.business_key.clone(),
                        cancelled_by: by.clone(),
                        reason: reason.clone(),
                    }
                    .encode_to_vec(),
                ));
                ("cancelled", None, json!({"reason": reason}))
            }
            Effect::Entered { node } => ("entered", Some(node.clone()), json!({})),
            Effect::TaskCreated(task) => {
                writes.tasks.push(task_write(task, "open"));
                add_candidates(writes, task);
                writes.envelopes.push(envelope(
                    "workflow.task.created",
                    pb::TaskCreated {
                        task_id: task.id.to_string(),
                        instance_id: id.clone(),
                        definition: instance.definition.clone(),
                        business_key: instance.business_key.clone(),
                        node: task.node.clone(),
                        name: name_of(&task.node),
                        assignee: task.assignee.clone().unwrap_or_default(),
                        candidate_users: task.candidates.users.clone(),
                        candidate_roles: task.candidates.roles.clone(),
                        due_at: task.due_at.and_then(timestamp),
                        outcomes: outcomes_of(&task.node),
                        summary_json: summary_of(&task.node),
                        initiator: instance.initiator.clone(),
                        form_json: form_of(&task.node),
                    }
                    .encode_to_vec(),
                ));
                (
                    "task_created",
                    Some(task.node.clone()),
                    json!({"task": task.id, "assignee": task.assignee, "candidates": task.candidates}),
                )
            }
            Effect::TaskCompleted {
                task,
                by,
                outcome,
                comment,
                fields,
            } => {
                writes.tasks.push(TaskWrite {
                    completed_by: Some(by.clone()),
                    outcome: Some(outcome.clone()),
                    comment: comment.clone(),
                    fields: Some(Json::Object(fields.clone()).to_string()),
                    ..task_write(task, "completed")
                });
                let round = before
                    .and_then(|b| b.tokens.iter().find(|t| t.id == task.token))
                    .and_then(|t| t.multi.as_ref())
                    .map(|m| m.round);
                if let Some(round) = round {
                    // The database, too, counts one person once per round.
                    writes.decisions.push((
                        id.clone(),
                        task.node.clone(),
                        i32::try_from(round).unwrap_or(i32::MAX),
                        by.clone(),
                        task.id.to_string(),
                    ));
                }
                writes.envelopes.push(envelope(
                    "workflow.task.completed",
                    pb::TaskCompleted {
                        task_id: task.id.to_string(),
                        instance_id: id.clone(),
                        node: task.node.clone(),
                        completed_by: by.clone(),
                        outcome: outcome.clone(),
                        comment: comment.clone().unwrap_or_default(),
                        business_key: instance.business_key.clone(),
                        definition: instance.definition.clone(),
                        fields_json: Json::Object(fields.clone()).to_string(),
                    }
                    .encode_to_vec(),
                ));
                (
                    "task_completed",
                    Some(task.node.clone()),
                    json!({"task": task.id, "by": by, "outcome": outcome, "comment": comment, "fields": fields}),
                )
            }
            Effect::TaskWithdrawn { task, reason } => {
                writes.tasks.push(task_write(task, "withdrawn"));
                (
                    "task_withdrawn",
                    Some(task.node.clone()),
                    json!({"task": task.id, "reason": reason}),
                )
            }
            Effect::TaskAssigned { task, by } => {
                writes.tasks.push(task_write(task, "open"));
                (
                    "task_assigned",
                    Some(task.node.clone()),
                    json!({"task": task.id, "assignee": task.assignee, "by": by}),
                )
            }
            Effect::TaskEscalated { task, timer } => {
                writes.tasks.push(task_write(task, "open"));
                add_candidates(writes, task);
                writes.envelopes.push(envelope(
                    "workflow.task.escalated",
                    pb::TaskEscalated {
                        task_id: task.id.to_string(),
                        instance_id: id.clone(),
                        node: task.node.clone(),
                        timer: timer.clone(),
                        candidate_users: task.candidates.users.clone(),
                        candidate_roles: task.candidates.roles.clone(),
                    }
                    .encode_to_vec(),
                ));
                (
                    "task_escalated",
                    Some(task.node.clone()),
                    json!({"task": task.id, "timer": timer, "candidates": task.candidates}),
                )
            }
            Effect::TaskReminded { task, timer } => {
                writes.envelopes.push(envelope(
                    "workflow.task.reminded",
                    pb::TaskReminded {
                        task_id: task.id.to_string(),
                        instance_id: id.clone(),
                        node: task.node.clone(),
                        timer: timer.clone(),
                        assignee: task.assignee.clone().unwrap_or_default(),
                        candidate_users: task.candidates.users.clone(),
                        candidate_roles: task.candidates.roles.clone(),
                    }
                    .encode_to_vec(),
                ));
                (
                    "task_reminded",
                    Some(task.node.clone()),
                    json!({"task": task.id, "timer": timer}),
                )
            }
            Effect::Command {
                node,
                command,
                correlation_id,
                input,
                attempt,
            } => {
                let mut message = envelope(
                    command,
                    pb::Command {
                        correlation_id: correlation_id.clone(),
                        command: command.clone(),
                        instance_id: id.clone(),
                        business_key: instance.business_key.clone(),
                        input_json: input.to_string(),
                        attempt: *attempt,
                    }
                    .encode_to_vec(),
                );
                message.subject.clone_from(&instance.business_key);
                message.correlation_id = Some(correlation_id.clone());
                writes.envelopes.push(message);
                (
                    "command_sent",
                    Some(node.clone()),
                    json!({"command": command, "correlation_id": correlation_id, "attempt": attempt, "input": input}),
                )
            }
            Effect::StartChild {
                token, definition, ..
            } => {
                let child = instance
                    .tokens
                    .iter()
                    .find(|t| t.id == *token)
                    .and_then(|t| t.child);
                (
                    "child_started",
                    None,
                    json!({"definition": definition, "child": child}),
                )
            }
            Effect::Incident { node, reason } => {
                ("incident", Some(node.clone()), json!({"reason": reason}))
            }
            Effect::Retried { node, by } => ("retried", Some(node.clone()), json!({"by": by})),
        };
        writes.history.push((
            Uuid::now_v7().to_string(),
            id.clone(),
            naive(ctx.now),
            ctx.actor.to_owned(),
            kind,
            node,
            details.to_string(),
        ));
    }
    let action = effects
        .iter()
        .find_map(|e| match e {
            Effect::Started => Some("started"),
            Effect::TaskCompleted { .. } => Some("task_completed"),
            Effect::TaskAssigned { .. } => Some("task_assigned"),
            Effect::Cancelled { .. } => Some("cancelled"),
            Effect::Retried { .. } => Some("retried"),
            _ => None,
        })
        .unwrap_or("stepped");
    let summary = |i: &Instance| json!({"status": i.status, "outcome": i.outcome, "tokens": i.tokens.iter().map(|t| &t.node).collect::<Vec<_>>()});
    writes.audits.push((
        ctx.actor.to_owned(),
        format!("workflow.{action}"),
        id.clone(),
        summary(instance),
        before.map(summary),
        ctx.now,
    ));

    // Children are recorded after the parent: one that ends at once resumes it.
    for (called, mut child, child_effects) in started_children {
        writes.states.insert(
            child.id,
            Entry {
                stored: None,
                current: child.clone(),
                parent: Some(instance.id),
            },
        );
        record(conn, ctx, &called, None, &mut child, child_effects, writes)?;
    }
    // A finished child resumes its parent, in this same transaction.
    let finished = effects.iter().find_map(|e| match e {
        Effect::Completed { outcome } => Some(outcome.clone()),
        _ => None,
    });
    let parent = writes.states.get(&instance.id).and_then(|e| e.parent);
    if let Some(outcome) = finished
        && let Some(parent) = parent
    {
        let variables = instance.variables.clone();
        let child = instance.id;
        let resumed = step_into(
            conn,
            ctx,
            parent,
            |compiled, parent, directory| {
                engine::child_completed(
                    compiled, parent, child, outcome, variables, ctx.now, directory,
                )
            },
            writes,
        );
        match resumed {
            Ok(_) => {}
            // A parent that no longer waits (cancelled meanwhile) does not undo the child.
            Err(StepError::NotFound | StepError::Engine(_)) => {
                tracing::info!(%child, %parent, "the parent of a finished child no longer waits for it");
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

fn add_candidates(writes: &mut Writes, task: &Task) {
    let id = task.id.to_string();
    for user in &task.candidates.users {
        writes.candidates.push((id.clone(), "user", user.clone()));
    }
    for role in &task.candidates.roles {
        writes.candidates.push((id.clone(), "role", role.clone()));
    }
}

fn subscriptions(instance: &Instance) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = instance
        .tokens
        .iter()
        .flat_map(|t| t.awaiting.iter().flatten())
        .map(|(event, subject, _)| (event.clone(), subject.clone()))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn corrupt_state(id: Uuid, error: &serde_json::Error) -> diesel::result::Error {
    corrupt(&id.to_string(), &error.to_string())
}

impl Writes {
    /// Writes everything recorded: one statement per table (and per kind of change).
    ///
    /// # Errors
    /// A query failing (the caller's transaction then rolls back).
    #[expect(clippy::too_many_lines, reason = "one statement per table, in order")]
    pub fn flush(self, conn: &mut AnyConnection) -> QueryResult<()> {
        let now = self.updated_at.map(naive);
        let Some(now) = now else {
            return Ok(());
        };
        // Instances: new ones inserted, the others updated.
        let mut inserts = Vec::new();
        let mut timer_deletes: Vec<(String, i32)> = Vec::new();
        let mut timer_inserts = Vec::new();
        let mut subscription_resets: Vec<String> = Vec::new();
        let mut subscription_rows = Vec::new();
        for id in &self.order {
            let Some(entry) = self.states.get(id) else {
                continue;
            };
            let instance = &entry.current;
            let key = id.to_string();
            let state = serde_json::to_string(instance).map_err(|e| corrupt_state(*id, &e))?;
            let incident = instance.tokens.iter().find_map(|t| t.incident.clone());
            let ended = (instance.status != Status::Running).then_some(now);
            // One upsert for all: a new instance is inserted whole; a known one gets its state.
            inserts.push((
                wf_instances::id.eq(key.clone()),
                wf_instances::definition.eq(instance.definition.clone()),
                wf_instances::version.eq(instance.version.clone()),
                wf_instances::business_key.eq(instance.business_key.clone()),
                wf_instances::initiator.eq(instance.initiator.clone()),
                wf_instances::status.eq(instance.status.as_str()),
                wf_instances::outcome.eq(instance.outcome.clone()),
                wf_instances::incident.eq(incident),
                wf_instances::parent_id.eq(entry.parent.map(|p| p.to_string())),
                wf_instances::state.eq(state),
                wf_instances::started_at.eq(now),
                wf_instances::updated_at.eq(now),
                wf_instances::ended_at.eq(ended),
            ));
            let stored_timers = entry
                .stored
                .as_ref()
                .map_or(&[][..], |s| s.timers.as_slice());
            for timer in stored_timers {
                if !instance.timers.contains(timer) {
                    timer_deletes.push((key.clone(), i32::try_from(timer.id).unwrap_or(i32::MAX)));
                }
            }
            for timer in &instance.timers {
                if !stored_timers.contains(timer) {
                    timer_inserts.push((
                        wf_timers::instance_id.eq(key.clone()),
                        wf_timers::timer_id.eq(i32::try_from(timer.id).unwrap_or(i32::MAX)),
                        wf_timers::due_at.eq(naive(timer.due_at)),
                    ));
                }
            }
            let old = entry.stored.as_ref().map(subscriptions).unwrap_or_default();
            let new = subscriptions(instance);
            if old != new {
                if !old.is_empty() {
                    subscription_resets.push(key.clone());
                }
                for (event, subject) in new {
                    subscription_rows.push((
                        wf_subscriptions::instance_id.eq(key.clone()),
                        wf_subscriptions::event_type.eq(event),
                        wf_subscriptions::subject.eq(subject),
                    ));
                }
            }
        }
        if !inserts.is_empty() {
            use diesel::upsert::excluded;
            per_backend!(conn, c => diesel::insert_into(wf_instances::table)
                .values(&inserts)
                .on_conflict(wf_instances::id)
                .do_update()
                .set((
                    wf_instances::status.eq(excluded(wf_instances::status)),
                    wf_instances::outcome.eq(excluded(wf_instances::outcome)),
                    wf_instances::incident.eq(excluded(wf_instances::incident)),
                    wf_instances::state.eq(excluded(wf_instances::state)),
                    wf_instances::updated_at.eq(excluded(wf_instances::updated_at)),
                    wf_instances::ended_at.eq(excluded(wf_instances::ended_at)),
                ))
                .execute(c))?;
        }
        // Tasks: the last write of each wins; new ones inserted, the others updated.
        let mut tasks: Vec<TaskWrite> = Vec::new();
        for write in self.tasks {
            match tasks.iter_mut().find(|t| t.task.id == write.task.id) {
                Some(existing) => *existing = write,
                None => tasks.push(write),
            }
        }
        let task_rows: Vec<_> = tasks
            .iter()
            .map(|t| {
                (
                    wf_tasks::id.eq(t.task.id.to_string()),
                    wf_tasks::instance_id.eq(t.instance_id.clone()),
                    wf_tasks::node.eq(t.task.node.clone()),
                    wf_tasks::name.eq(t.name.clone()),
                    wf_tasks::state.eq(t.state),
                    wf_tasks::assignee.eq(t.task.assignee.clone()),
                    wf_tasks::forbidden.eq(Json::from(t.task.forbidden.clone()).to_string()),
                    wf_tasks::created_at.eq(naive(t.created_at)),
                    wf_tasks::due_at.eq(t.task.due_at.map(naive)),
                    wf_tasks::ended_at.eq(t.ended_at.map(naive)),
                    wf_tasks::completed_by.eq(t.completed_by.clone()),
                    wf_tasks::outcome.eq(t.outcome.clone()),
                    wf_tasks::comment.eq(t.comment.clone()),
                    wf_tasks::fields.eq(t.fields.clone()),
                )
            })
            .collect();
        if !task_rows.is_empty() {
            use diesel::upsert::excluded;
            per_backend!(conn, c => diesel::insert_into(wf_tasks::table)
                .values(&task_rows)
                .on_conflict(wf_tasks::id)
                .do_update()
                .set((
                    wf_tasks::state.eq(excluded(wf_tasks::state)),
                    wf_tasks::assignee.eq(excluded(wf_tasks::assignee)),
                    wf_tasks::ended_at.eq(excluded(wf_tasks::ended_at)),
                    wf_tasks::completed_by.eq(excluded(wf_tasks::completed_by)),
                    wf_tasks::outcome.eq(excluded(wf_tasks::outcome)),
                    wf_tasks::comment.eq(excluded(wf_tasks::comment)),
                    wf_tasks::fields.eq(excluded(wf_tasks::fields)),
                ))
                .execute(c))?;
        }
        // The inbox follows each written task: its candidates while it is open and unassigned,
        // nothing once it is claimed or closed.
        let (claimable, taken): (Vec<&TaskWrite>, Vec<&TaskWrite>) = tasks
            .iter()
            .partition(|t| t.state == "open" && t.task.assignee.is_none());
        let taken: Vec<String> = taken.iter().map(|t| t.task.id.to_string()).collect();
        if !taken.is_empty() {
            diesel::delete(wf_inbox::table.filter(wf_inbox::task_id.eq_any(&taken)))
                .execute(conn)?;
        }
        let inbox_rows: Vec<_> = claimable
            .iter()
            .flat_map(|t| {
                let id = t.task.id.to_string();
                let users = t.task.candidates.users.iter().map(|u| ("user", u));
                let roles = t.task.candidates.roles.iter().map(|r| ("role", r));
                users.chain(roles).map(move |(kind, name)| {
                    (
                        wf_inbox::kind.eq(kind),
                        wf_inbox::name.eq(name.clone()),
                        wf_inbox::task_id.eq(id.clone()),
                    )
                })
            })
            .collect();
        let mut candidates = self.candidates;
        candidates.sort();
        candidates.dedup();
        let candidate_rows: Vec<_> = candidates
            .into_iter()
            .map(|(task, kind, name)| {
                (
                    wf_task_candidates::task_id.eq(task),
                    wf_task_candidates::kind.eq(kind),
                    wf_task_candidates::name.eq(name),
                )
            })
            .collect();
        if !candidate_rows.is_empty() {
            per_backend!(conn, c => diesel::insert_into(wf_task_candidates::table)
                .values(&candidate_rows)
                .on_conflict_do_nothing()
                .execute(c))?;
        }
        if !inbox_rows.is_empty() {
            per_backend!(conn, c => diesel::insert_into(wf_inbox::table)
                .values(&inbox_rows)
                .on_conflict_do_nothing()
                .execute(c))?;
        }
        let decision_rows: Vec<_> = self
            .decisions
            .into_iter()
            .map(|(instance, node, round, by, task)| {
                (
                    wf_decisions::instance_id.eq(instance),
                    wf_decisions::node.eq(node),
                    wf_decisions::round.eq(round),
                    wf_decisions::decided_by.eq(by),
                    wf_decisions::task_id.eq(task),
                )
            })
            .collect();
        if !decision_rows.is_empty() {
            per_backend!(conn, c => diesel::insert_into(wf_decisions::table).values(&decision_rows).execute(c))?;
        }
        // One statement per instance whose timers went (ids are per instance).
        let mut by_instance: Vec<(String, Vec<i32>)> = Vec::new();
        for (instance, timer) in timer_deletes {
            match by_instance.iter_mut().find(|(i, _)| *i == instance) {
                Some((_, timers)) => timers.push(timer),
                None => by_instance.push((instance, vec![timer])),
            }
        }
        for (instance, timers) in by_instance {
            diesel::delete(
                wf_timers::table
                    .filter(wf_timers::instance_id.eq(instance))
                    .filter(wf_timers::timer_id.eq_any(timers)),
            )
            .execute(conn)?;
        }
        if !timer_inserts.is_empty() {
            per_backend!(conn, c => diesel::insert_into(wf_timers::table).values(&timer_inserts).execute(c))?;
        }
        if !subscription_resets.is_empty() {
            diesel::delete(
                wf_subscriptions::table
                    .filter(wf_subscriptions::instance_id.eq_any(subscription_resets)),
            )
            .execute(conn)?;
        }
        if !subscription_rows.is_empty() {
            per_backend!(conn, c => diesel::insert_into(wf_subscriptions::table).values(&subscription_rows).execute(c))?;
        }
        let history_rows: Vec<_> = self
            .history
            .into_iter()
            .map(|(id, instance, at, actor, kind, node, details)| {
                (
                    wf_history::id.eq(id),
                    wf_history::instance_id.eq(instance),
                    wf_history::at.eq(at),
                    wf_history::actor.eq(actor),
                    wf_history::kind.eq(kind),
                    wf_history::node.eq(node),
                    wf_history::details.eq(details),
                )
            })
            .collect();
        if !history_rows.is_empty() {
            per_backend!(conn, c => diesel::insert_into(wf_history::table).values(&history_rows).execute(c))?;
        }
        audit::record_all(
            conn,
            self.audits
                .iter()
                .map(|(actor, action, id, after, before, at)| audit::Entry {
                    actor,
                    action,
                    entity_type: "workflow_instance",
                    entity_id: id,
                    before: before.as_ref(),
                    after: Some(after),
                    at: *at,
                }),
        )?;
        outbox::enqueue_all(conn, &self.envelopes)
    }
}

/// The instances waiting for an event of this type about this subject.
///
/// # Errors
/// A query failing.
pub fn subscribed(
    conn: &mut AnyConnection,
    event_type: &str,
    subject: &str,
) -> QueryResult<Vec<Uuid>> {
    let ids: Vec<String> = wf_subscriptions::table
        .filter(wf_subscriptions::event_type.eq(event_type))
        .filter(wf_subscriptions::subject.eq(subject))
        .select(wf_subscriptions::instance_id)
        .distinct()
        .load(conn)?;
    Ok(ids
        .iter()
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect())
}

/// The running instances of `definition` (any version) about `business_key`.
///
/// # Errors
/// A query failing.
pub fn running_by_key(
    conn: &mut AnyConnection,
    definition: &str,
    business_key: &str,
) -> QueryResult<Vec<Uuid>> {
    let ids: Vec<String> = wf_instances::table
        .filter(wf_instances::definition.eq(definition))
        .filter(wf_instances::business_key.eq(business_key))
        .filter(wf_instances::status.eq("running"))
        .select(wf_instances::id)
        .load(conn)?;
    Ok(ids
        .iter()
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect())
}

/// One history entry.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = wf_history)]
pub struct HistoryRow {
    /// Id.
    pub id: String,
    /// Instance.
    pub instance_id: String,
    /// When.
    pub at: NaiveDateTime,
    /// Who.
    pub actor: String,
    /// What.
    pub kind: String,
    /// Where.
    pub node: Option<String>,
    /// Details, JSON.
    pub details: String,
}

/// An instance's history, oldest first.
///
/// # Errors
/// A query failing.
pub fn history(conn: &mut AnyConnection, id: Uuid) -> QueryResult<Vec<HistoryRow>> {
    wf_history::table
        .filter(wf_history::instance_id.eq(id.to_string()))
        .order(wf_history::id.asc())
        .select(HistoryRow::as_select())
        .load(conn)
}

/// Instances with a stuck token, oldest first.
///
/// # Errors
/// A query failing.
pub fn with_incidents(conn: &mut AnyConnection, limit: i64) -> QueryResult<Vec<InstanceRow>> {
    wf_instances::table
        .filter(wf_instances::incident.is_not_null())
        .filter(wf_instances::status.eq("running"))
        .order(wf_instances::updated_at.asc())
        .limit(limit)
        .select(InstanceRow::as_select())
        .load(conn)
}
