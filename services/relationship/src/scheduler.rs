//! The relationship scheduler: every `relationship.scheduler_poll_seconds` it escalates the
//! complaints still open past their time, announces contracts nearing their notice date and
//! those that have ended, starts the supplier reviews that fell due, and sends the periodic
//! surveys of customers that have them. Singleton work (run under the leader election).

use std::time::Duration;

use chrono::{DateTime, Utc};
use meridian_chassis::db::{AnyConnection, DbError};

use crate::Relationship;
use crate::config::RelationshipConfig;
use crate::domain;
use crate::events::{self, SYSTEM};
use crate::store::tickets::{self, HistoryRow};
use crate::store::{audit, customers, suppliers};

/// What one tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Complaints escalated.
    pub escalated: usize,
    /// Contracts announced as expiring.
    pub expiring: usize,
    /// Contracts that ended.
    pub expired: usize,
    /// Supplier reviews started.
    pub reviews: usize,
    /// Periodic surveys sent.
    pub surveys: usize,
}

impl Tick {
    fn any(self) -> bool {
        self != Self::default()
    }
}

/// Escalates one complaint: its level rises, the next escalation is due later, its record and
/// the audit log say so, and `relationship.complaint.escalated` names the role it goes to.
///
/// # Errors
/// A query failing.
pub fn escalate(
    conn: &mut AnyConnection,
    config: &RelationshipConfig,
    row: &mut tickets::ComplaintRow,
    actor: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbError> {
    let Some((role, next)) = domain::escalation(
        row.escalation_level,
        &config.complaints.escalation_roles,
        config.complaints.escalate_every_hours,
        now,
    ) else {
        return Ok(false);
    };
    row.escalation_level += 1;
    row.due_at = next.naive_utc();
    row.updated_at = now.naive_utc();
    row.version += 1;
    let entry = HistoryRow {
        id: uuid::Uuid::now_v7().to_string(),
        complaint_id: row.id.clone(),
        at: now.naive_utc(),
        actor: actor.to_owned(),
        action: "escalated".to_owned(),
        detail: serde_json::json!({"level": row.escalation_level, "to": role, "reason": reason})
            .to_string(),
    };
    tickets::save_complaint(conn, row, false, &entry)?;
    audit(
        conn,
        actor,
        "complaint.escalated",
        "complaint",
        &row.id,
        &*row,
        now,
    )?;
    events::complaint_changed(conn, row, "escalated", &role, actor, now)?;
    Ok(true)
}

fn complaints(
    conn: &mut AnyConnection,
    config: &RelationshipConfig,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    let mut count = 0;
    for mut row in tickets::due_complaints(conn, now.naive_utc(), 500)? {
        let reason = "not resolved in time";
        if escalate(conn, config, &mut row, SYSTEM, reason, now)? {
            count += 1;
        } else {
            // Past the last level: nobody further to escalate to; it stays on the list of
            // escalated complaints, and the scheduler stops looking at it.
            row.due_at = (now + chrono::Duration::days(36_500)).naive_utc();
            row.version += 1;
            let entry = HistoryRow {
                id: uuid::Uuid::now_v7().to_string(),
                complaint_id: row.id.clone(),
                at: now.naive_utc(),
                actor: SYSTEM.to_owned(),
                action: "escalation_exhausted".to_owned(),
                detail: "{}".to_owned(),
            };
            tickets::save_complaint(conn, &row, false, &entry)?;
        }
    }
    Ok(count)
}

fn contracts(
    conn: &mut AnyConnection,
    config: &RelationshipConfig,
    now: DateTime<Utc>,
    tick: &mut Tick,
) -> Result<(), DbError> {
    let today = now.date_naive();
    for mut contract in suppliers::ending(conn, today)? {
        let Some(ends_on) = contract.ends_on else {
            continue;
        };
        let Some(supplier) = suppliers::supplier(conn, &contract.supplier_id)? else {
            continue;
        };
        if today > ends_on {
            contract.state = "expired".to_owned();
            contract.updated_at = now.naive_utc();
            suppliers::save_contract(conn, &contract, false)?;
            audit(
                conn,
                SYSTEM,
                "contract.expired",
                "contract",
                &contract.id,
                &contract,
                now,
            )?;
            events::contract_expiry(conn, &contract, &supplier, "expired", today, now)?;
            tick.expired += 1;
        } else if !contract.expiry_notified
            && today
                >= domain::expiry_warning_from(
                    ends_on,
                    contract.notice_days,
                    config.contracts.expiry_warning_days,
                )
        {
            contract.expiry_notified = true;
            contract.updated_at = now.naive_utc();
            suppliers::save_contract(conn, &contract, false)?;
            events::contract_expiry(conn, &contract, &supplier, "expiring", today, now)?;
            tick.expiring += 1;
        }
    }
    Ok(())
}

fn reviews(conn: &mut AnyConnection, now: DateTime<Utc>) -> Result<usize, DbError> {
    let today = now.date_naive();
    let mut count = 0;
    for mut contract in suppliers::reviews_due(conn, today)? {
        contract.next_review_due = domain::next_due(
            contract.next_review_due,
            contract.review_interval_days,
            today,
        );
        contract.updated_at = now.naive_utc();
        suppliers::save_contract(conn, &contract, false)?;
        if suppliers::review_in_progress(conn, &contract.id)?.is_some() {
            continue;
        }
        let Some(supplier) = suppliers::supplier(conn, &contract.supplier_id)? else {
            continue;
        };
        events::start_supplier_review(conn, &contract, &supplier, SYSTEM, now)?;
        count += 1;
    }
    Ok(count)
}

/// Sends a periodic survey to each contact of `customer` with a user id or an address, about
/// each service it receives (or about the relationship as a whole, `service` empty, when it
/// receives none); how many were sent.
///
/// # Errors
/// A query failing.
pub fn periodic_surveys(
    conn: &mut AnyConnection,
    config: &RelationshipConfig,
    customer: &mut customers::CustomerRow,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    let services: Vec<String> = serde_json::from_str(&customer.services).unwrap_or_default();
    let services = if services.is_empty() {
        vec![String::new()]
    } else {
        services
    };
    let mut sent = 0;
    let contacts = customers::parties(conn, Some(customer.id.clone()), Some("contact".to_owned()))?;
    for contact in contacts {
        let recipient = if contact.user_id.is_empty() {
            contact.email.clone()
        } else {
            contact.user_id.clone()
        };
        if recipient.is_empty() {
            continue;
        }
        for service in &services {
            let survey = events::NewSurvey {
                kind: "periodic",
                ticket_id: None,
                ticket_number: String::new(),
                service: service.clone(),
                customer: customer.id.clone(),
                recipient: recipient.clone(),
            };
            if events::issue_survey(conn, config, survey, actor, now)?.is_some() {
                sent += 1;
            }
        }
    }
    customer.last_survey_at = Some(now.naive_utc());
    customers::save_customer(conn, customer, false)?;
    Ok(sent)
}

fn surveys(
    conn: &mut AnyConnection,
    config: &RelationshipConfig,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    let mut sent = 0;
    for mut customer in customers::surveyed_customers(conn)? {
        let Some(interval) = customer.survey_interval_days else {
            continue;
        };
        let since = customer.last_survey_at.unwrap_or(customer.created_at);
        if now.naive_utc() < since + chrono::Duration::days(i64::from(interval)) {
            continue;
        }
        sent += periodic_surveys(conn, config, &mut customer, SYSTEM, now)?;
    }
    Ok(sent)
}

/// Does what is due now, in one transaction.
///
/// # Errors
/// The database failing.
pub async fn tick(svc: &Relationship) -> Result<Tick, DbError> {
    let now = meridian_chassis::clock::to_micros(svc.clock.now());
    let config = svc.config.clone();
    let done = svc
        .db
        .transaction(move |conn| -> Result<Tick, DbError> {
            let mut tick = Tick {
                escalated: complaints(conn, &config, now)?,
                ..Tick::default()
            };
            contracts(conn, &config, now, &mut tick)?;
            tick.reviews = reviews(conn, now)?;
            tick.surveys = surveys(conn, &config, now)?;
            Ok(tick)
        })
        .await?;
    if done.any() {
        svc.waker.wake();
    }
    Ok(done)
}

/// Runs for as long as the process lives.
pub async fn run(svc: Relationship) {
    let poll = Duration::from_secs(svc.config.scheduler_poll_seconds);
    loop {
        if let Err(error) = tick(&svc).await {
            tracing::warn!(%error, "the relationship scheduler could not run; retrying");
        }
        tokio::time::sleep(poll).await;
    }
}
