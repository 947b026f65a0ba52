//! What the control service consumes: the approval workflows' side of change management.
//!
//! - `control.change.schedule` (a workflow's service task command): the change was approved;
//!   it moves to approved, then scheduled, and the reply `control.change.scheduled` carries the
//!   command's correlation id back.
//! - `workflow.task.completed` of an approval workflow's `triage` task: the change is assessed,
//!   with the change manager's risk on its decision.
//! - `workflow.instance.completed` of an approval workflow (its business key is the change's
//!   id): the decision is recorded (outcome, who decided, the votes), and a rejection moves the
//!   change to rejected.
//!
//! - `resolution.problem.change_requested`: a problem's fix needs a change; it is recorded as a
//!   draft normal change whose origin is the problem, and `control.change.raised` tells
//!   resolution its number.
//!
//! Each message is applied once (inbox), in one transaction with the change and its events.

use std::sync::Arc;

use meridian_chassis::bus::{Bus, Envelope, HandleError, Subscription};
use meridian_chassis::db::DbError;
use meridian_chassis::{inbox, outbox};
use meridian_proto::Message;
use meridian_proto::control::v1::ChangeRaised;
use meridian_proto::resolution::v1::ProblemChangeRequested;
use meridian_proto::workflow::v1::{Command, CommandReply, InstanceCompleted, TaskCompleted};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Control;
use crate::domain::change::{ChangeAction, ChangeState};
use crate::store::changes::{self, ChangeRow};
use crate::store::cis::{Context, SOURCE};

/// The inbox name of this consumer.
pub const CONSUMER: &str = "control.changes";

/// The command that schedules an approved change, and its reply.
pub const SCHEDULE: &str = "control.change.schedule";
/// The reply to [`SCHEDULE`].
pub const SCHEDULED: &str = "control.change.scheduled";
/// An approval workflow ended.
pub const COMPLETED: &str = "workflow.instance.completed";
/// A task of a workflow was completed.
pub const TASK_COMPLETED: &str = "workflow.task.completed";
/// The assessment task of the change advisory board.
const ASSESSMENT: &str = "triage";

/// A problem's fix needs a change.
pub const PROBLEM_FIX: &str = "resolution.problem.change_requested";
/// A change raised at another record's request.
pub const RAISED: &str = "control.change.raised";

/// The workflows that decide changes.
const APPROVALS: [&str; 3] = [
    "change-advisory-board",
    "emergency-change",
    "standard-change",
];

/// The actor of steps caused by bus messages.
const ACTOR: &str = "system:workflow";

/// Who decided what, from an approval workflow's variables: each task result with a `by`, and
/// each vote of a quorum.
fn deciders(variables: &serde_json::Map<String, Value>) -> Vec<Value> {
    let mut out = Vec::new();
    for (node, value) in variables {
        if let (Some(by), Some(outcome)) = (value.get("by"), value.get("outcome")) {
            out.push(json!({"task": node, "by": by, "outcome": outcome, "comment": value.get("comment")}));
        }
        if let Some(votes) = value.get("decisions").and_then(Value::as_array) {
            for vote in votes {
                out.push(
                    json!({"task": node, "by": vote.get("by"), "outcome": vote.get("outcome"), "comment": vote.get("comment")}),
                );
            }
        }
    }
    out
}

fn reply(command: &Command, result: Result<Value, String>, ctx: Context<'_>) -> Envelope {
    let (ok, error, output) = match result {
        Ok(output) => (true, String::new(), output.to_string()),
        Err(error) => (false, error, String::new()),
    };
    Envelope {
        id: Uuid::now_v7(),
        event_type: SCHEDULED.to_owned(),
        source: SOURCE.to_owned(),
        subject: command.business_key.clone(),
        time: ctx.now,
        correlation_id: Some(command.correlation_id.clone()),
        causation_id: None,
        actor: Some(ctx.actor.to_owned()),
        payload: CommandReply {
            correlation_id: command.correlation_id.clone(),
            ok,
            error,
            output_json: output,
        }
        .encode_to_vec(),
    }
}

/// Moves `row` through `actions` (each allowed in turn) and saves it once.
fn advance(
    conn: &mut meridian_chassis::db::AnyConnection,
    before: &ChangeRow,
    actions: &[ChangeAction],
    decision: Option<Value>,
    extra: &[Envelope],
    ctx: Context<'_>,
) -> Result<Result<ChangeRow, String>, DbError> {
    let mut after = before.clone();
    let mut state = ChangeState::parse(&before.state).unwrap_or(ChangeState::Draft);
    for action in actions {
        match state.after(*action) {
            Some(next) => state = next,
            None => {
                return Ok(Err(format!(
                    "change {} is {}: it cannot {}",
                    before.number,
                    state.as_str(),
                    action.as_str()
                )));
            }
        }
    }
    after.state = state.as_str().to_owned();
    if let Some(decision) = decision {
        after.decision = Some(decision.to_string());
    }
    after.version += 1;
    after.updated_at = ctx.now.naive_utc();
    let action = actions.last().map_or("decided", |a| a.as_str());
    changes::save(conn, before, &after, action, extra, ctx)?;
    Ok(Ok(after))
}

