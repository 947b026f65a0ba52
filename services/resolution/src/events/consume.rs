//! What the resolution service consumes, each message once (inbox):
//! - `service_level.service.*` → the catalogue read model, with the request items each service
//!   offers;
//! - `control.deployment.failed` → an incident for the failed deployment (8.5.3 asks that a
//!   failed deployment be handled as an incident).
//! - `control.change.raised` → the change raised for a problem's fix, on the problem;
//! - `workflow.instance.completed` of the major incident procedure → its review, as a work note
//!   on the incident;
//! - `control.ci.changed` → the CMDB read model (a CI named on an incident by its name is
//!   recorded by its id).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use meridian_chassis::bus::{Bus, Envelope, HandleError, Subscription};
use meridian_chassis::db::{Db, DbError};
use meridian_chassis::{Clock, inbox};
use meridian_proto::Message;
use meridian_proto::service_level::v1::{Criticality, ServicePublished, ServiceStatus};

use meridian_proto::control::v1::{ChangeRaised, ConfigurationItemChanged, DeploymentRecorded};
use meridian_proto::workflow::v1::InstanceCompleted;
use uuid::Uuid;

use crate::config::ProblemsConfig;
use crate::domain::incident::{Incident, NewIncident, NoteKind};
use crate::domain::priority::{Level, PriorityMatrix};
use crate::store::catalogue::{self, ServiceRow};
use crate::store::cis::{self, CiRow};
use crate::store::incidents::{self, Context};
use crate::store::problems;
use crate::store::requests::{self, ItemRow};

/// The inbox name of this consumer.
pub const CONSUMER: &str = "resolution.catalogue";

/// Runs `apply` in one transaction with the claim of `envelope`'s id in the inbox, unless it was
/// applied already; `apply` gets the time (whole microseconds).
async fn once<F>(
    db: &Db,
    clock: &dyn Clock,
    envelope: &Envelope,
    apply: F,
) -> Result<(), HandleError>
where
    F: FnOnce(&mut meridian_chassis::db::AnyConnection, DateTime<Utc>) -> Result<(), DbError>
        + Send
        + 'static,
{
    let (id, now) = (
        envelope.id.to_string(),
        meridian_chassis::clock::to_micros(clock.now()),
    );
    db.transaction(move |conn| -> Result<(), DbError> {
        if inbox::claim(conn, CONSUMER, &id, now)? {
            apply(conn, now)?;
        }
        Ok(())
    })
    .await
    .map_err(|e| HandleError::Transient(e.to_string()))
}

/// Decodes a `service_level.service.published` message into read-model rows: the service and
/// the request items it offers.
///
/// # Errors
/// [`HandleError::Malformed`] for another type, a payload that does not decode, no id, or
/// request items that are not a list of items.
pub fn decode(envelope: &Envelope) -> Result<(ServiceRow, Vec<ItemRow>), HandleError> {
    if envelope.event_type != "service_level.service.published" {
        return Err(HandleError::Malformed(format!(
            "unexpected event type {}",
            envelope.event_type
        )));
    }
    let message = ServicePublished::decode(envelope.payload.as_slice())
        .map_err(|e| HandleError::Malformed(format!("payload does not decode: {e}")))?;
    if message.id.is_empty() {
        return Err(HandleError::Malformed("service id is empty".to_owned()));
    }
    let criticality = match message.criticality() {
        Criticality::Low => "low",
        Criticality::Medium | Criticality::Unspecified => "medium",
        Criticality::High => "high",
        Criticality::Critical => "critical",
    };
    let status = match message.status() {
        ServiceStatus::Pipeline => "pipeline",
        ServiceStatus::Live | ServiceStatus::Unspecified => "live",
        ServiceStatus::Retired => "retired",
    };
    let items = requests::parse_items(&message.id, &message.request_items_json)
        .map_err(|e| HandleError::Malformed(format!("request_items_json: {e}")))?;
    Ok((
        ServiceRow {
            id: message.id,
            name: message.name,
            criticality: criticality.to_owned(),
            status: status.to_owned(),
            revision: message.revision,
        },
        items,
    ))
}

