//! Cross-service scenarios against the real PostgreSQL and RabbitMQ, built as one test binary
//! (one link step for all of them on a 2-core machine).
//!
//! - `attacks`: forged tokens, approvals by the wrong person or twice, link replay, prefetch
//!   and brute force, mass assignment, SSRF, oversized input — each refused, counted into a
//!   report that `make test` summarises.
//! - `bus`: the outbox survives a broker outage; a redelivered message has one effect; a
//!   malformed message is dead-lettered and the consumer goes on.
//! - `changes`: change approval across control and workflow: CAB through the task API, veto,
//!   emergency CAB, the requester refused as approver.
//! - `resolution`: the major incident procedure from declaration over HTTP to the review, its
//!   events over RabbitMQ and its status-update timer; a service request approved and fulfilled
//!   through its workflow's tasks and commands.
//! - `governance`: a controlled document reviewed, approved and issued through the
//!   document-approval workflow; the audit ledger holds every event of both services, intact.
//! - `relationship`: a supplier review from its due date through the supplier-review workflow
//!   to its signed record and follow-up actions.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod attacks;
mod bus;
mod changes;
mod governance;
mod relationship;
mod resolution;
mod support;
