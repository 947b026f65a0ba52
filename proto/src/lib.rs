//! Meridian's bus contract: the protobuf messages every service publishes and consumes.
//!
//! The `.proto` files under `proto/meridian/` are the source of truth; `build.rs` compiles them
//! with protox (no system `protoc`) and prost. The CloudEvents attributes of a message live in its
//! AMQP properties and headers (see the chassis bus module), so the payloads stay plain.

/// Types shared by every event.
pub mod common {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/meridian.common.v1.rs"));
    }
}

/// Configuration management events (control service).
pub mod control {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/meridian.control.v1.rs"));
    }
}

/// Management system events (governance service).
pub mod governance {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/meridian.governance.v1.rs"));
    }
}

/// Incident management events (resolution service).
pub mod resolution {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/meridian.resolution.v1.rs"));
    }
}

/// Business relationship events (relationship service).
pub mod relationship {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/meridian.relationship.v1.rs"));
    }
}

/// Service catalogue events (service-level service).
pub mod service_level {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/meridian.service_level.v1.rs"));
    }
}

/// Workflow engine events, service task commands and their replies (workflow service).
pub mod workflow {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/meridian.workflow.v1.rs"));
    }
}

pub use prost::{DecodeError, Message};

/// Every message type of the contract, for decoding by name.
pub const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));

/// The message each published event type carries (routing key → protobuf message name).
pub const EVENT_TYPES: &[(&str, &str)] = &[
    (
        "control.ci.changed",
        "meridian.control.v1.ConfigurationItemChanged",
    ),
    (
        "control.change.submitted",
        "meridian.control.v1.ChangeSubmitted",
    ),
    (
        "control.change.state_changed",
        "meridian.control.v1.ChangeStateChanged",
    ),
    (
        "control.change.deployed",
        "meridian.control.v1.ChangeDeployed",
    ),
    ("control.change.raised", "meridian.control.v1.ChangeRaised"),
    (
        "control.gate.break_glass",
        "meridian.control.v1.GateBreakGlass",
    ),
    (
        "control.deployment.recorded",
        "meridian.control.v1.DeploymentRecorded",
    ),
    (
        "control.deployment.failed",
        "meridian.control.v1.DeploymentRecorded",
    ),
    (
        "resolution.incident.created",
        "meridian.resolution.v1.IncidentCreated",
    ),
    (
        "resolution.incident.updated",
        "meridian.resolution.v1.IncidentUpdated",
    ),
    (
        "resolution.incident.assigned",
        "meridian.resolution.v1.IncidentAssigned",
    ),
    (
        "resolution.incident.state_changed",
        "meridian.resolution.v1.IncidentStateChanged",
    ),
    (
        "resolution.incident.escalated",
        "meridian.resolution.v1.IncidentEscalated",
    ),
    (
        "resolution.incident.priority_changed",
        "meridian.resolution.v1.IncidentPriorityChanged",
    ),
    (
        "resolution.incident.resolved",
        "meridian.resolution.v1.IncidentResolved",
    ),
    (
        "resolution.incident.closed",
        "meridian.resolution.v1.IncidentClosed",
    ),
    (
        "resolution.incident.reopened",
        "meridian.resolution.v1.IncidentReopened",
    ),
    (
        "resolution.incident.cancelled",
        "meridian.resolution.v1.IncidentCancelled",
    ),
    (
        "resolution.incident.major_declared",
        "meridian.resolution.v1.IncidentMajorDeclared",
    ),
    (
        "resolution.problem.created",
        "meridian.resolution.v1.ProblemChanged",
    ),
    (
        "resolution.problem.investigated",
        "meridian.resolution.v1.ProblemChanged",
    ),
    (
        "resolution.problem.known_error",
        "meridian.resolution.v1.ProblemChanged",
    ),
    (
        "resolution.problem.resolved",
        "meridian.resolution.v1.ProblemChanged",
    ),
    (
        "resolution.problem.closed",
        "meridian.resolution.v1.ProblemChanged",
    ),
    (
        "resolution.problem.reopened",
        "meridian.resolution.v1.ProblemChanged",
    ),
    (
        "resolution.problem.cancelled",
        "meridian.resolution.v1.ProblemChanged",
    ),
    (
        "resolution.problem.workaround_used",
        "meridian.resolution.v1.ProblemChanged",
    ),
    (
        "resolution.problem.change_requested",
        "meridian.resolution.v1.ProblemChangeRequested",
    ),
    (
        "resolution.request.submitted",
        "meridian.resolution.v1.RequestChanged",
    ),
    (
        "resolution.request.approved",
        "meridian.resolution.v1.RequestChanged",
    ),
    (
        "resolution.request.rejected",
        "meridian.resolution.v1.RequestChanged",
    ),
    (
        "resolution.request.fulfilment_started",
        "meridian.resolution.v1.RequestChanged",
    ),
    (
        "resolution.request.fulfilled",
        "meridian.resolution.v1.RequestChanged",
    ),
    (
        "resolution.request.closed",
        "meridian.resolution.v1.RequestChanged",
    ),
    (
        "resolution.request.cancelled",
        "meridian.resolution.v1.RequestChanged",
    ),
    (
        "service_level.service.published",
        "meridian.service_level.v1.ServicePublished",
    ),
    (
        "service_level.sla.warning",
        "meridian.service_level.v1.SlaClockEvent",
    ),
    (
        "service_level.sla.breached",
        "meridian.service_level.v1.SlaClockEvent",
    ),
    (
        "service_level.capacity.threshold_crossed",
        "meridian.service_level.v1.CapacityThresholdCrossed",
    ),
    (
        "governance.document.submitted",
        "meridian.governance.v1.DocumentSubmitted",
    ),
    (
        "governance.nonconformity.recorded",
        "meridian.governance.v1.RecordChanged",
    ),
    (
        "governance.audit.completed",
        "meridian.governance.v1.RecordChanged",
    ),
    (
        "governance.review.held",
        "meridian.governance.v1.RecordChanged",
    ),
    (
        "relationship.satisfaction.recorded",
        "meridian.relationship.v1.SatisfactionRecorded",
    ),
    (
        "relationship.survey.sent",
        "meridian.relationship.v1.SurveySent",
    ),
    (
        "relationship.complaint.recorded",
        "meridian.relationship.v1.ComplaintChanged",
    ),
    (
        "relationship.complaint.escalated",
        "meridian.relationship.v1.ComplaintChanged",
    ),
    (
        "relationship.complaint.closed",
        "meridian.relationship.v1.ComplaintChanged",
    ),
    (
        "relationship.contract.expiring",
        "meridian.relationship.v1.ContractExpiry",
    ),
    (
        "relationship.contract.expired",
        "meridian.relationship.v1.ContractExpiry",
    ),
    (
        "relationship.supplier.review_due",
        "meridian.relationship.v1.SupplierReviewDue",
    ),
    (
        "relationship.supplier.review_completed",
        "meridian.relationship.v1.SupplierReviewCompleted",
    ),
    (
        "workflow.instance.started",
        "meridian.workflow.v1.InstanceStarted",
    ),
    (
        "workflow.instance.completed",
        "meridian.workflow.v1.InstanceCompleted",
    ),
    (
        "workflow.instance.cancelled",
        "meridian.workflow.v1.InstanceCancelled",
    ),
    ("workflow.task.created", "meridian.workflow.v1.TaskCreated"),
    (
        "workflow.task.completed",
        "meridian.workflow.v1.TaskCompleted",
    ),
    (
        "workflow.task.escalated",
        "meridian.workflow.v1.TaskEscalated",
    ),
    (
        "workflow.task.reminded",
        "meridian.workflow.v1.TaskReminded",
    ),
    ("workflow.task.decide", "meridian.workflow.v1.DecideTask"),
    (
        "workflow.task.decide.replied",
        "meridian.workflow.v1.TaskDecisionReply",
    ),
];

