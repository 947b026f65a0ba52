//! What the notifier consumes: every event (bound to `#`), each applied once (inbox) in one
//! transaction that records what is to be sent:
//!
//! - a delivery for each webhook subscription whose pattern matches the event type, its body
//!   the CloudEvent in JSON;
//! - `workflow.task.created`, `.reminded`, `.escalated`: a notification with an action link for
//!   each person who may act on the task (the assignee, or the candidates: named users and the
//!   directory's holders of the candidate roles), never the instance's initiator;
//! - `workflow.task.completed`, `workflow.instance.completed` and `.cancelled`: the links still
//!   open on them stop working;
//! - `workflow.task.decide.replied`: the engine's answer to a link's decision;
//! - any event a routing rule matches: a notification for the rule's audience.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use meridian_chassis::bus::{Bus, Envelope, HandleError, Subscription, topic_matches};
use meridian_chassis::db::{AnyConnection, DbError};
use meridian_chassis::inbox;
use meridian_proto::Message;
use meridian_proto::workflow::v1::{
    InstanceCancelled, InstanceCompleted, TaskCompleted, TaskCreated, TaskDecisionReply,
    TaskEscalated, TaskReminded,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Notifier;
use crate::config::NotifierConfig;
use crate::domain::{quiet, render};
use crate::store::links::{self, LinkRow};
use crate::store::naive;
use crate::store::notifications::{self, NotificationRow};
use crate::store::recipients::{self, RecipientRow};
use crate::store::rules::{self, RuleRow};
use crate::store::webhooks::{self, DeliveryRow};

/// The inbox name of this consumer.
pub const CONSUMER: &str = "notifier.events";

/// What a notification's body is rendered from when it is sent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Draft {
    /// The subject line.
    pub title: String,
    /// The first paragraph.
    pub intro: String,
    /// Label and value pairs.
    pub facts: Vec<(String, String)>,
    /// The task's outcomes, each a button of the action link.
    #[serde(default)]
    pub outcomes: Vec<String>,
}

/// The task an event is about, with what a notification about it says.
struct TaskNotice<'a> {
    task_id: &'a str,
    instance_definition: &'a str,
    business_key: &'a str,
    name: &'a str,
    initiator: &'a str,
    outcomes: Vec<String>,
    summary: Value,
    form: String,
    due_at: Option<DateTime<Utc>>,
    template: &'static str,
    people: Vec<String>,
    roles: Vec<String>,
}

/// The CloudEvent (structured JSON mode) of an envelope: the attributes, and `data` decoded from
/// protobuf to JSON when the contract knows the type (else `data_base64`).
pub fn cloud_event(envelope: &Envelope, data: Option<&Value>) -> Value {
    let mut event = json!({
        "specversion": "1.0",
        "id": envelope.id.to_string(),
        "source": envelope.source,
        "type": envelope.event_type,
        "subject": envelope.subject,
        "time": envelope.time.to_rfc3339(),
        "datacontenttype": "application/json",
    });
    if let Some(map) = event.as_object_mut() {
        for (name, value) in [
            ("correlationid", &envelope.correlation_id),
            ("causationid", &envelope.causation_id),
            ("actor", &envelope.actor),
        ] {
            if let Some(value) = value {
                map.insert(name.to_owned(), Value::String(value.clone()));
            }
        }
        match data {
            Some(data) => {
                map.insert("data".to_owned(), data.clone());
            }
            None => {
                use base64::Engine as _;
                map.remove("datacontenttype");
                map.insert(
                    "data_base64".to_owned(),
                    Value::String(
                        base64::engine::general_purpose::STANDARD.encode(&envelope.payload),
                    ),
                );
            }
        }
    }
    event
}

fn decode<M: Message + Default>(envelope: &Envelope) -> Result<M, HandleError> {
    M::decode(envelope.payload.as_slice())
        .map_err(|e| HandleError::Malformed(format!("{}: {e}", envelope.event_type)))
}

/// What the consumer does with one envelope, decided before the transaction.
enum Inbound {
    Task(TaskCreated),
    Reminded(TaskReminded),
    Escalated(TaskEscalated),
    TaskClosed(TaskCompleted),
    InstanceEnded {
        definition: String,
        business_key: String,
        reason: String,
    },
    Decided(TaskDecisionReply),
    Other,
}