/// Applies one message: claims its id in the inbox and upserts the service and its request
/// items (unless what is held is newer), in one transaction.
///
/// # Errors
/// [`HandleError::Malformed`] as [`decode`]; [`HandleError::Transient`] when the database fails.
pub async fn apply(db: &Db, clock: &dyn Clock, envelope: Envelope) -> Result<(), HandleError> {
    let (row, items) = decode(&envelope)?;
    once(db, clock, &envelope, move |conn, _| {
        if catalogue::upsert(conn, &row)? {
            requests::replace_items(conn, &row.id, &items)?;
        }
        Ok(())
    })
    .await
}

/// A CI was created or changed in control.
pub const CI_CHANGED: &str = "control.ci.changed";

/// Applies a `control.ci.changed` message to the CMDB read model (once; an older revision than
/// the one held is ignored).
///
/// # Errors
/// [`HandleError::Malformed`] for a payload that does not decode or has no id;
/// [`HandleError::Transient`] when the database fails.
pub async fn apply_ci(db: &Db, clock: &dyn Clock, envelope: Envelope) -> Result<(), HandleError> {
    let ci = ConfigurationItemChanged::decode(envelope.payload.as_slice())
        .map_err(|e| HandleError::Malformed(format!("payload does not decode: {e}")))?;
    if ci.id.is_empty() {
        return Err(HandleError::Malformed("CI id is empty".to_owned()));
    }
    let row = CiRow {
        id: ci.id,
        name: ci.name,
        class: ci.class,
        owner: ci.owner,
        status: ci.status,
        revision: ci.revision,
    };
    once(db, clock, &envelope, move |conn, _| {
        cis::upsert(conn, &row)?;
        Ok(())
    })
    .await
}

/// A change control raised at another record's request.
pub const CHANGE_RAISED: &str = "control.change.raised";

/// Records on its problem a change control raised for the problem's fix (`origin`
/// `problem:<number>`); other origins are not resolution's.
///
/// # Errors
/// [`HandleError::Malformed`] for a payload that does not decode; [`HandleError::Transient`] when
/// the database fails.
pub async fn apply_change_raised(
    db: &Db,
    clock: &dyn Clock,
    envelope: Envelope,
) -> Result<(), HandleError> {
    let raised = ChangeRaised::decode(envelope.payload.as_slice())
        .map_err(|e| HandleError::Malformed(format!("payload does not decode: {e}")))?;
    let Some(number) = raised.origin.strip_prefix("problem:").map(str::to_owned) else {
        return Ok(());
    };
    once(db, clock, &envelope, move |conn, now| {
        if let Some(problem) = problems::find(conn, &number)? {
            problems::activity(
                conn,
                &problem.id,
                &raised.requester,
                "change_raised",
                &serde_json::json!({"change": raised.number, "change_id": raised.change_id, "title": raised.title}),
                now,
            )?;
        } else {
            tracing::warn!(%number, change = %raised.number, "a change was raised for an unknown problem");
        }
        Ok(())
    })
    .await
}

/// A workflow instance ended.
pub const INSTANCE_COMPLETED: &str = "workflow.instance.completed";
/// The major incident procedure.
const MAJOR_INCIDENT: &str = "major-incident";

/// Keeps the record of a major incident's review on the incident: when the major incident
/// procedure completes, its review (cause, lessons, whether a problem is needed, who reviewed)
/// becomes a work note. Other workflows are not resolution's; a closed incident takes no note
/// (the review stays in the workflow's record).
///
/// # Errors
/// [`HandleError::Malformed`] for a payload that does not decode; [`HandleError::Transient`] when
/// the database fails.
pub async fn apply_instance_completed(
    db: &Db,
    clock: &dyn Clock,
    envelope: Envelope,
) -> Result<(), HandleError> {
    let done = InstanceCompleted::decode(envelope.payload.as_slice())
        .map_err(|e| HandleError::Malformed(format!("payload does not decode: {e}")))?;
    if done.definition != MAJOR_INCIDENT {
        return Ok(());
    }
    let Ok(incident_id) = Uuid::parse_str(&done.business_key) else {
        return Err(HandleError::Malformed(format!(
            "business key {} is not an incident id",
            done.business_key
        )));
    };
    let variables: serde_json::Value =
        serde_json::from_str(&done.variables_json).unwrap_or_default();
    let review = &variables["review"];
    let text = |name: &str| review[name].as_str().unwrap_or_default().to_owned();
    let reviewer = Some(text("by"))
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "system:workflow".to_owned());
    let body = format!(
        "Major incident review by {reviewer}. Cause: {}. Lessons: {}. {}",
        text("cause"),
        text("lessons"),
        if review["problem_needed"].as_bool() == Some(true) {
            "A problem record is needed."
        } else {
            "No problem record is needed."
        }
    );
    once(db, clock, &envelope, move |conn, now| {
        let Some(before) = incidents::load_for_update(conn, incident_id)? else {
            return Ok(());
        };
        let mut after = before.clone();
        match after.note(NoteKind::WorkNote, body, now) {
            Ok(events) => {
                let ctx = Context {
                    actor: &reviewer,
                    now,
                    correlation_id: None,
                };
                incidents::save(conn, &before, &after, &events, ctx)?;
            }
            Err(refused) => {
                tracing::info!(incident = %before.number, %refused, "the major incident review is kept in its workflow only");
            }
        }
        Ok(())
    })
    .await
}

