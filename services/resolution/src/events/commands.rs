//! The commands of the request fulfilment workflows: `resolution.request.transition`, sent by a
//! workflow's service task (`input`: `action`, and as each action needs it `actor`, `comment`,
//! `notes`; the request is the instance's business key or `input.request`). The request moves as
//! the REST action would, with the workflow's authority over approval and fulfilment, and the
//! reply `resolution.request.transitioned` carries the command's correlation id back (`ok` with
//! the request's number and state, or the reason it was refused). A command applied already
//! (a retry whose first reply was lost) is answered `ok` again without a second change.

use std::sync::Arc;

use meridian_chassis::bus::{Bus, Envelope, HandleError, Subscription};
use meridian_chassis::db::DbError;
use meridian_chassis::{inbox, outbox};
use meridian_proto::Message;
use meridian_proto::workflow::v1::{Command, CommandReply};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Resolution;
use crate::api::requests::{RequestDecision, Via, transition};
use crate::domain::request::RequestAction;
use crate::store::requests;

/// The command.
pub const TRANSITION: &str = "resolution.request.transition";
/// Its reply.
pub const TRANSITIONED: &str = "resolution.request.transitioned";
/// The inbox name of this consumer.
pub const CONSUMER: &str = "resolution.commands";
/// Who acts when the command names no one.
const ACTOR: &str = "system:workflow";

fn reply(
    command: &Command,
    result: Result<Value, String>,
    now: chrono::DateTime<chrono::Utc>,
) -> Envelope {
    let (ok, error, output) = match result {
        Ok(output) => (true, String::new(), output.to_string()),
        Err(error) => (false, error, String::new()),
    };
    Envelope {
        id: Uuid::now_v7(),
        event_type: TRANSITIONED.to_owned(),
        source: super::SOURCE.to_owned(),
        subject: command.business_key.clone(),
        time: now,
        correlation_id: Some(command.correlation_id.clone()),
        causation_id: None,
        actor: Some(ACTOR.to_owned()),
        payload: CommandReply {
            correlation_id: command.correlation_id.clone(),
            ok,
            error,
            output_json: output,
        }
        .encode_to_vec(),
    }
}

/// What the command asks, read from its input.
struct Asked {
    request: String,
    action: Result<RequestAction, String>,
    actor: String,
    decision: RequestDecision,
}

fn asked(command: &Command) -> Asked {
    let input: Value = serde_json::from_str(&command.input_json).unwrap_or_default();
    let text = |name: &str| {
        input
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .filter(|s| !s.trim().is_empty())
    };
    let action = text("action").unwrap_or_default();
    Asked {
        request: text("request").unwrap_or_else(|| command.business_key.clone()),
        action: RequestAction::parse(&action).ok_or_else(|| {
            format!("input.action `{action}` is not one of approve, reject, start, fulfil, close, cancel")
        }),
        actor: text("actor").unwrap_or_else(|| ACTOR.to_owned()),
        decision: RequestDecision {
            comment: text("comment"),
            notes: text("notes"),
        },
    }
}

/// Applies one command: once (inbox), the request's change and the reply in one transaction.
///
/// # Errors
/// [`HandleError::Malformed`] for a payload that does not decode; [`HandleError::Transient`]
/// when the database fails.
pub async fn apply(svc: &Resolution, envelope: Envelope) -> Result<(), HandleError> {
    let command = Command::decode(envelope.payload.as_slice())
        .map_err(|e| HandleError::Malformed(format!("payload does not decode: {e}")))?;
    if command.correlation_id.is_empty() {
        return Err(HandleError::Malformed("no correlation id".to_owned()));
    }
    let now = meridian_chassis::clock::to_micros(svc.clock.now());
    let message_id = envelope.id.to_string();
    svc.db
        .transaction(move |conn| -> Result<(), DbError> {
            if !inbox::claim(conn, CONSUMER, &message_id, now)? {
                return Ok(());
            }
            let asked = asked(&command);
            let result = match (
                requests::find_for_update(conn, &asked.request)?,
                asked.action,
            ) {
                (_, Err(error)) => Err(error),
                (None, _) => Err(format!("no request {}", asked.request)),
                (Some(before), Ok(action)) => {
                    if before.state == action.target().as_str() {
                        // Applied already (a retry): the same answer, no second change.
                        Ok(json!({"request": before.number, "state": before.state}))
                    } else {
                        match transition(
                            conn,
                            &before,
                            action,
                            &asked.decision,
                            &asked.actor,
                            Via::Workflow,
                            now,
                        ) {
                            Ok(after) => Ok(json!({"request": after.number, "state": after.state})),
                            Err(problem) if problem.code().status >= 500 => {
                                // The database failed: roll back and let the message come again.
                                return Err(DbError::Unavailable(problem.code().code.to_owned()));
                            }
                            Err(problem) => {
                                let body = problem.body();
                                let fields: Vec<String> = body
                                    .invalid_params
                                    .iter()
                                    .map(|p| format!("{}: {}", p.name, p.reason))
                                    .collect();
                                Err(format!(
                                    "{}{}{}",
                                    body.code,
                                    body.detail.map(|d| format!(": {d}")).unwrap_or_default(),
                                    if fields.is_empty() {
                                        String::new()
                                    } else {
                                        format!(" ({})", fields.join("; "))
                                    }
                                ))
                            }
                        }
                    }
                }
            };
            outbox::enqueue(conn, &reply(&command, result, now))?;
            Ok(())
        })
        .await
        .map_err(|e| HandleError::Transient(e.to_string()))
}

/// Starts consuming the fulfilment workflows' commands.
pub fn start(bus: &Bus, queue_prefix: &str, svc: Resolution) {
    let subscription = Subscription {
        queue: format!("{queue_prefix}resolution.commands"),
        bindings: vec![TRANSITION.to_owned()],
    };
    bus.consume(
        subscription,
        Arc::new(move |envelope: Envelope| {
            let svc = svc.clone();
            async move { apply(&svc, envelope).await }
        }),
    );
}
