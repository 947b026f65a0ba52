//! The rules of incident management, free of I/O: the priority matrix and the incident state
//! machine. Time comes in as an argument.

pub mod incident;
pub mod intake;
pub mod priority;
pub mod problem;
pub mod request;
