//! What the governance service consumes, from one queue bound to every event:
//! - every event, into the audit ledger (once each: the ledger's event id is unique, so it is
//!   also this consumer's inbox, and what follows happens only for an event new to it);
//! - `governance.document.issue`, the document approval workflow's command: the approved version
//!   is issued (the one before superseded), answered with `governance.document.issued`;
//! - `workflow.instance.completed` of a rejected document approval: the version is a draft again;
//! - `service_level.sla.breached` and `relationship.complaint.escalated` → nonconformities (as
//!   `governance.nonconformities` says).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use meridian_chassis::bus::{Bus, Envelope, HandleError, Subscription};
use meridian_chassis::db::{AnyConnection, DbError};
use meridian_proto::Message;
use meridian_proto::workflow::v1::{Command, CommandReply, InstanceCompleted};
use serde_json::{Value, json};

use crate::Governance;
use crate::config::NonconformityConfig;
use crate::store::rows::{self, NonconformityRow};
use crate::store::{audit, publish};

/// The document approval workflow's command.
pub const ISSUE: &str = "governance.document.issue";
/// Its reply.
pub const ISSUED: &str = "governance.document.issued";
/// Who acts when the service acts on its own.
pub const SYSTEM: &str = "system:governance";

/// Publishes a record's change (`governance.nonconformity.recorded`, `.audit.completed`,
/// `.review.held`).
///
/// # Errors
/// A query failing.
pub fn record_changed(
    conn: &mut AnyConnection,
    event_type: &str,
    record: meridian_proto::governance::v1::RecordChanged,
    actor: &str,
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    let subject = record.id.clone();
    publish(
        conn,
        event_type,
        &subject,
        actor,
        record.encode_to_vec(),
        now,
    )
}

/// Records a nonconformity (once per `source_ref`) and announces it.
///
/// # Errors
/// A query failing.
pub fn raise_nonconformity(
    conn: &mut AnyConnection,
    row: NonconformityRow,
    actor: &str,
    now: DateTime<Utc>,
) -> diesel::QueryResult<Option<NonconformityRow>> {
    if rows::nonconformity_for(conn, &row.source_ref)? {
        return Ok(None);
    }
    rows::save_nonconformity(conn, &row, true)?;
    audit(
        conn,
        actor,
        "nonconformity.recorded",
        "nonconformity",
        &row.id,
        &row,
        now,
    )?;
    record_changed(
        conn,
        "governance.nonconformity.recorded",
        meridian_proto::governance::v1::RecordChanged {
            id: row.id.clone(),
            number: row.number.clone(),
            kind: "nonconformity".to_owned(),
            title: row.description.chars().take(200).collect(),
            state: row.state.clone(),
            recipient: row.action_owner.clone(),
            source: row.source.clone(),
        },
        actor,
        now,
    )?;
    Ok(Some(row))
}

/// Where a nonconformity comes from and what it is.
#[derive(Debug)]
pub struct Raised {
    /// `audit`, `sla_breach`, `complaint` or `manual`.
    pub source: &'static str,
    /// What raised it (once per reference).
    pub source_ref: String,
    /// The clause not met.
    pub clause: String,
    /// What does not conform.
    pub description: String,
    /// `minor` or `major`.
    pub severity: String,
}

/// A nonconformity as it is first recorded.
///
/// # Errors
/// A query failing.
pub fn new_nonconformity(
    conn: &mut AnyConnection,
    raised: Raised,
    actor: &str,
    now: DateTime<Utc>,
) -> diesel::QueryResult<NonconformityRow> {
    Ok(NonconformityRow {
        id: uuid::Uuid::now_v7().to_string(),
        number: crate::store::next_number(conn, "nonconformity", "NC")?,
        source: raised.source.to_owned(),
        source_ref: raised.source_ref,
        clause: raised.clause,
        description: raised.description,
        severity: raised.severity,
        state: "open".to_owned(),
        reaction: String::new(),
        root_cause: String::new(),
        corrective_action: String::new(),
        action_owner: String::new(),
        action_due: None,
        effective: None,
        effectiveness_notes: String::new(),
        raised_by: actor.to_owned(),
        created_at: now.naive_utc(),
        updated_at: now.naive_utc(),
        closed_at: None,
    })
}

/// Issues the approved version `version_id`: it becomes the document's current version, the
/// one before is superseded. A version issued already is answered the same again.
fn issue(
    conn: &mut AnyConnection,
    version_id: &str,
    now: DateTime<Utc>,
) -> Result<Result<Value, String>, DbError> {
    let Some(mut version) = rows::find_version_row(conn, version_id)? else {
        return Ok(Err(format!("no document version {version_id}")));
    };
    let Some(mut document) = rows::find_document(conn, &version.document_id)? else {
        return Ok(Err(format!("no document {}", version.document_id)));
    };
    let answer = json!({"document": document.reference, "version": version.version});
    if version.status == "approved" {
        return Ok(Ok(answer));
    }
    if version.status != "in_review" {
        return Ok(Err(format!(
            "version {} is {}, not in review",
            version.version, version.status
        )));
    }
    for mut older in rows::versions(conn, &document.id)? {
        if older.status == "approved" {
            older.status = "superseded".to_owned();
            older.updated_at = now.naive_utc();
            rows::save_version(conn, &older, false)?;
        }
    }
    version.status = "approved".to_owned();
    version.approved_at = Some(now.naive_utc());
    version.instance_outcome = "approved".to_owned();
    version.updated_at = now.naive_utc();
    rows::save_version(conn, &version, false)?;
    document.status = "approved".to_owned();
    document.current_version = Some(version.version);
    document.approved_at = Some(now.naive_utc());
    document.updated_at = now.naive_utc();
    rows::save_document(conn, &document, false)?;
    audit(
        conn,
        SYSTEM,
        "document.issued",
        "document",
        &document.id,
        &version,
        now,
    )?;
    Ok(Ok(answer))
}