/// Applies one message.
///
/// # Errors
/// [`HandleError::Malformed`] for a payload that does not decode; [`HandleError::Transient`]
/// when the database fails.
pub async fn apply(svc: &Control, envelope: Envelope) -> Result<(), HandleError> {
    let now = meridian_chassis::clock::to_micros(svc.clock.now());
    let message_id = envelope.id.to_string();
    let malformed = |e: meridian_proto::DecodeError| {
        HandleError::Malformed(format!("payload does not decode: {e}"))
    };
    enum Inbound {
        Schedule(Command),
        Completed(InstanceCompleted),
        Task(TaskCompleted),
        ProblemFix(ProblemChangeRequested),
    }
    let inbound = match envelope.event_type.as_str() {
        SCHEDULE => {
            Inbound::Schedule(Command::decode(envelope.payload.as_slice()).map_err(malformed)?)
        }
        TASK_COMPLETED => {
            Inbound::Task(TaskCompleted::decode(envelope.payload.as_slice()).map_err(malformed)?)
        }
        COMPLETED => Inbound::Completed(
            InstanceCompleted::decode(envelope.payload.as_slice()).map_err(malformed)?,
        ),
        PROBLEM_FIX => {
            let fix =
                ProblemChangeRequested::decode(envelope.payload.as_slice()).map_err(malformed)?;
            if fix.problem_number.is_empty() || fix.title.trim().is_empty() {
                return Err(HandleError::Malformed(
                    "a change request names its problem and a title".to_owned(),
                ));
            }
            Inbound::ProblemFix(fix)
        }
        other => {
            return Err(HandleError::Malformed(format!(
                "unexpected event type {other}"
            )));
        }
    };
    let correlation = envelope.correlation_id.clone();
    svc.db
        .transaction(move |conn| -> Result<(), DbError> {
            if !inbox::claim(conn, CONSUMER, &message_id, now)? {
                return Ok(());
            }
            let ctx = Context {
                actor: ACTOR,
                now,
                correlation_id: correlation.as_deref(),
            };
            match inbound {
                Inbound::Schedule(command) => {
                    let input: Value =
                        serde_json::from_str(&command.input_json).unwrap_or_default();
                    let id = input
                        .get("change_id")
                        .and_then(Value::as_str)
                        .unwrap_or(&command.business_key)
                        .to_owned();
                    let Some(before) = changes::load_for_update(conn, &id)? else {
                        outbox::enqueue(
                            conn,
                            &reply(&command, Err(format!("no change {id}")), ctx),
                        )?;
                        return Ok(());
                    };
                    let decision = json!({
                        "outcome": "approved",
                        "workflow_instance": command.instance_id,
                        "at": now,
                    });
                    let scheduled = reply(
                        &command,
                        Ok(json!({"change": before.number, "state": "scheduled"})),
                        ctx,
                    );
                    match advance(
                        conn,
                        &before,
                        &[ChangeAction::Approve, ChangeAction::Schedule],
                        Some(decision),
                        std::slice::from_ref(&scheduled),
                        ctx,
                    )? {
                        Ok(_) => {}
                        Err(reason) if before.state == ChangeState::Scheduled.as_str() => {
                            // Already scheduled (the command came again): say so again.
                            tracing::info!(%reason, "a change was scheduled twice");
                            outbox::enqueue(conn, &scheduled)?;
                        }
                        Err(reason) => outbox::enqueue(conn, &reply(&command, Err(reason), ctx))?,
                    }
                }
                Inbound::ProblemFix(fix) => raise_for_problem(conn, fix, ctx)?,
                Inbound::Task(task) => {
                    if !APPROVALS.contains(&task.definition.as_str()) || task.node != ASSESSMENT {
                        return Ok(());
                    }
                    let Some(before) = changes::load_for_update(conn, &task.business_key)? else {
                        return Ok(());
                    };
                    if before.state != ChangeState::Submitted.as_str() {
                        return Ok(());
                    }
                    let fields: Value = serde_json::from_str(&task.fields_json).unwrap_or_default();
                    let mut decision: serde_json::Map<String, Value> = before
                        .decision
                        .as_deref()
                        .and_then(|d| serde_json::from_str(d).ok())
                        .unwrap_or_default();
                    decision.insert(
                        "assessment".to_owned(),
                        json!({"by": task.completed_by, "risk": fields.get("risk"), "comment": task.comment}),
                    );
                    if let Err(reason) = advance(conn, &before, &[ChangeAction::Assess], Some(Value::Object(decision)), &[], ctx)? {
                        tracing::warn!(%reason, "an assessment could not be recorded");
                    }
                }
                Inbound::Completed(done) => {
                    if !APPROVALS.contains(&done.definition.as_str()) {
                        return Ok(());
                    }
                    let Some(before) = changes::load_for_update(conn, &done.business_key)? else {
                        return Ok(());
                    };
                    let variables: serde_json::Map<String, Value> =
                        serde_json::from_str(&done.variables_json).unwrap_or_default();
                    let mut decision: serde_json::Map<String, Value> = before
                        .decision
                        .as_deref()
                        .and_then(|d| serde_json::from_str(d).ok())
                        .unwrap_or_default();
                    decision.insert("outcome".to_owned(), json!(done.outcome));
                    decision.insert("workflow".to_owned(), json!(done.definition));
                    decision.insert("workflow_instance".to_owned(), json!(done.instance_id));
                    decision.insert("decided_by".to_owned(), Value::Array(deciders(&variables)));
                    let open = [ChangeState::Submitted.as_str(), ChangeState::Assessed.as_str()];
                    let actions: &[ChangeAction] = if done.outcome == "rejected"
                        && open.contains(&before.state.as_str())
                    {
                        &[ChangeAction::Reject]
                    } else {
                        &[]
                    };
                    if actions.is_empty() {
                        // Approved (already scheduled by its command): record who decided.
                        let mut after = before.clone();
                        after.decision = Some(Value::Object(decision).to_string());
                        after.version += 1;
                        after.updated_at = now.naive_utc();
                        changes::save(conn, &before, &after, "decided", &[], ctx)?;
                    } else if let Err(reason) = advance(
                        conn,
                        &before,
                        actions,
                        Some(Value::Object(decision)),
                        &[],
                        ctx,
                    )? {
                        tracing::warn!(%reason, "a rejection could not be recorded");
                    }
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| HandleError::Transient(e.to_string()))?;
    svc.waker.wake();
    Ok(())
}

/// Records the change a problem's fix needs, as a draft normal change its requester completes and
/// submits; CIs control does not know are named in the reason instead. Publishes
/// [`RAISED`].
fn raise_for_problem(
    conn: &mut meridian_chassis::db::AnyConnection,
    fix: ProblemChangeRequested,
    ctx: Context<'_>,
) -> Result<(), DbError> {
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for ci in fix.configuration_items {
        if crate::store::cis::find(conn, &ci)?.is_some() {
            known.push(ci);
        } else {
            unknown.push(ci);
        }
    }
    let mut reason = format!("Fix of problem {}.", fix.problem_number);
    if !fix.reason.trim().is_empty() {
        reason = format!("{reason}\n\n{}", fix.reason.trim());
    }
    if !unknown.is_empty() {
        reason = format!("{reason}\n\nCIs not in the CMDB: {}.", unknown.join(", "));
    }
    let origin = format!("problem:{}", fix.problem_number);
    let row = ChangeRow {
        id: Uuid::now_v7().to_string(),
        number: changes::next_number(conn)?,
        title: fix.title.trim().chars().take(200).collect(),
        reason,
        category: "normal".to_owned(),
        template: None,
        requester: fix.requested_by.clone(),
        configuration_items: Value::from(known).to_string(),
        window_start: None,
        window_end: None,
        implementation_plan: fix.implementation_plan,
        test_plan: String::new(),
        backout_plan: String::new(),
        state: ChangeState::Draft.as_str().to_owned(),
        decision: None,
        review: None,
        risk: None,
        design: Some(crate::api::changes::design_reasons(false, false, false).to_string()),
        created_at: ctx.now.naive_utc(),
        updated_at: ctx.now.naive_utc(),
        version: 1,
        origin: Some(origin.clone()),
    };
    let requester = if fix.requested_by.is_empty() {
        "system:resolution".to_owned()
    } else {
        fix.requested_by
    };
    let as_requester = Context {
        actor: &requester,
        ..ctx
    };
    changes::insert(conn, &row, as_requester)?;
    outbox::enqueue(
        conn,
        &Envelope {
            id: Uuid::now_v7(),
            event_type: RAISED.to_owned(),
            source: SOURCE.to_owned(),
            subject: row.id.clone(),
            time: ctx.now,
            correlation_id: ctx.correlation_id.map(str::to_owned),
            causation_id: None,
            actor: Some(requester.clone()),
            payload: ChangeRaised {
                change_id: row.id.clone(),
                number: row.number.clone(),
                origin,
                requester: requester.clone(),
                title: row.title.clone(),
            }
            .encode_to_vec(),
        },
    )?;
    Ok(())
}

/// Starts consuming the approval workflows' commands and outcomes, and problems' change requests.
pub fn start(bus: &Bus, queue_prefix: &str, svc: Control) {
    let subscription = Subscription {
        queue: format!("{queue_prefix}control"),
        bindings: vec![
            SCHEDULE.to_owned(),
            COMPLETED.to_owned(),
            TASK_COMPLETED.to_owned(),
            PROBLEM_FIX.to_owned(),
        ],
    };
    let svc = Arc::new(svc);
    bus.consume(
        subscription,
        Arc::new(move |envelope: Envelope| {
            let svc = svc.clone();
            async move { apply(&svc, envelope).await }
        }),
    );
}
