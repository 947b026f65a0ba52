//! The evidence report and certification readiness, and the audit ledger: its entries, its
//! verification, its signed checkpoints (to export outside the database) and its public key.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated};
use meridian_chassis::problem::Query;
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

use super::{LedgerReader, SmsManager, view};
use crate::Governance;
use crate::{evidence as report, ledger};

/// `GET /v1/evidence` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EvidenceQuery {
    /// From (RFC 3339; default a year before `to`).
    pub from: Option<DateTime<Utc>>,
    /// To (RFC 3339; default now).
    pub to: Option<DateTime<Utc>>,
    /// `json` (default) or `html` (a page to print).
    pub format: Option<String>,
}

/// `GET /v1/evidence`: for each clause and sub-clause of ISO/IEC 20000-1 (4 to 10), the records
/// that evidence it in the period, and the clauses with none or stale evidence; `format=html`
/// with the readiness check, to print.
#[utoipa::path(get, path = "/v1/evidence", tag = "evidence", params(EvidenceQuery),
    responses((status = 200, description = "The report (JSON or HTML)", body = report::Report),
        (status = 400, description = "A bad parameter, named", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn evidence(
    _who: Authenticated<AnyRole>,
    query: Query<EvidenceQuery>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let format = query.format.unwrap_or_else(|| "json".to_owned());
    if !matches!(format.as_str(), "json" | "html") {
        return Err(Problem::field("format", "must be json or html"));
    }
    let now = svc.clock.now();
    let to = query.to.unwrap_or(now);
    let from = query.from.unwrap_or(to - chrono::Duration::days(365));
    if from >= to {
        return Err(Problem::field("from", "must be before to"));
    }
    let config = svc.config.evidence;
    let (built, ready) = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            Ok((
                report::report(conn, config, from, to)?,
                report::readiness(conn, now)?,
            ))
        })
        .await?;
    Ok(if format == "html" {
        HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((
                "content-security-policy",
                "default-src 'none'; style-src 'unsafe-inline'",
            ))
            .body(report::html(&built, &ready))
    } else {
        HttpResponse::Ok().json(built)
    })
}

/// `GET /v1/evidence/readiness`: the certification readiness check.
#[utoipa::path(get, path = "/v1/evidence/readiness", tag = "evidence",
    responses((status = 200, description = "Readiness", body = report::Readiness)),
    security(("bearer" = [])))]
pub async fn readiness(
    _who: Authenticated<AnyRole>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let now = svc.clock.now();
    let ready = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(report::readiness(conn, now)?) })
        .await?;
    Ok(HttpResponse::Ok().json(ready))
}

/// `GET /v1/ledger` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LedgerQuery {
    /// Entries after this sequence number (the cursor).
    pub after: Option<i64>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Of this event type or pattern (`*`, `#`).
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// Events from (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Events before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
}

/// `GET /v1/ledger`: ledger entries in sequence order (auditors and the SMS manager).
#[utoipa::path(get, path = "/v1/ledger", tag = "evidence", params(LedgerQuery),
    responses((status = 200, description = "Entries, with the next cursor", body = Object),
        (status = 400, description = "A bad parameter, named", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn ledger_entries(
    _who: Authenticated<LedgerReader>,
    query: Query<LedgerQuery>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::field("limit", "must be 1 to 1000"));
    }
    let window = match (query.from, query.to) {
        (None, None) => None,
        (from, to) => Some((
            from.unwrap_or(DateTime::<Utc>::UNIX_EPOCH).naive_utc(),
            to.unwrap_or_else(|| svc.clock.now()).naive_utc(),
        )),
    };
    let (after, pattern) = (query.after.unwrap_or(0), query.event_type);
    let wanted = pattern.clone();
    let page = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            Ok(ledger::entries(
                conn,
                after,
                limit,
                pattern.as_deref(),
                window,
            )?)
        })
        .await?;
    // The cursor is the last entry read, so a page the pattern thinned out does not end the walk.
    let next = (i64::try_from(page.len()).unwrap_or(0) == limit)
        .then(|| page.last().map(|e| e.seq))
        .flatten();
    let entries: Vec<_> = page
        .into_iter()
        .filter(|e| {
            wanted
                .as_ref()
                .is_none_or(|p| meridian_chassis::bus::topic_matches(p, &e.event_type))
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "items": entries.iter().map(|e| view(e, &["data"])).collect::<Vec<_>>(),
        "next": next,
    })))
}

/// `GET /v1/ledger/verify`: walks the whole ledger and its checkpoints; names the first sequence
/// number that does not hold.
#[utoipa::path(get, path = "/v1/ledger/verify", tag = "evidence",
    responses((status = 200, description = "The verdict", body = ledger::Verdict)),
    security(("bearer" = [])))]
pub async fn verify_ledger(
    _who: Authenticated<LedgerReader>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let key = svc.key.verifying_key();
    let verdict = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(ledger::verify(conn, key, &[])?) })
        .await?;
    Ok(HttpResponse::Ok().json(verdict))
}

/// `GET /v1/ledger/checkpoints`: every signed checkpoint with the public key, to keep outside the
/// database (`meridian audit verify --checkpoints <file>` checks the ledger against it).
#[utoipa::path(get, path = "/v1/ledger/checkpoints", tag = "evidence",
    responses((status = 200, description = "The export", body = Object)),
    security(("bearer" = [])))]
pub async fn list_checkpoints(
    _who: Authenticated<LedgerReader>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let checkpoints = svc
        .db
        .run(|conn| -> Result<_, Problem> { Ok(ledger::checkpoints(conn)?) })
        .await?;
    Ok(HttpResponse::Ok().json(export(&svc, checkpoints)))
}

/// The export format of checkpoints.
pub fn export(svc: &Governance, checkpoints: Vec<ledger::CheckpointRow>) -> serde_json::Value {
    let key = svc.key.verifying_key();
    json!({
        "public_key": ledger::public_key(&key),
        "key_id": ledger::key_id(&key),
        "checkpoints": checkpoints,
    })
}

/// `POST /v1/ledger/checkpoints`: signs a checkpoint of the head now (the scheduler signs them
/// as entries come).
#[utoipa::path(post, path = "/v1/ledger/checkpoints", tag = "evidence",
    responses((status = 201, description = "Signed", body = Object),
        (status = 200, description = "Nothing new since the last one", body = Object)),
    security(("bearer" = [])))]
pub async fn sign_checkpoint(
    _who: Authenticated<SmsManager>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let (now, key) = (
        meridian_chassis::clock::to_micros(svc.clock.now()),
        svc.key.clone(),
    );
    let signed = svc
        .db
        .transaction(move |conn| -> Result<_, Problem> { Ok(ledger::checkpoint(conn, &key, now)?) })
        .await?;
    Ok(match signed {
        Some(c) => HttpResponse::Created().json(c),
        None => HttpResponse::Ok()
            .json(json!({"signed": false, "reason": "nothing new since the last checkpoint"})),
    })
}

/// `GET /v1/ledger/public-key`: the key that verifies the ledger's signatures.
#[utoipa::path(get, path = "/v1/ledger/public-key", tag = "evidence",
    responses((status = 200, description = "The public key (Ed25519, base64) and its id", body = Object)),
    security(("bearer" = [])))]
pub async fn public_key(
    _who: Authenticated<AnyRole>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let key = svc.key.verifying_key();
    Ok(HttpResponse::Ok().json(json!({"algorithm": "Ed25519", "public_key": ledger::public_key(&key), "key_id": ledger::key_id(&key)})))
}