/// The event of a failed deployment.
pub const DEPLOYMENT_FAILED: &str = "control.deployment.failed";

/// Records an incident for a failed deployment: priority from the matrix (high impact, high
/// urgency), the deployment's CIs, its notes; a recurrence of a fixed problem reopens its review.
///
/// # Errors
/// [`HandleError::Malformed`] for a payload that does not decode; [`HandleError::Transient`] when
/// the database fails.
pub async fn apply_deployment_failed(
    db: &Db,
    clock: &dyn Clock,
    matrix: PriorityMatrix,
    problems: ProblemsConfig,
    envelope: Envelope,
) -> Result<(), HandleError> {
    let failed = DeploymentRecorded::decode(envelope.payload.as_slice())
        .map_err(|e| HandleError::Malformed(format!("payload does not decode: {e}")))?;
    let correlation = envelope.correlation_id.clone();
    once(db, clock, &envelope, move |conn, now| {
        let number = incidents::next_number(conn)?;
        let configuration_items = cis::resolve(conn, &failed.configuration_items)?;
        let fields = NewIncident {
            title: format!(
                "Deployment of {} {} to {} failed",
                failed.release_name, failed.version, failed.environment
            ),
            description: format!(
                "Deployment {} of release {} failed.\n\n{}",
                failed.deployment_id, failed.release_id, failed.notes
            ),
            caller: "system:control".to_owned(),
            service: None,
            configuration_items,
            category: Some("deployment".to_owned()),
            impact: Level::High,
            urgency: Level::High,
            assignment_group: None,
            assignee: None,
        };
        let (incident, events) = Incident::open(
            Uuid::now_v7(),
            number,
            fields,
            &matrix,
            "system:control",
            now,
        );
        let ctx = Context {
            actor: "system:control",
            now,
            correlation_id: correlation.as_deref(),
        };
        incidents::insert(conn, &incident, &events, ctx)?;
        if let Some(since) = problems.recurrence_since(now) {
            crate::store::problems::detect_recurrences(conn, &[&incident], since, now)?;
        }
        Ok(())
    })
    .await
}

/// Starts consuming catalogue events, CI changes and failed deployments into `db`.
pub fn start(
    bus: &Bus,
    queue_prefix: &str,
    db: Db,
    clock: Arc<dyn Clock>,
    matrix: PriorityMatrix,
    problems: ProblemsConfig,
) {
    let subscription = Subscription {
        queue: format!("{queue_prefix}resolution"),
        bindings: vec![
            "service_level.service.*".to_owned(),
            DEPLOYMENT_FAILED.to_owned(),
            CI_CHANGED.to_owned(),
            CHANGE_RAISED.to_owned(),
            INSTANCE_COMPLETED.to_owned(),
        ],
    };
    bus.consume(
        subscription,
        Arc::new(move |envelope: Envelope| {
            let db = db.clone();
            let clock = clock.clone();
            async move {
                if envelope.event_type == DEPLOYMENT_FAILED {
                    apply_deployment_failed(&db, &*clock, matrix, problems, envelope).await
                } else if envelope.event_type == CI_CHANGED {
                    apply_ci(&db, &*clock, envelope).await
                } else if envelope.event_type == CHANGE_RAISED {
                    apply_change_raised(&db, &*clock, envelope).await
                } else if envelope.event_type == INSTANCE_COMPLETED {
                    apply_instance_completed(&db, &*clock, envelope).await
                } else {
                    apply(&db, &*clock, envelope).await
                }
            }
        }),
    );
}