/// Decodes the payload of an event of `event_type` into JSON (proto field names), when the
/// contract knows the type.
///
/// # Errors
/// A known type whose payload does not decode.
pub fn decode_json(event_type: &str, payload: &[u8]) -> Result<Option<serde_json::Value>, String> {
    use std::sync::OnceLock;
    static POOL: OnceLock<Option<prost_reflect::DescriptorPool>> = OnceLock::new();
    let Some((_, name)) = EVENT_TYPES.iter().find(|(t, _)| *t == event_type) else {
        return Ok(None);
    };
    let pool = POOL
        .get_or_init(|| prost_reflect::DescriptorPool::decode(DESCRIPTORS).ok())
        .as_ref()
        .ok_or("the descriptors do not decode")?;
    let descriptor = pool
        .get_message_by_name(name)
        .ok_or_else(|| format!("no message {name}"))?;
    let message = prost_reflect::DynamicMessage::decode(descriptor, payload)
        .map_err(|e| format!("{event_type}: {e}"))?;
    let options = prost_reflect::SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false)
        .stringify_64_bit_integers(false);
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::new(&mut out);
    message
        .serialize_with_options(&mut serializer, &options)
        .map_err(|e| format!("{event_type}: {e}"))?;
    serde_json::from_slice(&out)
        .map(Some)
        .map_err(|e| format!("{event_type}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_names_a_message_of_the_contract() {
        let pool = prost_reflect::DescriptorPool::decode(DESCRIPTORS).unwrap();
        for (event_type, name) in EVENT_TYPES {
            assert!(
                pool.get_message_by_name(name).is_some(),
                "{event_type}: {name}"
            );
        }
    }

    #[test]
    fn a_known_event_decodes_to_json_with_proto_field_names() {
        let payload = workflow::v1::TaskCompleted {
            task_id: "t1".to_owned(),
            completed_by: "ann".to_owned(),
            outcome: "approved".to_owned(),
            ..Default::default()
        }
        .encode_to_vec();
        let json = decode_json("workflow.task.completed", &payload)
            .unwrap()
            .unwrap();
        assert_eq!(json["task_id"], "t1");
        assert_eq!(json["completed_by"], "ann");
        assert_eq!(json["comment"], "");
        assert_eq!(decode_json("nobody.knows.this", &payload), Ok(None));
        assert!(decode_json("workflow.task.completed", &[0xff, 0xff]).is_err());
    }
}
