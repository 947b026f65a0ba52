//! The service-level processes' rules, without I/O: business calendars, SLA clocks from event
//! history, availability, and the checks of plans and budgets.

pub mod calendar;
pub mod clock;
pub mod operations;
