//! What the workflow service consumes: replies to its service tasks' commands
//! ([`meridian_proto::workflow::v1::CommandReply`], correlated by the command's correlation id),
//! the events its message nodes and event gateways wait for (correlated by subject), and the
//! events that start instances (a definition's `trigger`: an event type and a CEL condition over
//! `event`, the decoded payload). Each message is applied once (inbox), in the same transaction
//! as the steps it causes.

use std::collections::BTreeSet;
use std::sync::Arc;

use meridian_chassis::bus::{Bus, Envelope, HandleError, Subscription};
use meridian_chassis::inbox;
use meridian_proto::Message;
use meridian_proto::control::v1::ConfigurationItemChanged;
use meridian_proto::workflow::v1::{CommandReply, DecideTask, TaskDecisionReply};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use crate::Workflow;
use crate::definition::{Compiled, Node};
use crate::engine::{self, EngineError, Start};
use crate::store::instances::{self, StepError};

/// The inbox name of this consumer.
pub const CONSUMER: &str = "workflow.events";

/// The actor of steps caused by bus messages.
pub const ACTOR: &str = "system:bus";

/// The routing keys a set of definitions needs: their replies and awaited events.
pub fn bindings<'a>(definitions: impl IntoIterator<Item = &'a Compiled>) -> Vec<String> {
    let mut keys = BTreeSet::from([CI_CHANGED.to_owned(), DECIDE.to_owned()]);
    for compiled in definitions {
        if let Some(trigger) = &compiled.definition.trigger {
            keys.insert(trigger.event.clone());
        }
        keys.extend(compiled.definition.cancel_on.iter().cloned());
        for node in &compiled.definition.nodes {
            match node {
                Node::ServiceTask(task) => {
                    keys.insert(task.reply.clone());
                }
                Node::Message { event, .. } => {
                    keys.insert(event.clone());
                }
                Node::EventGateway { branches, .. } => {
                    keys.extend(
                        branches
                            .iter()
                            .filter_map(|b| b.message.as_ref())
                            .map(|m| m.event.clone()),
                    );
                }
                _ => {}
            }
        }
    }
    keys.into_iter().collect()
}

/// The instance a command's correlation id (`instance:token:attempt`) belongs to.
fn instance_of(correlation_id: &str) -> Option<Uuid> {
    let mut parts = correlation_id.split(':');
    let instance = Uuid::parse_str(parts.next()?).ok()?;
    parts.next()?.parse::<u32>().ok()?;
    parts.next()?.parse::<u32>().ok()?;
    parts.next().is_none().then_some(instance)
}

/// A decoded message: a reply, or an event to correlate by subject.
enum Inbound {
    Reply {
        instance: Uuid,
        correlation_id: String,
        result: Result<Json, String>,
    },
    Event,
    CiOwner(ConfigurationItemChanged),
    Decide(DecideTask),
}

/// The notifier's command: an approver confirmed a one-click action link.
pub const DECIDE: &str = "workflow.task.decide";
/// The reply to [`DECIDE`].
pub const DECIDE_REPLIED: &str = "workflow.task.decide.replied";

/// The CI read model's event.
pub const CI_CHANGED: &str = "control.ci.changed";

fn decode(envelope: &Envelope) -> Result<Inbound, HandleError> {
    let reply = envelope
        .correlation_id
        .as_deref()
        .and_then(instance_of)
        .and_then(|_| CommandReply::decode(envelope.payload.as_slice()).ok())
        .filter(|reply| !reply.correlation_id.is_empty());
    let Some(reply) = reply else {
        if envelope.event_type == DECIDE {
            let command = DecideTask::decode(envelope.payload.as_slice())
                .map_err(|e| HandleError::Malformed(format!("payload does not decode: {e}")))?;
            if Uuid::parse_str(&command.task_id).is_err() || command.actor.is_empty() {
                return Err(HandleError::Malformed(
                    "a decision needs a task id and an actor".to_owned(),
                ));
            }
            return Ok(Inbound::Decide(command));
        }
        if envelope.event_type == CI_CHANGED {
            let ci = ConfigurationItemChanged::decode(envelope.payload.as_slice())
                .map_err(|e| HandleError::Malformed(format!("payload does not decode: {e}")))?;
            if ci.id.is_empty() {
                return Err(HandleError::Malformed("CI id is empty".to_owned()));
            }
            return Ok(Inbound::CiOwner(ci));
        }
        return Ok(Inbound::Event);
    };
    let instance = instance_of(&reply.correlation_id).ok_or_else(|| {
        HandleError::Malformed(format!("bad correlation id {}", reply.correlation_id))
    })?;
    let result = if reply.ok {
        let output = if reply.output_json.is_empty() {
            json!({})
        } else {
            serde_json::from_str(&reply.output_json)
                .map_err(|e| HandleError::Malformed(format!("output_json: {e}")))?
        };
        Ok(output)
    } else {
        Err(reply.error)
    };
    Ok(Inbound::Reply {
        instance,
        correlation_id: reply.correlation_id,
        result,
    })
}

