//! The workflow service: BPMN-like definitions with CEL ([`definition`]), checked before they
//! run, and the interpreter that runs them ([`engine`]).

pub mod definition;
pub mod engine;

/// The service's name.
pub const NAME: &str = "workflow";
