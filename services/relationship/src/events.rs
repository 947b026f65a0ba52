//! What the relationship service publishes, and what it consumes (each message once, inbox):
//! - `service_level.service.published` → the catalogue read model (customers receive services
//!   from it);
//! - `resolution.incident.closed`, `resolution.request.closed` → a satisfaction survey to the
//!   caller or the person the request was for (sampled, one per ticket);
//! - `workflow.instance.started`, `.completed`, `.cancelled` of the supplier-review workflow →
//!   the supplier review's record: its instance, its ratings, assessment, sign-off and outcome,
//!   and its follow-up actions.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::QueryResult;
use meridian_chassis::bus::{Bus, Envelope, HandleError, Subscription};
use meridian_chassis::db::{AnyConnection, DbError};
use meridian_chassis::inbox;
use meridian_proto::Message;
use meridian_proto::common::v1::Timestamp;
use meridian_proto::relationship::v1 as pb;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Relationship;
use crate::config::RelationshipConfig;
use crate::domain::{self, Target};
use crate::store::customers::{self, ActionRow, ServiceRow};
use crate::store::suppliers::{self, ContractRow, SupplierReviewRow, SupplierRow};
use crate::store::tickets::{self, ComplaintRow, SurveyRow};
use crate::store::{audit, publish};

/// The inbox name of this consumer.
pub const CONSUMER: &str = "relationship.events";
/// Who acts when the service acts on its own.
pub const SYSTEM: &str = "system:relationship";
/// The supplier review workflow.
pub const SUPPLIER_REVIEW: &str = "supplier-review";

fn timestamp(at: DateTime<Utc>) -> Option<Timestamp> {
    Some(Timestamp {
        unix_micros: at.timestamp_micros(),
    })
}

/// A survey to send.
#[derive(Debug)]
pub struct NewSurvey {
    /// `ticket` or `periodic`.
    pub kind: &'static str,
    /// The ticket (one survey each).
    pub ticket_id: Option<String>,
    /// Its number.
    pub ticket_number: String,
    /// The service.
    pub service: String,
    /// The customer.
    pub customer: String,
    /// Who is asked.
    pub recipient: String,
}

/// Records a survey and announces it with its signed link (`relationship.survey.sent`); `None`
/// when its ticket has one already.
///
/// # Errors
/// A query failing.
pub fn issue_survey(
    conn: &mut AnyConnection,
    config: &RelationshipConfig,
    survey: NewSurvey,
    actor: &str,
    now: DateTime<Utc>,
) -> QueryResult<Option<SurveyRow>> {
    let id = Uuid::now_v7();
    let expires = now + chrono::Duration::days(config.surveys.expires_after_days);
    let row = SurveyRow {
        id: id.to_string(),
        kind: survey.kind.to_owned(),
        ticket_id: survey.ticket_id,
        ticket_number: survey.ticket_number,
        service: survey.service,
        customer: survey.customer,
        recipient: survey.recipient,
        sent_at: now.naive_utc(),
        expires_at: expires.naive_utc(),
        responded_at: None,
    };
    if !tickets::add_survey(conn, &row)? {
        return Ok(None);
    }
    let token = domain::token::sign(
        config.surveys.link_secret.expose_secret().as_bytes(),
        id,
        expires.timestamp(),
    );
    let link = format!(
        "{}/v1/surveys/respond/{token}",
        config.public_url.trim_end_matches('/')
    );
    let message = pb::SurveySent {
        survey_id: row.id.clone(),
        kind: row.kind.clone(),
        ticket_id: row.ticket_id.clone().unwrap_or_default(),
        ticket_number: row.ticket_number.clone(),
        service: row.service.clone(),
        customer: row.customer.clone(),
        recipient: row.recipient.clone(),
        link,
        expires_at: timestamp(expires),
    };
    publish(
        conn,
        "relationship.survey.sent",
        &row.id,
        actor,
        &message,
        now,
    )?;
    Ok(Some(row))
}

/// Announces a complaint's change (`relationship.complaint.<event>`); `recipient` is the role
/// an escalation goes to.
///
/// # Errors
/// A query failing.
pub fn complaint_changed(
    conn: &mut AnyConnection,
    row: &ComplaintRow,
    event: &str,
    recipient: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let message = pb::ComplaintChanged {
        id: row.id.clone(),
        number: row.number.clone(),
        customer: row.customer_id.clone(),
        service: row.service.clone().unwrap_or_default(),
        summary: row.summary.clone(),
        state: row.state.clone(),
        owner: row.owner.clone().unwrap_or_default(),
        escalation_level: row.escalation_level,
        recipient: recipient.to_owned(),
        due_at: timestamp(meridian_chassis::clock::utc(row.due_at)),
    };
    publish(
        conn,
        &format!("relationship.complaint.{event}"),
        &row.id,
        actor,
        &message,
        now,
    )
}