/// Cancels the running instances about `subject` (their business key) of every definition
/// that names this event type in `cancel_on` (as their own version says).
fn cancel_on(
    conn: &mut meridian_chassis::db::AnyConnection,
    ctx: instances::StepContext<'_>,
    deployed: &[Arc<Compiled>],
    event_type: &str,
    subject: &str,
) -> Result<(), StepError> {
    for newest in deployed {
        if !newest.definition.cancel_on.iter().any(|e| e == event_type) {
            continue;
        }
        for instance in instances::running_by_key(conn, &newest.definition.id, subject)? {
            let reason = format!("{event_type} about {subject}");
            match instances::step(conn, ctx, instance, |compiled, state, _| {
                if compiled
                    .definition
                    .cancel_on
                    .iter()
                    .any(|e| e == event_type)
                {
                    engine::cancel(state, "system:bus", &reason)
                } else {
                    Err(EngineError::Nothing(format!(
                        "version {} is not cancelled by {event_type}",
                        compiled.version
                    )))
                }
            }) {
                Ok(_) | Err(StepError::NotFound | StepError::Engine(_)) => {}
                Err(error) => return Err(error),
            }
        }
    }
    Ok(())
}

/// Starts an instance of every definition (newest version) whose trigger names this event
/// type and whose condition holds over `event` (the decoded payload).
fn start_triggered(
    conn: &mut meridian_chassis::db::AnyConnection,
    ctx: instances::StepContext<'_>,
    deployed: &[Arc<Compiled>],
    event_type: &str,
    subject: &str,
    initiator: &str,
    data: Option<&Json>,
) -> Result<(), StepError> {
    let event = data.cloned().unwrap_or_else(|| json!({}));
    for compiled in deployed {
        let id = &compiled.definition.id;
        let Some(trigger) = &compiled.definition.trigger else {
            continue;
        };
        if trigger.event != event_type {
            continue;
        }
        let extra = [("event", event.clone())];
        let empty = serde_json::Map::new();
        let scope = crate::engine::expr::Scope {
            variables: &empty,
            extra: &extra,
        };
        let evaluated = (|| -> Result<Option<Start>, crate::engine::expr::ExprError> {
            if let Some(condition) = &trigger.condition
                && !crate::engine::expr::condition(compiled, condition, &scope)?
            {
                return Ok(None);
            }
            let business_key = match &trigger.business_key {
                None => subject.to_owned(),
                Some(source) => match crate::engine::expr::to_json(&crate::engine::expr::eval(
                    compiled, source, &scope,
                )?) {
                    Json::String(key) => key,
                    other => other.to_string(),
                },
            };
            let mut variables = serde_json::Map::new();
            for (name, source) in &trigger.variables {
                let value = crate::engine::expr::eval(compiled, source, &scope)?;
                variables.insert(name.clone(), crate::engine::expr::to_json(&value));
            }
            Ok(Some(Start {
                id: Uuid::now_v7(),
                business_key,
                initiator: initiator.to_owned(),
                variables,
            }))
        })();
        match evaluated {
            Ok(None) => {}
            Ok(Some(request)) => match instances::start(conn, ctx, compiled, request, None) {
                Ok(_) => {}
                Err(StepError::Engine(error)) => {
                    tracing::warn!(definition = %id, %event_type, %error, "a triggered instance could not start");
                }
                Err(error) => return Err(error),
            },
            Err(error) => {
                tracing::warn!(definition = %id, %event_type, %error, "a trigger could not be evaluated");
            }
        }
    }
    Ok(())
}

