//! The notifier's rules, without I/O: action-link tokens, which addresses a delivery may reach,
//! webhook signatures, retry backoff, quiet hours and the messages' templates.

pub mod address;
pub mod backoff;
pub mod quiet;
pub mod render;
pub mod signature;
pub mod token;
