//! What the service-level service consumes: resolution's incident and service request events,
//! kept as each ticket's history (once each, inbox), after which the ticket's clocks are
//! recomputed in the same transaction; and what reports need of control's changes and
//! relationship's satisfaction scores.

use std::sync::Arc;

use meridian_chassis::bus::{Bus, Envelope, HandleError, Subscription};
use meridian_chassis::db::DbError;
use meridian_chassis::inbox;
use meridian_proto::Message;
use meridian_proto::resolution::v1::{
    Incident, IncidentAssigned, IncidentCancelled, IncidentClosed, IncidentCreated,
    IncidentEscalated, IncidentMajorDeclared, IncidentPriorityChanged, IncidentReopened,
    IncidentResolved, IncidentState, IncidentStateChanged, IncidentUpdated, RequestChanged,
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

/// A service request event as a ticket event: submitted → new, approved → assigned (both
/// before the response), in fulfilment → in progress (responded), fulfilled → resolved,
/// closed or rejected (answered) → closed, cancelled → cancelled; timed at
/// `service_level.request_priority`.
fn request_event(
    envelope: &Envelope,
    priority: i32,
) -> Result<Option<TicketEventRow>, HandleError> {
    if !envelope.event_type.starts_with("resolution.request.") {
        return Ok(None);
    }
    let request = RequestChanged::decode(envelope.payload.as_slice())
        .map_err(|e| HandleError::Malformed(format!("{}: {e}", envelope.event_type)))?;
    if request.id.is_empty() {
        return Err(HandleError::Malformed("a request without an id".to_owned()));
    }
    let state = match request.state.as_str() {
        "submitted" => "new",
        "approved" => "assigned",
        "in_fulfilment" => "in_progress",
        "fulfilled" => "resolved",
        "closed" | "rejected" => "closed",
        "cancelled" => "cancelled",
        other => {
            return Err(HandleError::Malformed(format!(
                "unknown request state {other}"
            )));
        }
    };
    Ok(Some(TicketEventRow {
        id: envelope.id.to_string(),
        ticket_id: request.id,
        ticket_kind: "request".to_owned(),
        number: request.number,
        at: envelope.time.naive_utc(),
        event_type: envelope.event_type.clone(),
        state: state.to_owned(),
        pending_reason: String::new(),
        priority,
        group_name: String::new(),
        service: request.service,
        major: false,
    }))
}

/// What reporting keeps of other services' events.
enum ReadModel {
    Change(crate::store::operations::ChangeRow),
    ChangeState { id: String, state: String },
    Satisfaction(crate::store::operations::SatisfactionRow),
}

/// Decodes a change (control) or satisfaction (relationship) event; `None` for another type.
fn read_model(envelope: &Envelope) -> Result<Option<ReadModel>, HandleError> {
    use crate::store::operations::{ChangeRow, SatisfactionRow};
    use meridian_proto::control::v1::{ChangeStateChanged, ChangeSubmitted};
    use meridian_proto::relationship::v1::SatisfactionRecorded;
    let at = envelope.time.naive_utc();
    let bad = |e: meridian_proto::DecodeError| {
        HandleError::Malformed(format!("{}: {e}", envelope.event_type))
    };
    Ok(Some(match envelope.event_type.as_str() {
        "control.change.submitted" => {
            let m = ChangeSubmitted::decode(envelope.payload.as_slice()).map_err(bad)?;
            ReadModel::Change(ChangeRow {
                id: m.id,
                number: m.number,
                configuration_items: serde_json::to_string(&m.configuration_items)
                    .unwrap_or_default(),
                state: "submitted".to_owned(),
                submitted_at: at,
                updated_at: at,
            })
        }
        "control.change.state_changed" => {
            let m = ChangeStateChanged::decode(envelope.payload.as_slice()).map_err(bad)?;
            ReadModel::ChangeState {
                id: m.id,
                state: m.to,
            }
        }
        "relationship.satisfaction.recorded" => {
            let m = SatisfactionRecorded::decode(envelope.payload.as_slice()).map_err(bad)?;
            if !(1..=5).contains(&m.score) || m.service.is_empty() || m.response_id.is_empty() {
                return Err(HandleError::Malformed(
                    "a score is 1 to 5, for a service, with a response id".to_owned(),
                ));
            }
            ReadModel::Satisfaction(SatisfactionRow {
                id: m.response_id,
                service: m.service,
                customer: m.customer,
                score: m.score,
                at,
            })
        }
        _ => return Ok(None),
    }))
}

fn keep(
    conn: &mut meridian_chassis::db::AnyConnection,
    model: &ReadModel,
    at: chrono::NaiveDateTime,
) -> Result<(), DbError> {
    use crate::store::operations;
    match model {
        ReadModel::Change(row) => operations::save_change(conn, row)?,
        ReadModel::ChangeState { id, state } => operations::change_state(conn, id, state, at)?,
        ReadModel::Satisfaction(row) => operations::add_satisfaction(conn, row)?,
    }
    Ok(())
}

/// A major incident is an outage of its service until it is resolved (8.7.1).
fn outages(
    conn: &mut meridian_chassis::db::AnyConnection,
    row: &TicketEventRow,
) -> Result<(), DbError> {
    use crate::store::operations::{self, OutageRow};
    let open = operations::outage_of_ticket(conn, &row.ticket_id)?;
    let down = row.major && !matches!(row.state.as_str(), "resolved" | "closed" | "cancelled");
    match (open, down) {
        (None, true) if row.event_type == "resolution.incident.major_declared" => {
            operations::save_outage(
                conn,
                &OutageRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    service: row.service.clone(),
                    started_at: row.at,
                    ended_at: None,
                    planned: false,
                    source: "major_incident".to_owned(),
                    ticket_id: Some(row.ticket_id.clone()),
                    description: format!("major incident {}", row.number),
                    investigation: None,
                    recorded_by: "system:resolution".to_owned(),
                },
            )?;
        }
        (Some(outage), false) => {
            operations::save_outage(
                conn,
                &OutageRow {
                    ended_at: Some(row.at),
                    ..outage
                },
            )?;
        }
        _ => {}
    }
    Ok(())
}