fn inbound(envelope: &Envelope) -> Result<Inbound, HandleError> {
    Ok(match envelope.event_type.as_str() {
        "workflow.task.created" => Inbound::Task(decode(envelope)?),
        "workflow.task.reminded" => Inbound::Reminded(decode(envelope)?),
        "workflow.task.escalated" => Inbound::Escalated(decode(envelope)?),
        "workflow.task.completed" => Inbound::TaskClosed(decode(envelope)?),
        "workflow.instance.completed" => {
            let m: InstanceCompleted = decode(envelope)?;
            Inbound::InstanceEnded {
                definition: m.definition,
                business_key: m.business_key,
                reason: format!("the workflow ended ({})", m.outcome),
            }
        }
        "workflow.instance.cancelled" => {
            let m: InstanceCancelled = decode(envelope)?;
            Inbound::InstanceEnded {
                definition: m.definition,
                business_key: m.business_key,
                reason: format!("the workflow was cancelled by {}", m.cancelled_by),
            }
        }
        "workflow.task.decide.replied" => Inbound::Decided(decode(envelope)?),
        _ => Inbound::Other,
    })
}

/// Applies one message.
///
/// # Errors
/// [`HandleError::Malformed`] for a payload that does not decode; [`HandleError::Transient`]
/// when the database fails.
pub async fn apply(svc: &Notifier, envelope: Envelope) -> Result<(), HandleError> {
    let inbound = inbound(&envelope)?;
    let data = meridian_proto::decode_json(&envelope.event_type, &envelope.payload)
        .map_err(HandleError::Malformed)?;
    let now = svc.clock.now();
    let config = svc.config.clone();
    let added = svc
        .db
        .transaction(move |conn| -> Result<bool, DbError> {
            if !inbox::claim(conn, CONSUMER, &envelope.id.to_string(), now)? {
                return Ok(false);
            }
            subscriptions(conn, &envelope, data.as_ref(), now)?;
            match inbound {
                Inbound::Task(m) => {
                    let mut people = m.candidate_users.clone();
                    if !m.assignee.is_empty() {
                        people = vec![m.assignee.clone()];
                    }
                    let roles = if m.assignee.is_empty() {
                        m.candidate_roles.clone()
                    } else {
                        Vec::new()
                    };
                    let notice = TaskNotice {
                        task_id: &m.task_id,
                        instance_definition: &m.definition,
                        business_key: &m.business_key,
                        name: &m.name,
                        initiator: &m.initiator,
                        outcomes: m.outcomes.clone(),
                        summary: serde_json::from_str(&m.summary_json).unwrap_or(Value::Null),
                        form: if m.form_json.is_empty() {
                            "{}".to_owned()
                        } else {
                            m.form_json.clone()
                        },
                        due_at: m
                            .due_at
                            .as_ref()
                            .and_then(|t| DateTime::from_timestamp_micros(t.unix_micros)),
                        template: "task",
                        people,
                        roles,
                    };
                    notify_task(conn, &config, &envelope, &notice, now)?;
                }
                Inbound::Reminded(m) => {
                    let people = if m.assignee.is_empty() {
                        m.candidate_users.clone()
                    } else {
                        vec![m.assignee.clone()]
                    };
                    let roles = if m.assignee.is_empty() {
                        m.candidate_roles.clone()
                    } else {
                        Vec::new()
                    };
                    follow_up(
                        conn,
                        &config,
                        &envelope,
                        &m.task_id,
                        "task_reminder",
                        people,
                        roles,
                        now,
                    )?;
                }
                Inbound::Escalated(m) => {
                    follow_up(
                        conn,
                        &config,
                        &envelope,
                        &m.task_id,
                        "task_escalated",
                        m.candidate_users.clone(),
                        m.candidate_roles.clone(),
                        now,
                    )?;
                }
                Inbound::TaskClosed(m) => {
                    links::void_task(
                        conn,
                        &m.task_id,
                        &format!("{} decided the task: {}", m.completed_by, m.outcome),
                    )?;
                }
                Inbound::InstanceEnded {
                    definition,
                    business_key,
                    reason,
                } => {
                    links::void_instance(conn, &definition, &business_key, &reason)?;
                }
                Inbound::Decided(m) => {
                    links::record_result(conn, &m.command_id, m.ok, &m.code, &m.detail, now)?;
                }
                Inbound::Other => {}
            }
            routed(conn, &config, &envelope, data.as_ref(), now)?;
            Ok(true)
        })
        .await
        .map_err(|e| HandleError::Transient(e.to_string()))?;
    if added {
        svc.due.notify_one();
    }
    Ok(())
}

