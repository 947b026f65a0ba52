//! `/v1/intake/alertmanager` and `/v1/intake/events`: alerts from monitoring become incidents.
//!
//! Authenticated by the configured bearer token (`resolution.intake.token`) or an HMAC-SHA256
//! signature of the body (`X-Meridian-Signature: sha256=<hex>`, key `resolution.intake.hmac_secret`).
//! Each alert, in its own transaction: the first firing opens an incident (service, CI, group
//! and priority by the mapping); the same fingerprint firing again is counted into the same
//! incident (a resolved one is reopened; a closed one gives way to a new incident); a resolved
//! alert adds a note and, with `resolve_on_resolved`, resolves the incident.

use actix_web::{HttpRequest, HttpResponse, web};
use meridian_chassis::Problem;
use meridian_chassis::db::DbError;
use meridian_chassis::problem::{InvalidParam, codes};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::Resolution;
use crate::domain::incident::{Incident, NoteKind, ResolutionCode, State};
use crate::domain::intake::{self, Alert, AlertStatus};
use crate::store::incidents::{self, Context};
use crate::store::intake::{self as store, AlertLink};

/// What became of one alert.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertOutcome {
    /// Its fingerprint.
    pub fingerprint: String,
    /// `opened`, `deduplicated`, `reopened`, `noted`, `resolved` or `ignored`.
    pub outcome: String,
    /// The incident's number.
    pub incident: Option<String>,
}

/// The answer to an intake.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntakeResult {
    /// Each alert, in order.
    pub alerts: Vec<AlertOutcome>,
}

