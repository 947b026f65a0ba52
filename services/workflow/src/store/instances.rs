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
    wf_decisions, wf_history, wf_instances, wf_subscriptions, wf_task_candidates, wf_tasks,
    wf_timers,
};
use crate::definition::Compiled;
use crate::engine::{self, Directory, Effect, EngineError, Instance, Start, Status, Task};

/// Where events come from.
pub const SOURCE: &str = "/meridian/workflow";

/// Who acts in a step, when, and the collaborators a step needs.
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
    /// People the definitions name indirectly.
    pub directory: &'a dyn Directory,
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
    let (mut instance, effects) = engine::start(compiled, request, ctx.now, ctx.directory)?;
    save(conn, ctx, compiled, None, &mut instance, effects, parent)?;
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
    let row = load_for_update(conn, id)?.ok_or(StepError::NotFound)?;
    let compiled = ctx.registry.get(conn, &row.definition, &row.version)?;
    let mut instance = row.instance()?;
    let before = instance.clone();
    let effects = op(&compiled, &mut instance, ctx.directory)?;
    save(
        conn,
        ctx,
        &compiled,
        Some(&before),
        &mut instance,
        effects,
        None,
    )?;
    Ok(instance)
}

fn naive(at: DateTime<Utc>) -> NaiveDateTime {
    at.naive_utc()
}

fn timestamp(at: DateTime<Utc>) -> Option<Timestamp> {
    Some(Timestamp {
        unix_micros: at.timestamp_micros(),
    })
}