/// Applies one message.
///
/// # Errors
/// [`HandleError::Malformed`] for a reply that does not decode; [`HandleError::Transient`] when
/// the database fails.
pub async fn apply(svc: &Workflow, envelope: Envelope) -> Result<(), HandleError> {
    let inbound = decode(&envelope)?;
    let now = svc.clock.now();
    let registry = svc.registry.clone();
    let message_id = envelope.id.to_string();
    let event_type = envelope.event_type.clone();
    let subject = envelope.subject.clone();
    let correlation = envelope.correlation_id.clone();
    let data = meridian_proto::decode_json(&envelope.event_type, &envelope.payload)
        .map_err(HandleError::Malformed)?;
    let payload = json!({
        "event_id": message_id,
        "type": event_type,
        "subject": subject,
        "time": envelope.time,
        "actor": envelope.actor,
        "data": data,
    });
    let initiator = envelope.actor.clone().unwrap_or_else(|| ACTOR.to_owned());
    svc.db
        .transaction(move |conn| -> Result<(), StepError> {
            if !inbox::claim(conn, CONSUMER, &message_id, now)? {
                return Ok(());
            }
            let ctx = Workflow::context(&registry, ACTOR, now, correlation.as_deref());
            let outcome = match inbound {
                Inbound::Reply {
                    instance,
                    correlation_id,
                    result,
                } => instances::step(conn, ctx, instance, |compiled, state, directory| {
                    engine::reply(compiled, state, &correlation_id, result, now, directory)
                })
                .map(|_| ()),
                Inbound::Decide(command) => {
                    decide(conn, &registry, &command, now, correlation.as_deref())
                }
                Inbound::CiOwner(ci) => {
                    crate::store::ci_owners::upsert(conn, &ci.id, &ci.owner, ci.revision)?;
                    Ok(())
                }
                Inbound::Event => {
                    // The newest version of each definition, read once for both uses.
                    let deployed = crate::store::definitions::newest_versions(conn)?
                        .into_iter()
                        .map(|(id, version)| registry.get(conn, &id, &version))
                        .collect::<Result<Vec<_>, _>>()?;
                    start_triggered(
                        conn,
                        ctx,
                        &deployed,
                        &event_type,
                        &subject,
                        &initiator,
                        data.as_ref(),
                    )?;
                    cancel_on(conn, ctx, &deployed, &event_type, &subject)?;
                    for instance in instances::subscribed(conn, &event_type, &subject)? {
                        let payload = payload.clone();
                        match instances::step(conn, ctx, instance, |compiled, state, directory| {
                            engine::message(
                                compiled,
                                state,
                                &event_type,
                                &subject,
                                payload,
                                now,
                                directory,
                            )
                        }) {
                            Ok(_) | Err(StepError::NotFound | StepError::Engine(_)) => {}
                            Err(error) => return Err(error),
                        }
                    }
                    Ok(())
                }
            };
            match outcome {
                // A late or repeated reply, or an instance that has ended: nothing waits for it.
                Ok(())
                | Err(
                    StepError::NotFound
                    | StepError::Engine(EngineError::Nothing(_) | EngineError::NotRunning(_)),
                ) => Ok(()),
                Err(error) => Err(error),
            }
        })
        .await
        .map_err(|e| HandleError::Transient(e.to_string()))?;
    svc.committed();
    Ok(())
}

/// Decides a task on an approver's behalf (a one-click action link), checking at this moment
/// that they may (the engine's own checks: assignee or candidate by their current roles, never
/// excluded by segregation of duties, no administrator override), and replies with the result
/// in the same transaction.
fn decide(
    conn: &mut meridian_chassis::db::AnyConnection,
    registry: &crate::store::definitions::Registry,
    command: &DecideTask,
    now: chrono::DateTime<chrono::Utc>,
    correlation: Option<&str>,
) -> Result<(), StepError> {
    let task_id = Uuid::parse_str(&command.task_id).unwrap_or_default();
    let actor = engine::Actor {
        id: command.actor.clone(),
        roles: command.roles.clone(),
        admin: false,
    };
    let ctx = Workflow::context(registry, &command.actor, now, correlation);
    let result = match crate::store::tasks::find(conn, task_id)? {
        None => Err(StepError::Engine(EngineError::NoTask(task_id))),
        Some(row) => {
            let instance = Uuid::parse_str(&row.instance_id).unwrap_or_default();
            let comment = (!command.comment.is_empty()).then(|| command.comment.clone());
            let fields: serde_json::Map<String, Json> = if command.fields_json.is_empty() {
                serde_json::Map::new()
            } else {
                serde_json::from_str(&command.fields_json).unwrap_or_default()
            };
            instances::step(conn, ctx, instance, |compiled, state, directory| {
                engine::complete(
                    compiled,
                    state,
                    task_id,
                    &actor,
                    &command.outcome,
                    comment.clone(),
                    fields.clone(),
                    now,
                    directory,
                )
            })
            .map(|_| ())
        }
    };
    let (ok, code, detail) = match result {
        Ok(()) => (true, String::new(), String::new()),
        Err(error @ (StepError::Db(_) | StepError::Unavailable(_))) => return Err(error),
        Err(error) => {
            let problem = crate::api::error::problem(error);
            let body = problem.body();
            (
                false,
                problem.code().code.to_owned(),
                body.detail.unwrap_or(body.title),
            )
        }
    };
    let reply = meridian_chassis::bus::Envelope {
        id: Uuid::now_v7(),
        event_type: DECIDE_REPLIED.to_owned(),
        source: crate::store::instances::SOURCE.to_owned(),
        subject: command.task_id.clone(),
        time: now,
        correlation_id: Some(command.command_id.clone()),
        causation_id: None,
        actor: Some(command.actor.clone()),
        payload: TaskDecisionReply {
            command_id: command.command_id.clone(),
            task_id: command.task_id.clone(),
            ok,
            code,
            detail,
        }
        .encode_to_vec(),
    };
    meridian_chassis::outbox::enqueue(conn, &reply)?;
    Ok(())
}

/// Starts consuming the replies and events the deployed definitions need.
pub fn start(bus: &Bus, queue_prefix: &str, svc: Workflow, bindings: Vec<String>) {
    let subscription = Subscription {
        queue: format!("{queue_prefix}workflow"),
        bindings,
    };
    *svc.listening
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(crate::Listening {
        bus: bus.clone(),
        queue: subscription.queue.clone(),
        bound: subscription.bindings.iter().cloned().collect(),
    });
    let svc = Arc::new(svc);
    bus.consume(
        subscription,
        Arc::new(move |envelope: Envelope| {
            let svc = svc.clone();
            async move { apply(&svc, envelope).await }
        }),
    );
}