/// Applies one message.
///
/// # Errors
/// [`HandleError::Malformed`] for a payload that does not decode; [`HandleError::Transient`]
/// when the database fails.
pub async fn apply(svc: &ServiceLevel, envelope: Envelope) -> Result<(), HandleError> {
    if let Some(row) = request_event(&envelope, svc.config.request_priority)? {
        return record(svc, row).await;
    }
    let Some(incident) = incident(&envelope)? else {
        let Some(model) = read_model(&envelope)? else {
            return Ok(());
        };
        let now = svc.clock.now();
        let (message_id, at) = (envelope.id.to_string(), envelope.time.naive_utc());
        return svc
            .db
            .transaction(move |conn| -> Result<(), DbError> {
                if inbox::claim(conn, CONSUMER, &message_id, now)? {
                    keep(conn, &model, at)?;
                }
                Ok(())
            })
            .await
            .map_err(|e| HandleError::Transient(e.to_string()));
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
    record(svc, row).await
}

/// Keeps a ticket event (once) and recomputes the ticket's clocks, in one transaction.
async fn record(svc: &ServiceLevel, row: TicketEventRow) -> Result<(), HandleError> {
    let now = svc.clock.now();
    let message_id = row.id.clone();
    svc.db
        .transaction(move |conn| -> Result<(), DbError> {
            if !inbox::claim(conn, CONSUMER, &message_id, now)? {
                return Ok(());
            }
            if clocks::add_event(conn, &row)? {
                clocks::recompute(conn, &row.ticket_id, now)?;
                outages(conn, &row)?;
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
        bindings: vec![
            "resolution.incident.*".to_owned(),
            "resolution.request.*".to_owned(),
            "control.change.submitted".to_owned(),
            "control.change.state_changed".to_owned(),
            "relationship.satisfaction.recorded".to_owned(),
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