/// Who may send: the bearer token, or a valid body signature.
fn authorised(req: &HttpRequest, body: &[u8], svc: &Resolution) -> Result<(), Problem> {
    let config = &svc.config.intake;
    let token = config.token.expose_secret();
    let secret = config.hmac_secret.expose_secret();
    if token.is_empty() && secret.is_empty() {
        return Err(Problem::new(codes::FORBIDDEN)
            .detail("alert intake is not configured (resolution.intake.token or hmac_secret)"));
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if !token.is_empty()
        && let Some(presented) = header("authorization").and_then(|v| v.strip_prefix("Bearer "))
    {
        let same = presented.len() == token.len()
            && presented
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same {
            return Ok(());
        }
    }
    if !secret.is_empty()
        && let Some(signature) = header("x-meridian-signature")
        && intake::signed(secret.as_bytes(), body, signature)
    {
        return Ok(());
    }
    Err(Problem::new(codes::UNAUTHORIZED)
        .detail("a valid intake token or body signature is required"))
}

fn json(body: &[u8]) -> Result<Value, Problem> {
    serde_json::from_slice(body).map_err(|e| Problem::field("body", format!("not JSON: {e}")))
}

fn field((name, reason): (String, String)) -> Problem {
    Problem::invalid(codes::INVALID_BODY, vec![InvalidParam::new(name, reason)])
}

/// Applies one alert.
fn apply(
    conn: &mut meridian_chassis::db::AnyConnection,
    svc: &Resolution,
    alert: &Alert,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<AlertOutcome, DbError> {
    let actor = format!("system:{}", alert.source);
    let ctx = Context {
        actor: &actor,
        now,
        correlation_id: None,
    };
    let at = now.naive_utc();
    let link = store::find(conn, &alert.source, &alert.fingerprint)?;
    let current = match &link {
        Some(l) => {
            incidents::load_for_update(conn, Uuid::parse_str(&l.incident_id).unwrap_or_default())?
        }
        None => None,
    };
    let outcome = |outcome: &str, incident: Option<&Incident>| AlertOutcome {
        fingerprint: alert.fingerprint.clone(),
        outcome: outcome.to_owned(),
        incident: incident.map(|i| i.number.clone()),
    };
    let open_new = |conn: &mut meridian_chassis::db::AnyConnection| -> Result<Incident, DbError> {
        let number = incidents::next_number(conn)?;
        let mut fields = intake::incident_for(alert, &svc.config.intake);
        fields.configuration_items = crate::store::cis::resolve(conn, &fields.configuration_items)?;
        let (incident, events) = Incident::open(
            Uuid::now_v7(),
            number,
            fields,
            &svc.config.priority_matrix,
            &actor,
            now,
        );
        incidents::insert(conn, &incident, &events, ctx)?;
        if let Some(since) = svc.config.problems.recurrence_since(now) {
            crate::store::problems::detect_recurrences(conn, &[&incident], since, now)?;
        }
        Ok(incident)
    };
    match (alert.status, link, current) {
        (AlertStatus::Firing, Some(mut link), Some(mut incident))
            if incident.state != State::Closed && incident.state != State::Cancelled =>
        {
            let mut result = "deduplicated";
            if incident.state == State::Resolved {
                let before = incident.clone();
                let events = incident
                    .reopen(format!("the alert {} fired again", alert.fingerprint), now)
                    .map_err(|e| DbError::Unavailable(e.to_string()))?;
                incidents::save(conn, &before, &incident, &events, ctx)?;
                result = "reopened";
            }
            link.count += 1;
            link.status = "firing".to_owned();
            link.last_seen = at;
            store::save(conn, &link)?;
            Ok(outcome(result, Some(&incident)))
        }
        (AlertStatus::Firing, link, _) => {
            let incident = open_new(conn)?;
            store::save(
                conn,
                &AlertLink {
                    source: alert.source.clone(),
                    fingerprint: alert.fingerprint.clone(),
                    incident_id: incident.id.to_string(),
                    status: "firing".to_owned(),
                    count: link.map_or(1, |l| l.count + 1),
                    first_seen: at,
                    last_seen: at,
                },
            )?;
            Ok(outcome("opened", Some(&incident)))
        }
        (AlertStatus::Resolved, Some(mut link), Some(mut incident)) => {
            if link.status == "resolved" || !incident.state.is_open() {
                return Ok(outcome("ignored", Some(&incident)));
            }
            let before = incident.clone();
            let mut events = incident
                .note(
                    NoteKind::WorkNote,
                    format!(
                        "The alert {} resolved ({}).",
                        alert.fingerprint, alert.source
                    ),
                    now,
                )
                .map_err(|e| DbError::Unavailable(e.to_string()))?;
            let mut result = "noted";
            if svc.config.intake.resolve_on_resolved
                && incident
                    .state
                    .allowed()
                    .contains(&crate::domain::incident::Action::Resolve)
            {
                events.extend(
                    incident
                        .resolve(
                            ResolutionCode::SolvedRemotely,
                            "Resolved by monitoring: the alert cleared.".to_owned(),
                            now,
                        )
                        .map_err(|e| DbError::Unavailable(e.to_string()))?,
                );
                result = "resolved";
            }
            incidents::save(conn, &before, &incident, &events, ctx)?;
            link.status = "resolved".to_owned();
            link.last_seen = at;
            store::save(conn, &link)?;
            Ok(outcome(result, Some(&incident)))
        }
        (AlertStatus::Resolved, _, _) => Ok(outcome("ignored", None)),
    }
}

async fn take(svc: &Resolution, alerts: Vec<Alert>) -> Result<IntakeResult, Problem> {
    let mut outcomes = Vec::with_capacity(alerts.len());
    for alert in alerts {
        let now = meridian_chassis::clock::to_micros(svc.clock.now());
        let service = svc.clone();
        let outcome = svc
            .db
            .transaction(move |conn| -> Result<AlertOutcome, DbError> {
                apply(conn, &service, &alert, now)
            })
            .await?;
        outcomes.push(outcome);
    }
    svc.waker.wake();
    Ok(IntakeResult { alerts: outcomes })
}

/// `POST /v1/intake/alertmanager`: Prometheus Alertmanager's webhook (version 4).
#[utoipa::path(post, path = "/v1/intake/alertmanager", tag = "intake",
    request_body(content = Object, description = "Alertmanager's webhook payload"),
    responses(
        (status = 200, description = "What became of each alert", body = IntakeResult),
        (status = 400, description = "A malformed payload, the field named", body = meridian_chassis::problem::ProblemBody),
        (status = 401, description = "No valid token or signature", body = meridian_chassis::problem::ProblemBody),
    ))]
pub async fn alertmanager(
    req: HttpRequest,
    body: web::Bytes,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    authorised(&req, &body, &svc)?;
    let alerts = intake::alertmanager(&json(&body)?).map_err(field)?;
    Ok(HttpResponse::Ok().json(take(&svc, alerts).await?))
}

/// `POST /v1/intake/events`: a generic event (`source`, `key`, `status`, `title`, …).
#[utoipa::path(post, path = "/v1/intake/events", tag = "intake",
    request_body(content = Object, description = "{source, key, status: firing|resolved, title, description?, severity?, service?, configuration_item?, labels?, link?, time?}"),
    responses(
        (status = 200, description = "What became of it", body = IntakeResult),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 401, description = "No valid token or signature", body = meridian_chassis::problem::ProblemBody),
    ))]
pub async fn events(
    req: HttpRequest,
    body: web::Bytes,
    svc: web::Data<Resolution>,
) -> Result<HttpResponse, Problem> {
    authorised(&req, &body, &svc)?;
    let alert = intake::generic(&json(&body)?).map_err(field)?;
    Ok(HttpResponse::Ok().json(take(&svc, vec![alert]).await?))
}

#[cfg(test)]
#[path = "intake_tests.rs"]
mod tests;