/// Announces that a contract nears its notice date (`expiring`) or has ended (`expired`).
///
/// # Errors
/// A query failing.
pub fn contract_expiry(
    conn: &mut AnyConnection,
    contract: &ContractRow,
    supplier: &SupplierRow,
    event: &str,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let Some(ends_on) = contract.ends_on else {
        return Ok(());
    };
    let message = pb::ContractExpiry {
        contract_id: contract.id.clone(),
        number: contract.number.clone(),
        title: contract.title.clone(),
        supplier_id: supplier.id.clone(),
        supplier_name: supplier.name.clone(),
        recipient: contract.owner.clone(),
        ends_on: ends_on.to_string(),
        notice_by: domain::notice_by(ends_on, contract.notice_days).to_string(),
        days_left: i32::try_from((ends_on - today).num_days()).unwrap_or(i32::MAX),
    };
    publish(
        conn,
        &format!("relationship.contract.{event}"),
        &contract.id,
        SYSTEM,
        &message,
        now,
    )
}

/// The targets of a contract.
pub fn targets(contract: &ContractRow) -> Vec<Target> {
    serde_json::from_str(&contract.targets).unwrap_or_default()
}

/// Starts a supplier review of `contract`: assembles the scorecard from the measurements of the
/// last review interval, moves the contract's next review an interval ahead, and raises
/// `relationship.supplier.review_due`, which starts the supplier-review workflow.
///
/// # Errors
/// A query failing.
pub fn start_supplier_review(
    conn: &mut AnyConnection,
    contract: &ContractRow,
    supplier: &SupplierRow,
    actor: &str,
    now: DateTime<Utc>,
) -> QueryResult<SupplierReviewRow> {
    let today = now.date_naive();
    let from = (today - chrono::Duration::days(i64::from(contract.review_interval_days)))
        .max(contract.starts_on);
    let measured: Vec<(String, f64)> = suppliers::measurements(conn, &contract.id, from, today)?
        .into_iter()
        .map(|m| (m.metric, m.value))
        .collect();
    let card = domain::scorecard(&targets(contract), &measured);
    let open_disputes = suppliers::open_disputes(conn, &contract.id)?;
    let row = SupplierReviewRow {
        id: Uuid::now_v7().to_string(),
        supplier_id: supplier.id.clone(),
        contract_id: contract.id.clone(),
        state: "in_progress".to_owned(),
        period_from: from,
        period_to: today,
        scorecard: serde_json::to_string(&card).unwrap_or_default(),
        instance_id: None,
        outcome: String::new(),
        ratings: "{}".to_owned(),
        assessment: String::new(),
        signed_off_by: String::new(),
        started_by: actor.to_owned(),
        started_at: now.naive_utc(),
        completed_at: None,
    };
    suppliers::save_review(conn, &row, true)?;
    let mut contract = contract.clone();
    contract.next_review_due =
        today + chrono::Duration::days(i64::from(contract.review_interval_days));
    contract.updated_at = now.naive_utc();
    suppliers::save_contract(conn, &contract, false)?;
    audit(
        conn,
        actor,
        "supplier_review.started",
        "supplier_review",
        &row.id,
        &row,
        now,
    )?;
    let message = pb::SupplierReviewDue {
        review_id: row.id.clone(),
        supplier_id: supplier.id.clone(),
        supplier_name: supplier.name.clone(),
        contract_id: contract.id.clone(),
        contract_number: contract.number.clone(),
        contract_owner: contract.owner.clone(),
        supplier_manager: supplier.manager.clone(),
        period_from: from.to_string(),
        period_to: today.to_string(),
        scorecard: card
            .iter()
            .map(|l| pb::ScoreLine {
                metric: l.metric.clone(),
                target: l.target,
                unit: l.unit.clone(),
                comparison: l.comparison.clone(),
                measurements: l.measurements,
                met: l.met,
                average: l.average,
            })
            .collect(),
        open_disputes: i32::try_from(open_disputes).unwrap_or(i32::MAX),
    };
    publish(
        conn,
        "relationship.supplier.review_due",
        &row.id,
        actor,
        &message,
        now,
    )?;
    Ok(row)
}

