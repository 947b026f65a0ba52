//! Domain events → protobuf messages → envelopes for the outbox.

use meridian_chassis::bus::Envelope;
use meridian_proto::Message;
use meridian_proto::common::v1::Timestamp;
use meridian_proto::resolution::v1 as pb;
use uuid::Uuid;

use crate::domain::incident::{EscalationKind, Incident, IncidentEvent, State};
use crate::store::incidents::Context;

fn state(state: State) -> pb::IncidentState {
    match state {
        State::New => pb::IncidentState::New,
        State::Assigned => pb::IncidentState::Assigned,
        State::InProgress => pb::IncidentState::InProgress,
        State::Pending => pb::IncidentState::Pending,
        State::Resolved => pb::IncidentState::Resolved,
        State::Closed => pb::IncidentState::Closed,
        State::Cancelled => pb::IncidentState::Cancelled,
    }
}

fn timestamp(at: chrono::DateTime<chrono::Utc>) -> Option<Timestamp> {
    Some(Timestamp {
        unix_micros: at.timestamp_micros(),
    })
}

/// The incident as every event carries it.
pub fn snapshot(incident: &Incident) -> pb::Incident {
    pb::Incident {
        id: incident.id.to_string(),
        number: incident.number.clone(),
        title: incident.title.clone(),
        caller: incident.caller.clone(),
        service: incident.service.clone().unwrap_or_default(),
        configuration_items: incident.configuration_items.clone(),
        category: incident.category.clone().unwrap_or_default(),
        impact: incident.impact.as_str().to_owned(),
        urgency: incident.urgency.as_str().to_owned(),
        priority: i32::from(incident.priority.get()),
        state: state(incident.state).into(),
        pending_reason: incident
            .pending_reason
            .map(|r| r.as_str().to_owned())
            .unwrap_or_default(),
        assignment_group: incident.assignment_group.clone().unwrap_or_default(),
        assignee: incident.assignee.clone().unwrap_or_default(),
        escalation_level: incident.escalation_level,
        major: incident.major,
        major_manager: incident.major_manager.clone().unwrap_or_default(),
        resolution_code: incident
            .resolution_code
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default(),
        created_at: timestamp(incident.created_at),
        updated_at: timestamp(incident.updated_at),
        version: incident.version,
    }
}

fn payload(incident: &Incident, event: &IncidentEvent) -> Option<Vec<u8>> {
    let snapshot = Some(snapshot(incident));
    let bytes = match event {
        IncidentEvent::Created => pb::IncidentCreated { incident: snapshot }.encode_to_vec(),
        IncidentEvent::Updated { fields } => pb::IncidentUpdated {
            incident: snapshot,
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        }
        .encode_to_vec(),
        IncidentEvent::Assigned {
            previous_group,
            previous_assignee,
        } => pb::IncidentAssigned {
            incident: snapshot,
            previous_group: previous_group.clone().unwrap_or_default(),
            previous_assignee: previous_assignee.clone().unwrap_or_default(),
        }
        .encode_to_vec(),
        IncidentEvent::StateChanged { from, reason } => pb::IncidentStateChanged {
            incident: snapshot,
            from: state(*from).into(),
            reason: reason.clone().unwrap_or_default(),
        }
        .encode_to_vec(),
        IncidentEvent::Escalated {
            kind,
            reason,
            previous_group,
        } => pb::IncidentEscalated {
            incident: snapshot,
            kind: match kind {
                EscalationKind::Functional => pb::EscalationKind::Functional,
                EscalationKind::Hierarchical => pb::EscalationKind::Hierarchical,
            }
            .into(),
            reason: reason.clone(),
            previous_group: previous_group.clone().unwrap_or_default(),
        }
        .encode_to_vec(),
        IncidentEvent::PriorityChanged {
            previous,
            override_reason,
        } => pb::IncidentPriorityChanged {
            incident: snapshot,
            previous_priority: i32::from(previous.get()),
            override_reason: override_reason.clone().unwrap_or_default(),
        }
        .encode_to_vec(),
        IncidentEvent::Resolved => pb::IncidentResolved {
            incident: snapshot,
            resolution_notes: incident.resolution_notes.clone().unwrap_or_default(),
        }
        .encode_to_vec(),
        IncidentEvent::Closed => pb::IncidentClosed { incident: snapshot }.encode_to_vec(),
        IncidentEvent::Reopened { reason } => pb::IncidentReopened {
            incident: snapshot,
            reason: reason.clone(),
        }
        .encode_to_vec(),
        IncidentEvent::Cancelled { reason } => pb::IncidentCancelled {
            incident: snapshot,
            reason: reason.clone(),
        }
        .encode_to_vec(),
        IncidentEvent::MajorDeclared { manager, reason } => pb::IncidentMajorDeclared {
            incident: snapshot,
            manager: manager.clone(),
            reason: reason.clone(),
        }
        .encode_to_vec(),
        IncidentEvent::Noted { .. } => return None,
    };
    Some(bytes)
}

/// The envelopes of `events` (notes are not published).
pub fn envelopes(incident: &Incident, events: &[IncidentEvent], ctx: Context<'_>) -> Vec<Envelope> {
    events
        .iter()
        .filter_map(|event| {
            let name = event.name()?;
            Some(Envelope {
                id: Uuid::now_v7(),
                event_type: format!("resolution.incident.{name}"),
                source: super::SOURCE.to_owned(),
                subject: incident.id.to_string(),
                time: ctx.now,
                correlation_id: ctx.correlation_id.map(str::to_owned),
                causation_id: None,
                actor: Some(ctx.actor.to_owned()),
                payload: payload(incident, event)?,
            })
        })
        .collect()
}