fn reply(command: &Command, result: Result<Value, String>, now: DateTime<Utc>) -> Envelope {
    let (ok, error, output) = match result {
        Ok(output) => (true, String::new(), output.to_string()),
        Err(error) => (false, error, String::new()),
    };
    Envelope {
        id: uuid::Uuid::now_v7(),
        event_type: ISSUED.to_owned(),
        source: crate::store::SOURCE.to_owned(),
        subject: command.business_key.clone(),
        time: now,
        correlation_id: Some(command.correlation_id.clone()),
        causation_id: None,
        actor: Some(SYSTEM.to_owned()),
        payload: CommandReply {
            correlation_id: command.correlation_id.clone(),
            ok,
            error,
            output_json: output,
        }
        .encode_to_vec(),
    }
}

/// What an event does beyond the ledger.
enum Effect {
    None,
    Issue(Command),
    Rejected(String),
    Nonconformity(Raised),
}

fn effect(envelope: &Envelope, config: NonconformityConfig) -> Result<Effect, HandleError> {
    let payload = envelope.payload.as_slice();
    let bad = |e: meridian_proto::DecodeError| {
        HandleError::Malformed(format!("{}: {e}", envelope.event_type))
    };
    Ok(match envelope.event_type.as_str() {
        ISSUE => {
            let command = Command::decode(payload).map_err(bad)?;
            if command.correlation_id.is_empty() {
                return Err(HandleError::Malformed(
                    "a command without a correlation id".to_owned(),
                ));
            }
            Effect::Issue(command)
        }
        "workflow.instance.completed" => {
            let done = InstanceCompleted::decode(payload).map_err(bad)?;
            if done.definition == "document-approval" && done.outcome == "rejected" {
                Effect::Rejected(done.business_key)
            } else {
                Effect::None
            }
        }
        "service_level.sla.breached" if config.from_sla_breaches => {
            let breach =
                meridian_proto::service_level::v1::SlaClockEvent::decode(payload).map_err(bad)?;
            Effect::Nonconformity(Raised {
                source: "sla_breach",
                source_ref: format!("sla:{}", breach.clock_id),
                clause: "8.3.3".to_owned(),
                description: format!(
                    "{} {} target of {} breached on {} ({}, priority {})",
                    breach.agreement_kind.to_uppercase(),
                    breach.metric,
                    breach.agreement_name,
                    breach.number,
                    breach.service,
                    breach.priority
                ),
                severity: if breach.priority == 1 {
                    "major"
                } else {
                    "minor"
                }
                .to_owned(),
            })
        }
        "relationship.complaint.escalated" if config.from_complaints => {
            let complaint =
                meridian_proto::relationship::v1::ComplaintChanged::decode(payload).map_err(bad)?;
            Effect::Nonconformity(Raised {
                source: "complaint",
                source_ref: format!("complaint:{}", complaint.id),
                clause: "8.3.2".to_owned(),
                description: format!(
                    "Complaint {} of {} not resolved in time: {}",
                    complaint.number, complaint.customer, complaint.summary
                ),
                severity: "minor".to_owned(),
            })
        }
        _ => Effect::None,
    })
}

/// Applies one message: into the ledger, then (when it is new to the ledger) its effect, in one
/// transaction.
///
/// # Errors
/// [`HandleError::Malformed`] for a payload its effect cannot decode;
/// [`HandleError::Transient`] when the database fails.
pub async fn apply(svc: &Governance, envelope: Envelope) -> Result<(), HandleError> {
    let effect = effect(&envelope, svc.config.nonconformities)?;
    let now = meridian_chassis::clock::to_micros(svc.clock.now());
    let key = svc.key.clone();
    svc.db
        .transaction(move |conn| -> Result<(), DbError> {
            if crate::ledger::append(conn, &key, &envelope, now)?.is_none() {
                return Ok(());
            }
            match effect {
                Effect::None => {}
                Effect::Issue(command) => {
                    let input: Value =
                        serde_json::from_str(&command.input_json).unwrap_or_default();
                    let version = input["document_id"]
                        .as_str()
                        .map_or_else(|| command.business_key.clone(), str::to_owned);
                    let result = issue(conn, &version, now)?;
                    meridian_chassis::outbox::enqueue(conn, &reply(&command, result, now))?;
                }
                Effect::Rejected(version_id) => {
                    if let Some(mut version) = rows::find_version_row(conn, &version_id)?
                        && version.status == "in_review"
                    {
                        version.status = "draft".to_owned();
                        version.instance_outcome = "rejected".to_owned();
                        version.updated_at = now.naive_utc();
                        rows::save_version(conn, &version, false)?;
                        audit(
                            conn,
                            SYSTEM,
                            "document.rejected",
                            "document",
                            &version.document_id,
                            &version,
                            now,
                        )?;
                    }
                }
                Effect::Nonconformity(raised) => {
                    let row = new_nonconformity(conn, raised, SYSTEM, now)?;
                    raise_nonconformity(conn, row, SYSTEM, now)?;
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| HandleError::Transient(e.to_string()))?;
    svc.waker.wake();
    Ok(())
}

/// Starts consuming every event into the service's database.
pub fn start(bus: &Bus, queue_prefix: &str, svc: Governance) {
    let subscription = Subscription {
        queue: format!("{queue_prefix}governance"),
        bindings: vec!["#".to_owned()],
    };
    bus.consume(
        subscription,
        Arc::new(move |envelope: Envelope| {
            let svc = svc.clone();
            async move { apply(&svc, envelope).await }
        }),
    );
}