/// Writes the instance and the consequences of `effects`.
#[expect(clippy::too_many_lines, reason = "one arm per effect, in one place")]
fn save(
    conn: &mut AnyConnection,
    ctx: StepContext<'_>,
    compiled: &Compiled,
    before: Option<&Instance>,
    instance: &mut Instance,
    mut effects: Vec<Effect>,
    parent: Option<Uuid>,
) -> Result<(), StepError> {
    // Children first: starting one changes the parent's state (the token waits for it).
    let mut children = Vec::new();
    for effect in &effects {
        if let Effect::StartChild {
            token,
            definition,
            variables,
        } = effect
        {
            children.push((*token, definition.clone(), variables.clone()));
        }
    }
    let mut child_incidents = Vec::new();
    let mut started_children = Vec::new();
    for (token, definition, variables) in children {
        match ctx.registry.newest(conn, &definition)? {
            None => {
                child_incidents.push((token, format!("no definition `{definition}` is deployed")))
            }
            Some(called) => {
                let request = Start {
                    id: Uuid::now_v7(),
                    business_key: instance.business_key.clone(),
                    initiator: instance.initiator.clone(),
                    variables,
                };
                let child_id = request.id;
                match engine::start(&called, request, ctx.now, ctx.directory) {
                    Ok((child, child_effects)) => {
                        engine::child_started(instance, token, child_id);
                        started_children.push((called, child, child_effects));
                    }
                    Err(error) => child_incidents.push((token, error.to_string())),
                }
            }
        }
    }
    for (token, reason) in child_incidents {
        if let Some(t) = instance.tokens.iter_mut().find(|t| t.id == token) {
            let node = t.node.clone();
            t.incident = Some(reason.clone());
            effects.push(Effect::Incident { node, reason });
        }
    }

    write_instance(conn, ctx, before.is_none(), instance, parent)?;

    let id = instance.id.to_string();
    let mut history = Vec::new();
    let mut envelopes = Vec::new();
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
    for effect in &effects {
        let (kind, node, details) = match effect {
            Effect::Started => {
                envelopes.push(envelope(
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
                envelopes.push(envelope(
                    "workflow.instance.completed",
                    pb::InstanceCompleted {
                        instance_id: id.clone(),
                        definition: instance.definition.clone(),
                        business_key: instance.business_key.clone(),
                        outcome: outcome.clone().unwrap_or_default(),
                    }
                    .encode_to_vec(),
                ));
                ("completed", None, json!({"outcome": outcome}))
            }
            Effect::Cancelled { by, reason } => {
                envelopes.push(envelope(
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
                insert_task(conn, &id, task, &name_of(&task.node), ctx.now)?;
                envelopes.push(envelope(
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
                diesel::update(wf_tasks::table.find(task.id.to_string()))
                    .set((
                        wf_tasks::state.eq("completed"),
                        wf_tasks::assignee.eq(&task.assignee),
                        wf_tasks::ended_at.eq(naive(ctx.now)),
                        wf_tasks::completed_by.eq(by),
                        wf_tasks::outcome.eq(outcome),
                        wf_tasks::comment.eq(comment),
                        wf_tasks::fields.eq(Json::Object(fields.clone()).to_string()),
                    ))
                    .execute(conn)?;
                let round = before
                    .and_then(|b| b.tokens.iter().find(|t| t.id == task.token))
                    .and_then(|t| t.multi.as_ref())
                    .map(|m| m.round);
                if let Some(round) = round {
                    // The database, too, counts one person once per round.
                    diesel::insert_into(wf_decisions::table)
                        .values((
                            wf_decisions::instance_id.eq(&id),
                            wf_decisions::node.eq(&task.node),
                            wf_decisions::round.eq(i32::try_from(round).unwrap_or(i32::MAX)),
                            wf_decisions::decided_by.eq(by),
                            wf_decisions::task_id.eq(task.id.to_string()),
                        ))
                        .execute(conn)?;
                }
                envelopes.push(envelope(
                    "workflow.task.completed",
                    pb::TaskCompleted {
                        task_id: task.id.to_string(),
                        instance_id: id.clone(),
                        node: task.node.clone(),
                        completed_by: by.clone(),
                        outcome: outcome.clone(),
                        comment: comment.clone().unwrap_or_default(),
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
                diesel::update(wf_tasks::table.find(task.id.to_string()))
                    .set((
                        wf_tasks::state.eq("withdrawn"),
                        wf_tasks::ended_at.eq(naive(ctx.now)),
                    ))
                    .execute(conn)?;
                (
                    "task_withdrawn",
                    Some(task.node.clone()),
                    json!({"task": task.id, "reason": reason}),
                )
            }
            Effect::TaskAssigned { task, by } => {
                diesel::update(wf_tasks::table.find(task.id.to_string()))
                    .set(wf_tasks::assignee.eq(&task.assignee))
                    .execute(conn)?;
                (
                    "task_assigned",
                    Some(task.node.clone()),
                    json!({"task": task.id, "assignee": task.assignee, "by": by}),
                )
            }
            Effect::TaskEscalated { task, timer } => {
                diesel::update(wf_tasks::table.find(task.id.to_string()))
                    .set(wf_tasks::assignee.eq(&task.assignee))
                    .execute(conn)?;
                insert_candidates(conn, task)?;
                envelopes.push(envelope(
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
                envelopes.push(envelope(
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
                envelopes.push(message);
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
        history.push((
            wf_history::id.eq(Uuid::now_v7().to_string()),
            wf_history::instance_id.eq(id.clone()),
            wf_history::at.eq(naive(ctx.now)),
            wf_history::actor.eq(ctx.actor.to_owned()),
            wf_history::kind.eq(kind),
            wf_history::node.eq(node),
            wf_history::details.eq(details.to_string()),
        ));
    }
    if !history.is_empty() {
        per_backend!(conn, c => diesel::insert_into(wf_history::table).values(&history).execute(c))?;
    }
    sync_timers(conn, before, instance)?;
    sync_subscriptions(conn, before, instance)?;
    let action = format!(
        "workflow.{}",
        effects
            .iter()
            .find_map(|e| match e {
                Effect::Started => Some("started"),
                Effect::TaskCompleted { .. } => Some("task_completed"),
                Effect::TaskAssigned { .. } => Some("task_assigned"),
                Effect::Cancelled { .. } => Some("cancelled"),
                Effect::Retried { .. } => Some("retried"),
                _ => None,
            })
            .unwrap_or("stepped")
    );
    let summary = |i: &Instance| json!({"status": i.status, "outcome": i.outcome, "tokens": i.tokens.iter().map(|t| &t.node).collect::<Vec<_>>()});
    audit::record(
        conn,
        audit::Entry {
            actor: ctx.actor,
            action: &action,
            entity_type: "workflow_instance",
            entity_id: &id,
            before: before.map(summary).as_ref(),
            after: Some(&summary(instance)),
            at: ctx.now,
        },
    )?;
    outbox::enqueue_all(conn, &envelopes)?;

    // Children are stored once the parent is: one that ends at once resumes a stored parent.
    for (called, mut child, child_effects) in started_children {
        save(
            conn,
            ctx,
            &called,
            None,
            &mut child,
            child_effects,
            Some(instance.id),
        )?;
    }
    // A finished child resumes its parent, in this same transaction.
    let finished = effects.iter().find_map(|e| match e {
        Effect::Completed { outcome } => Some(outcome.clone()),
        _ => None,
    });
    if let Some(outcome) = finished
        && let Some(parent) = parent_of(conn, instance.id)?
    {
        let variables = instance.variables.clone();
        let child = instance.id;
        step(conn, ctx, parent, |compiled, parent, directory| {
            engine::child_completed(
                compiled, parent, child, outcome, variables, ctx.now, directory,
            )
        })?;
    }
    Ok(())
}

fn parent_of(conn: &mut AnyConnection, id: Uuid) -> QueryResult<Option<Uuid>> {
    let parent: Option<Option<String>> = wf_instances::table
        .find(id.to_string())
        .select(wf_instances::parent_id)
        .first(conn)
        .optional()?;
    Ok(parent.flatten().and_then(|p| Uuid::parse_str(&p).ok()))
}

fn write_instance(
    conn: &mut AnyConnection,
    ctx: StepContext<'_>,
    new: bool,
    instance: &Instance,
    parent: Option<Uuid>,
) -> QueryResult<()> {
    let state = serde_json::to_string(instance)
        .map_err(|e| corrupt(&instance.id.to_string(), &e.to_string()))?;
    let incident = instance.tokens.iter().find_map(|t| t.incident.clone());
    let ended = (instance.status != Status::Running).then(|| naive(ctx.now));
    if new {
        diesel::insert_into(wf_instances::table)
            .values((
                wf_instances::id.eq(instance.id.to_string()),
                wf_instances::definition.eq(&instance.definition),
                wf_instances::version.eq(&instance.version),
                wf_instances::business_key.eq(&instance.business_key),
                wf_instances::initiator.eq(&instance.initiator),
                wf_instances::status.eq(instance.status.as_str()),
                wf_instances::outcome.eq(&instance.outcome),
                wf_instances::incident.eq(&incident),
                wf_instances::parent_id.eq(parent.map(|p| p.to_string())),
                wf_instances::state.eq(&state),
                wf_instances::started_at.eq(naive(ctx.now)),
                wf_instances::updated_at.eq(naive(ctx.now)),
                wf_instances::ended_at.eq(ended),
            ))
            .execute(conn)?;
    } else {
        diesel::update(wf_instances::table.find(instance.id.to_string()))
            .set((
                wf_instances::status.eq(instance.status.as_str()),
                wf_instances::outcome.eq(&instance.outcome),
                wf_instances::incident.eq(&incident),
                wf_instances::state.eq(&state),
                wf_instances::updated_at.eq(naive(ctx.now)),
                wf_instances::ended_at.eq(ended),
            ))
            .execute(conn)?;
    }
    Ok(())
}

fn insert_task(
    conn: &mut AnyConnection,
    instance_id: &str,
    task: &Task,
    name: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(wf_tasks::table)
        .values((
            wf_tasks::id.eq(task.id.to_string()),
            wf_tasks::instance_id.eq(instance_id),
            wf_tasks::node.eq(&task.node),
            wf_tasks::name.eq(name),
            wf_tasks::state.eq("open"),
            wf_tasks::assignee.eq(&task.assignee),
            wf_tasks::forbidden.eq(Json::from(task.forbidden.clone()).to_string()),
            wf_tasks::created_at.eq(naive(now)),
            wf_tasks::due_at.eq(task.due_at.map(naive)),
        ))
        .execute(conn)?;
    insert_candidates(conn, task)
}

/// Adds the task's candidates that are not recorded yet.
fn insert_candidates(conn: &mut AnyConnection, task: &Task) -> QueryResult<()> {
    let id = task.id.to_string();
    let existing: Vec<(String, String)> = wf_task_candidates::table
        .filter(wf_task_candidates::task_id.eq(&id))
        .select((wf_task_candidates::kind, wf_task_candidates::name))
        .load(conn)?;
    let rows: Vec<_> = task
        .candidates
        .users
        .iter()
        .map(|u| ("user", u))
        .chain(task.candidates.roles.iter().map(|r| ("role", r)))
        .filter(|(kind, name)| !existing.iter().any(|(k, n)| k == kind && n == *name))
        .map(|(kind, name)| {
            (
                wf_task_candidates::task_id.eq(id.clone()),
                wf_task_candidates::kind.eq(kind),
                wf_task_candidates::name.eq(name.clone()),
            )
        })
        .collect();
    if !rows.is_empty() {
        per_backend!(conn, c => diesel::insert_into(wf_task_candidates::table).values(&rows).execute(c))?;
    }
    Ok(())
}

fn sync_timers(
    conn: &mut AnyConnection,
    before: Option<&Instance>,
    after: &Instance,
) -> QueryResult<()> {
    let old = before.map_or(&[][..], |b| b.timers.as_slice());
    if old == after.timers.as_slice() {
        return Ok(());
    }
    let id = after.id.to_string();
    let gone: Vec<i32> = old
        .iter()
        .filter(|t| !after.timers.contains(t))
        .map(|t| i32::try_from(t.id).unwrap_or(i32::MAX))
        .collect();
    if !gone.is_empty() {
        diesel::delete(
            wf_timers::table
                .filter(wf_timers::instance_id.eq(&id))
                .filter(wf_timers::timer_id.eq_any(gone)),
        )
        .execute(conn)?;
    }
    let new: Vec<_> = after
        .timers
        .iter()
        .filter(|t| !old.contains(t))
        .map(|t| {
            (
                wf_timers::instance_id.eq(id.clone()),
                wf_timers::timer_id.eq(i32::try_from(t.id).unwrap_or(i32::MAX)),
                wf_timers::due_at.eq(naive(t.due_at)),
            )
        })
        .collect();
    if !new.is_empty() {
        per_backend!(conn, c => diesel::insert_into(wf_timers::table).values(&new).execute(c))?;
    }
    Ok(())
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

fn sync_subscriptions(
    conn: &mut AnyConnection,
    before: Option<&Instance>,
    after: &Instance,
) -> QueryResult<()> {
    let old = before.map(subscriptions).unwrap_or_default();
    let new = subscriptions(after);
    if old == new {
        return Ok(());
    }
    let id = after.id.to_string();
    diesel::delete(wf_subscriptions::table.filter(wf_subscriptions::instance_id.eq(&id)))
        .execute(conn)?;
    let rows: Vec<_> = new
        .into_iter()
        .map(|(event, subject)| {
            (
                wf_subscriptions::instance_id.eq(id.clone()),
                wf_subscriptions::event_type.eq(event),
                wf_subscriptions::subject.eq(subject),
            )
        })
        .collect();
    if !rows.is_empty() {
        per_backend!(conn, c => diesel::insert_into(wf_subscriptions::table).values(&rows).execute(c))?;
    }
    Ok(())
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