/// Records a delivery for each subscription whose patterns match.
fn subscriptions(
    conn: &mut AnyConnection,
    envelope: &Envelope,
    data: Option<&Value>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let hooks = webhooks::active(conn)?;
    let matching: Vec<_> = hooks
        .iter()
        .filter(|h| {
            h.event_types()
                .iter()
                .any(|p| topic_matches(p, &envelope.event_type))
        })
        .collect();
    if matching.is_empty() {
        return Ok(());
    }
    let body = cloud_event(envelope, data).to_string();
    let rows: Vec<DeliveryRow> = matching
        .into_iter()
        .map(|hook| DeliveryRow {
            id: Uuid::now_v7().to_string(),
            webhook_id: hook.id.clone(),
            event_id: envelope.id.to_string(),
            event_type: envelope.event_type.clone(),
            body: body.clone(),
            state: "pending".to_owned(),
            attempts: 0,
            next_attempt_at: naive(now),
            response_status: None,
            last_error: None,
            created_at: naive(now),
            delivered_at: None,
        })
        .collect();
    webhooks::add_deliveries(conn, &rows)?;
    Ok(())
}

/// The people a task reaches: the named ones and the directory's holders of its roles, each
/// once, never the initiator (segregation of duties would refuse them anyway).
fn people_of(
    conn: &mut AnyConnection,
    named: &[String],
    roles: &[String],
    initiator: &str,
) -> Result<Vec<String>, DbError> {
    let mut people: Vec<String> = named.to_vec();
    for holder in recipients::holding(conn, roles, &[])? {
        people.push(holder.user_id);
    }
    people.sort();
    people.dedup();
    people.retain(|p| p != initiator && !p.is_empty());
    Ok(people)
}

/// The address of `recipient` on `channel`, or why there is none.
fn address(recipient: Option<&RecipientRow>, channel: &str, user: &str) -> Result<String, String> {
    let Some(r) = recipient else {
        // Someone outside the directory (a customer's contact) is reached by e-mail at the
        // address they are named by.
        if channel == "email" && user.contains('@') && !user.contains(char::is_whitespace) {
            return Ok(user.to_owned());
        }
        return Err(format!(
            "{user} is not in the notifier's directory (/v1/recipients)"
        ));
    };
    if !r.active {
        return Err(format!("{user} was removed from the directory"));
    }
    let found = match channel {
        "email" => r.email.clone(),
        "slack" => r.slack_webhook.as_ref().map(|_| "personal".to_owned()),
        "teams" => r.teams_webhook.as_ref().map(|_| "personal".to_owned()),
        _ => None,
    };
    found.ok_or_else(|| format!("{user} has no {channel} address"))
}

/// When a notification for `recipient` may go: now, or after their quiet hours.
fn release(
    recipient: Option<&RecipientRow>,
    config: &NotifierConfig,
    urgent: bool,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let Some(r) = recipient else { return now };
    if urgent {
        return now;
    }
    let (Some(start), Some(end)) = (
        r.quiet_start.as_deref().and_then(quiet::parse_time),
        r.quiet_end.as_deref().and_then(quiet::parse_time),
    ) else {
        return now;
    };
    let tz = r
        .timezone
        .parse()
        .or_else(|_| config.default_timezone.parse())
        .unwrap_or(chrono_tz::UTC);
    quiet::release_at(now, tz, start, end)
}

