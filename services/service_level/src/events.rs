//! What the service-level service consumes: resolution's incident events, kept as each ticket's
//! history (once each, inbox), after which the ticket's clocks are recomputed in the same
//! transaction.

use std::sync::Arc;

use meridian_chassis::bus::{Bus, Envelope, HandleError, Subscription};
use meridian_chassis::db::DbError;
use meridian_chassis::inbox;
use meridian_proto::Message;
use meridian_proto::resolution::v1::{
    Incident, IncidentAssigned, IncidentCancelled, IncidentClosed, IncidentCreated,
    IncidentEscalated, IncidentMajorDeclared, IncidentPriorityChanged, IncidentReopened,
    IncidentResolved, IncidentState, IncidentStateChanged, IncidentUpdated,
};

use crate::ServiceLevel;
use crate::store::clocks::{self, TicketEventRow};

/// The inbox name of this consumer.
pub const CONSUMER: &str = "service_level.tickets";

fn state(incident: &Incident) -> &'static str {
    match IncidentState::try_from(incident.state).unwrap_or(IncidentState::Unspecified) {
        IncidentState::New | IncidentState::Unspecified => "new",
        IncidentState::Assigned => "assigned",
        IncidentState::InProgress => "in_progress",
        IncidentState::Pending => "pending",
        IncidentState::Resolved => "resolved",
        IncidentState::Closed => "closed",
        IncidentState::Cancelled => "cancelled",
    }
}

/// The incident an event carries.
fn incident(envelope: &Envelope) -> Result<Option<Incident>, HandleError> {
    let payload = envelope.payload.as_slice();
    let bad = |e: meridian_proto::DecodeError| {
        HandleError::Malformed(format!("{}: {e}", envelope.event_type))
    };
    let incident = match envelope.event_type.as_str() {
        "resolution.incident.created" => IncidentCreated::decode(payload).map_err(bad)?.incident,
        "resolution.incident.updated" => IncidentUpdated::decode(payload).map_err(bad)?.incident,
        "resolution.incident.assigned" => IncidentAssigned::decode(payload).map_err(bad)?.incident,
        "resolution.incident.state_changed" => {
            IncidentStateChanged::decode(payload).map_err(bad)?.incident
        }
        "resolution.incident.escalated" => {
            IncidentEscalated::decode(payload).map_err(bad)?.incident
        }
        "resolution.incident.priority_changed" => {
            IncidentPriorityChanged::decode(payload)
                .map_err(bad)?
                .incident
        }
        "resolution.incident.resolved" => IncidentResolved::decode(payload).map_err(bad)?.incident,
        "resolution.incident.closed" => IncidentClosed::decode(payload).map_err(bad)?.incident,
        "resolution.incident.reopened" => IncidentReopened::decode(payload).map_err(bad)?.incident,
        "resolution.incident.cancelled" => {
            IncidentCancelled::decode(payload).map_err(bad)?.incident
        }
        "resolution.incident.major_declared" => {
            IncidentMajorDeclared::decode(payload)
                .map_err(bad)?
                .incident
        }
        _ => return Ok(None),
    };
    incident
        .map(Some)
        .ok_or_else(|| HandleError::Malformed(format!("{}: no incident", envelope.event_type)))
}

/// Applies one message.
///
/// # Errors
/// [`HandleError::Malformed`] for a payload that does not decode; [`HandleError::Transient`]
/// when the database fails.
pub async fn apply(svc: &ServiceLevel, envelope: Envelope) -> Result<(), HandleError> {
    let Some(incident) = incident(&envelope)? else {
        return Ok(());
    };
    if incident.id.is_empty() {
        return Err(HandleError::Malformed(
            "an incident without an id".to_owned(),
        ));
    }
    let row = TicketEventRow {
        id: envelope.id.to_string(),
        ticket_id: incident.id.clone(),
        ticket_kind: "incident".to_owned(),
        number: incident.number.clone(),
        // The time of the change itself (the incident's updated_at), else the message's.
        at: incident
            .updated_at
            .as_ref()
            .and_then(|t| chrono::DateTime::from_timestamp_micros(t.unix_micros))
            .unwrap_or(envelope.time)
            .naive_utc(),
        event_type: envelope.event_type.clone(),
        state: state(&incident).to_owned(),
        pending_reason: incident.pending_reason.clone(),
        priority: incident.priority,
        group_name: incident.assignment_group.clone(),
        service: incident.service.clone(),
        major: incident.major,
    };
    let now = svc.clock.now();
    let message_id = envelope.id.to_string();
    svc.db
        .transaction(move |conn| -> Result<(), DbError> {
            if !inbox::claim(conn, CONSUMER, &message_id, now)? {
                return Ok(());
            }
            if clocks::add_event(conn, &row)? {
                clocks::recompute(conn, &row.ticket_id, now)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| HandleError::Transient(e.to_string()))?;
    svc.waker.wake();
    svc.checks.notify_one();
    Ok(())
}

/// Starts consuming resolution's incident events.
pub fn start(bus: &Bus, queue_prefix: &str, svc: ServiceLevel) {
    let subscription = Subscription {
        queue: format!("{queue_prefix}service-level"),
        bindings: vec!["resolution.incident.*".to_owned()],
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
