//! The control service's rules, no I/O: the vocabularies of CIs and relations, what makes a CI
//! valid, and the change lifecycle.

pub mod change;
pub mod ci;
pub mod discovery;
pub mod gate;
pub mod risk;