/// Runs `apply` in one transaction with the claim of `envelope`'s id in the inbox, unless it was
/// applied already.
async fn once<F>(svc: &Relationship, envelope: &Envelope, apply: F) -> Result<(), HandleError>
where
    F: FnOnce(&mut AnyConnection, DateTime<Utc>) -> Result<(), DbError> + Send + 'static,
{
    let (id, now) = (
        envelope.id.to_string(),
        meridian_chassis::clock::to_micros(svc.clock.now()),
    );
    svc.db
        .transaction(move |conn| -> Result<(), DbError> {
            if inbox::claim(conn, CONSUMER, &id, now)? {
                apply(conn, now)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| HandleError::Transient(e.to_string()))?;
    svc.waker.wake();
    Ok(())
}

fn malformed(envelope: &Envelope) -> impl Fn(meridian_proto::DecodeError) -> HandleError + '_ {
    move |e| HandleError::Malformed(format!("{}: {e}", envelope.event_type))
}

/// A closed ticket: its id, number, service and the person to ask.
struct Closed {
    id: String,
    number: String,
    service: String,
    person: String,
}

fn closed_ticket(envelope: &Envelope) -> Result<Option<Closed>, HandleError> {
    let payload = envelope.payload.as_slice();
    Ok(match envelope.event_type.as_str() {
        "resolution.incident.closed" => {
            let closed = meridian_proto::resolution::v1::IncidentClosed::decode(payload)
                .map_err(malformed(envelope))?;
            let incident = closed
                .incident
                .ok_or_else(|| HandleError::Malformed("no incident".to_owned()))?;
            Some(Closed {
                id: incident.id,
                number: incident.number,
                service: incident.service,
                person: incident.caller,
            })
        }
        "resolution.request.closed" => {
            let request = meridian_proto::resolution::v1::RequestChanged::decode(payload)
                .map_err(malformed(envelope))?;
            Some(Closed {
                id: request.id,
                number: request.number,
                service: request.service,
                person: request.requested_for,
            })
        }
        _ => None,
    })
}

/// Sends a survey for a closed ticket, if it is sampled and has someone to ask (not a system
/// caller).
async fn apply_closed(
    svc: &Relationship,
    envelope: Envelope,
    closed: Closed,
) -> Result<(), HandleError> {
    if closed.id.is_empty() {
        return Err(HandleError::Malformed("a ticket without an id".to_owned()));
    }
    let asked = !closed.person.is_empty() && !closed.person.starts_with("system:");
    if !asked || !domain::sampled(&closed.id, svc.config.surveys.sampling_percent) {
        return Ok(());
    }
    let config = svc.config.clone();
    once(svc, &envelope, move |conn, now| {
        let customer = customers::customer_of(conn, &closed.person, &closed.service)?;
        let survey = NewSurvey {
            kind: "ticket",
            ticket_id: Some(closed.id),
            ticket_number: closed.number,
            service: closed.service,
            customer: customer.unwrap_or_default(),
            recipient: closed.person,
        };
        issue_survey(conn, &config, survey, SYSTEM, now)?;
        Ok(())
    })
    .await
}

fn apply_service(envelope: &Envelope) -> Result<ServiceRow, HandleError> {
    use meridian_proto::service_level::v1::{ServicePublished, ServiceStatus};
    let message =
        ServicePublished::decode(envelope.payload.as_slice()).map_err(malformed(envelope))?;
    if message.id.is_empty() {
        return Err(HandleError::Malformed("service id is empty".to_owned()));
    }
    let status = match message.status() {
        ServiceStatus::Pipeline => "pipeline",
        ServiceStatus::Live | ServiceStatus::Unspecified => "live",
        ServiceStatus::Retired => "retired",
    };
    Ok(ServiceRow {
        id: message.id,
        name: message.name,
        owner: message.owner,
        status: status.to_owned(),
        revision: message.revision,
    })
}

/// The follow-up actions a completed review's `follow_up` task agreed: one per line.
fn follow_ups(review: &SupplierReviewRow, variables: &Value, now: DateTime<Utc>) -> Vec<ActionRow> {
    let task = &variables["follow_up"];
    let text = task["actions"].as_str().unwrap_or_default();
    let owner = task["by"].as_str().unwrap_or(SYSTEM).to_owned();
    let due_on = task["due_date"]
        .as_str()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    text.lines()
        .map(|l| l.trim().trim_start_matches(['-', '*']).trim())
        .filter(|l| !l.is_empty())
        .map(|line| ActionRow {
            id: Uuid::now_v7().to_string(),
            source_kind: "supplier_review".to_owned(),
            source_id: review.id.clone(),
            description: line.chars().take(2000).collect(),
            owner: owner.clone(),
            due_on,
            state: "open".to_owned(),
            outcome: String::new(),
            closed_by: None,
            closed_at: None,
            created_at: now.naive_utc(),
        })
        .collect()
}

/// Records what a supplier-review instance did on its review.
async fn apply_workflow(svc: &Relationship, envelope: Envelope) -> Result<(), HandleError> {
    use meridian_proto::workflow::v1::{InstanceCancelled, InstanceCompleted, InstanceStarted};
    let payload = envelope.payload.as_slice();
    let (definition, key, step) = match envelope.event_type.as_str() {
        "workflow.instance.started" => {
            let m = InstanceStarted::decode(payload).map_err(malformed(&envelope))?;
            (
                m.definition,
                m.business_key,
                json!({"started": m.instance_id}),
            )
        }
        "workflow.instance.completed" => {
            let m = InstanceCompleted::decode(payload).map_err(malformed(&envelope))?;
            let variables: Value = serde_json::from_str(&m.variables_json).unwrap_or_default();
            (
                m.definition,
                m.business_key,
                json!({"outcome": m.outcome, "variables": variables}),
            )
        }
        _ => {
            let m = InstanceCancelled::decode(payload).map_err(malformed(&envelope))?;
            (m.definition, m.business_key, json!({"cancelled": m.reason}))
        }
    };
    if definition != SUPPLIER_REVIEW {
        return Ok(());
    }
    once(svc, &envelope, move |conn, now| {
        let Some(mut review) = suppliers::review(conn, &key)? else {
            tracing::warn!(%key, "a supplier review workflow ran for an unknown review");
            return Ok(());
        };
        if let Some(instance) = step["started"].as_str() {
            review.instance_id = Some(instance.to_owned());
            suppliers::save_review(conn, &review, false)?;
            return Ok(());
        }
        if review.state != "in_progress" {
            return Ok(());
        }
        review.completed_at = Some(now.naive_utc());
        if step.get("cancelled").is_some() {
            review.state = "cancelled".to_owned();
            suppliers::save_review(conn, &review, false)?;
            audit(
                conn,
                SYSTEM,
                "supplier_review.cancelled",
                "supplier_review",
                &review.id,
                &review,
                now,
            )?;
            return Ok(());
        }
        let variables = &step["variables"];
        review.state = "completed".to_owned();
        review.outcome = step["outcome"].as_str().unwrap_or_default().to_owned();
        review.ratings = variables["scorecard"].to_string();
        review.assessment = variables["review"]["assessment"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        review.signed_off_by = variables["sign_off"]["by"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let actions = follow_ups(&review, variables, now);
        customers::add_actions(conn, &actions)?;
        suppliers::save_review(conn, &review, false)?;
        audit(
            conn,
            &review.signed_off_by,
            "supplier_review.completed",
            "supplier_review",
            &review.id,
            &review,
            now,
        )?;
        let message = pb::SupplierReviewCompleted {
            review_id: review.id.clone(),
            supplier_id: review.supplier_id.clone(),
            contract_id: review.contract_id.clone(),
            outcome: review.outcome.clone(),
            assessment: review.assessment.clone(),
            signed_off_by: review.signed_off_by.clone(),
            follow_up_actions: i32::try_from(actions.len()).unwrap_or(i32::MAX),
        };
        publish(
            conn,
            "relationship.supplier.review_completed",
            &review.id,
            SYSTEM,
            &message,
            now,
        )?;
        Ok(())
    })
    .await
}

/// Applies one message.
///
/// # Errors
/// [`HandleError::Malformed`] for a payload that does not decode; [`HandleError::Transient`]
/// when the database fails.
pub async fn apply(svc: &Relationship, envelope: Envelope) -> Result<(), HandleError> {
    if envelope.event_type.starts_with("service_level.service.") {
        let row = apply_service(&envelope)?;
        return once(svc, &envelope, move |conn, _| {
            customers::upsert_service(conn, &row)?;
            Ok(())
        })
        .await;
    }
    if envelope.event_type.starts_with("workflow.instance.") {
        return apply_workflow(svc, envelope).await;
    }
    match closed_ticket(&envelope)? {
        Some(closed) => apply_closed(svc, envelope, closed).await,
        None => Ok(()),
    }
}

/// What the service's queue is bound to.
pub const BINDINGS: [&str; 6] = [
    "service_level.service.*",
    "resolution.incident.closed",
    "resolution.request.closed",
    "workflow.instance.started",
    "workflow.instance.completed",
    "workflow.instance.cancelled",
];

/// Starts consuming into the service's database.
pub fn start(bus: &Bus, queue_prefix: &str, svc: Relationship) {
    let subscription = Subscription {
        queue: format!("{queue_prefix}relationship"),
        bindings: BINDINGS.iter().map(|b| (*b).to_owned()).collect(),
    };
    bus.consume(
        subscription,
        Arc::new(move |envelope: Envelope| {
            let svc = svc.clone();
            async move { apply(&svc, envelope).await }
        }),
    );
}