/// A notification row for `user`, failed at once when they cannot be reached (so it shows).
#[expect(clippy::too_many_arguments, reason = "one row, its parts named")]
fn notification(
    envelope: &Envelope,
    user: &str,
    channel: &str,
    destination: Result<String, String>,
    template: &str,
    draft: &Draft,
    link_id: Option<String>,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> NotificationRow {
    let (destination, state, error) = match destination {
        Ok(d) => (d, "pending", None),
        Err(why) => (String::new(), "failed", Some(why)),
    };
    NotificationRow {
        id: Uuid::now_v7().to_string(),
        event_id: envelope.id.to_string(),
        event_type: envelope.event_type.clone(),
        subject: envelope.subject.clone(),
        recipient: user.to_owned(),
        channel: channel.to_owned(),
        destination,
        template: template.to_owned(),
        title: draft.title.clone(),
        context: serde_json::to_string(draft).unwrap_or_default(),
        link_id,
        state: state.to_owned(),
        attempts: 0,
        next_attempt_at: naive(at),
        last_error: error,
        created_at: naive(now),
        delivered_at: None,
    }
}

fn task_draft(notice: &TaskNotice<'_>) -> Draft {
    let what = if notice.business_key.is_empty() {
        notice.instance_definition.to_owned()
    } else {
        format!("{} ({})", notice.business_key, notice.instance_definition)
    };
    let (title, intro) = match notice.template {
        "task_reminder" => (
            format!("Reminder: {} — {}", notice.name, notice.business_key),
            format!("{what} still waits for your decision."),
        ),
        "task_escalated" => (
            format!(
                "Escalated to you: {} — {}",
                notice.name, notice.business_key
            ),
            format!("{what} is overdue and now waits for your decision too."),
        ),
        _ => (
            format!("Your decision: {} — {}", notice.name, notice.business_key),
            format!("{what} waits for your decision."),
        ),
    };
    let mut facts = render::facts(&notice.summary, 24);
    if let Some(due) = notice.due_at {
        facts.push((
            "due".to_owned(),
            due.format("%Y-%m-%d %H:%M UTC").to_string(),
        ));
    }
    Draft {
        title,
        intro,
        facts,
        outcomes: notice.outcomes.clone(),
    }
}

/// Notifications (with their links) for everyone `notice` reaches.
fn notify_task(
    conn: &mut AnyConnection,
    config: &NotifierConfig,
    envelope: &Envelope,
    notice: &TaskNotice<'_>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let people = people_of(conn, &notice.people, &notice.roles, notice.initiator)?;
    let mut rows = Vec::new();
    for user in people {
        let recipient = recipients::find(conn, &user)?;
        let link = links::ensure(
            conn,
            &LinkRow {
                id: Uuid::now_v7().to_string(),
                task_id: notice.task_id.to_owned(),
                approver: user.clone(),
                definition: notice.instance_definition.to_owned(),
                business_key: notice.business_key.to_owned(),
                title: notice.name.to_owned(),
                outcomes: serde_json::to_string(&notice.outcomes).unwrap_or_default(),
                summary: notice.summary.to_string(),
                form: notice.form.clone(),
                state: "active".to_owned(),
                created_at: naive(now),
                expires_at: naive(now + Duration::hours(config.link_ttl_hours)),
                used_at: None,
                outcome: None,
                comment: None,
                result: None,
                result_code: None,
                result_detail: None,
                decided_at: None,
                void_reason: None,
            },
        )?;
        if link.state != "active" {
            continue;
        }
        let channel = recipient
            .as_ref()
            .map_or_else(|| "email".to_owned(), |r| r.channel.clone());
        if channel == "none" {
            continue;
        }
        let draft = task_draft(notice);
        let at = release(recipient.as_ref(), config, false, now);
        rows.push(notification(
            envelope,
            &user,
            &channel,
            address(recipient.as_ref(), &channel, &user),
            notice.template,
            &draft,
            Some(link.id.clone()),
            at,
            now,
        ));
    }
    notifications::insert_new(conn, &rows)?;
    Ok(())
}

/// A reminder or an escalation: the task's summary and outcomes come from its existing links.
#[expect(clippy::too_many_arguments, reason = "the event's parts, named")]
fn follow_up(
    conn: &mut AnyConnection,
    config: &NotifierConfig,
    envelope: &Envelope,
    task_id: &str,
    template: &'static str,
    people: Vec<String>,
    roles: Vec<String>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let existing = links::of_task(conn, task_id)?;
    let Some(first) = existing.first() else {
        tracing::warn!(
            task_id,
            "a reminder for a task the notifier never saw; nothing sent"
        );
        return Ok(());
    };
    if existing
        .iter()
        .any(|l| l.state != "active" && l.void_reason.is_some())
    {
        return Ok(());
    }
    let first = first.clone();
    let notice = TaskNotice {
        task_id,
        instance_definition: &first.definition,
        business_key: &first.business_key,
        name: &first.title,
        initiator: "",
        outcomes: first.outcomes(),
        summary: serde_json::from_str(&first.summary).unwrap_or(Value::Null),
        form: first.form.clone(),
        due_at: None,
        template,
        people,
        roles,
    };
    notify_task(conn, config, envelope, &notice, now)
}

/// Notifications of the routing rules that match.
fn routed(
    conn: &mut AnyConnection,
    config: &NotifierConfig,
    envelope: &Envelope,
    data: Option<&Value>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let rules: Vec<RuleRow> = rules::all(conn)?
        .into_iter()
        .filter(|r| r.enabled && topic_matches(&r.event_pattern, &envelope.event_type))
        .collect();
    if rules.is_empty() {
        return Ok(());
    }
    let event = json!({
        "id": envelope.id.to_string(),
        "type": envelope.event_type,
        "subject": envelope.subject,
        "time": envelope.time.to_rfc3339(),
        "actor": envelope.actor,
        "data": data.cloned().unwrap_or(Value::Null),
    });
    let mut rows = Vec::new();
    for rule in rules {
        let title = rule
            .subject_template
            .as_deref()
            .map(|t| render::rule_template(t, &event))
            .transpose()
            .unwrap_or_else(|e| Some(format!("{} (template error: {e})", envelope.event_type)))
            .unwrap_or_else(|| format!("{}: {}", envelope.event_type, envelope.subject));
        let intro = rule
            .body_template
            .as_deref()
            .map(|t| render::rule_template(t, &event))
            .transpose()
            .unwrap_or_else(|e| Some(format!("(template error: {e})")))
            .unwrap_or_else(|| {
                format!("{} happened on {}.", envelope.event_type, envelope.subject)
            });
        let draft = Draft {
            title,
            intro,
            facts: render::facts(data.unwrap_or(&Value::Null), 24),
            outcomes: Vec::new(),
        };
        if let Some(destination) = &rule.destination {
            let channel = config
                .chat
                .get(destination)
                .map(|d| match d.kind {
                    crate::config::ChatKind::Slack => "slack",
                    crate::config::ChatKind::Teams => "teams",
                })
                .unwrap_or("slack");
            let target = if config.chat.contains_key(destination) {
                Ok(destination.clone())
            } else {
                Err(format!(
                    "no chat destination `{destination}` in notifier.chat"
                ))
            };
            rows.push(notification(
                envelope,
                &format!("chat:{destination}"),
                channel,
                target,
                "event",
                &draft,
                None,
                now,
                now,
            ));
            continue;
        }
        let people = match rule.audience_kind.as_str() {
            "user" => vec![rule.audience.clone()],
            "actor" => envelope.actor.iter().cloned().collect(),
            "event_user" => data
                .and_then(|d| d[rule.audience.as_str()].as_str())
                .filter(|u| !u.is_empty())
                .map(|u| vec![u.to_owned()])
                .unwrap_or_default(),
            "event_role" => match data.and_then(|d| d[rule.audience.as_str()].as_str()) {
                Some(role) if !role.is_empty() => {
                    recipients::holding(conn, &[role.to_owned()], &[])?
                        .into_iter()
                        .map(|r| r.user_id)
                        .collect()
                }
                _ => Vec::new(),
            },
            "role" => recipients::holding(conn, std::slice::from_ref(&rule.audience), &[])?
                .into_iter()
                .map(|r| r.user_id)
                .collect(),
            _ => recipients::holding(conn, &[], std::slice::from_ref(&rule.audience))?
                .into_iter()
                .map(|r| r.user_id)
                .collect(),
        };
        for user in people {
            let recipient = recipients::find(conn, &user)?;
            let channel = if rule.channel == "preferred" {
                recipient
                    .as_ref()
                    .map_or_else(|| "email".to_owned(), |r| r.channel.clone())
            } else {
                rule.channel.clone()
            };
            if channel == "none" {
                continue;
            }
            let at = release(recipient.as_ref(), config, rule.urgent, now);
            rows.push(notification(
                envelope,
                &user,
                &channel,
                address(recipient.as_ref(), &channel, &user),
                "event",
                &draft,
                None,
                at,
                now,
            ));
        }
    }
    notifications::insert_new(conn, &rows)?;
    Ok(())
}

/// Starts consuming every event.
pub fn start(bus: &Bus, queue_prefix: &str, svc: Notifier) {
    let subscription = Subscription {
        queue: format!("{queue_prefix}notifier"),
        bindings: vec!["#".to_owned()],
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
