//! The workflow service: BPMN-like definitions with CEL (`definition`), checked before they run.

pub mod definition;

/// The service's name.
pub const NAME: &str = "workflow";
