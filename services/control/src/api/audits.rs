//! `/v1/config-audits` (ISO/IEC 20000-1 8.2.6): a configuration audit verifies the CMDB against
//! a baseline; each difference is a discrepancy that someone resolves (accepted as the new
//! truth, or corrected), and the audit closes when none is left open.

use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use meridian_chassis::Problem;
use meridian_chassis::audit;
use meridian_chassis::auth::{AnyRole, Authenticated};
use meridian_chassis::db::AnyConnection;
use meridian_chassis::problem::{Json, codes};
use meridian_chassis::telemetry::RequestIds;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::ConfigurationManager;
use crate::Control;
use crate::store::cis::CiRow;
use crate::store::releases as baselines;
use crate::store::schema::config_audits;

/// An audit row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = config_audits)]
struct AuditRow {
    id: String,
    name: String,
    baseline_id: String,
    status: String,
    discrepancies: String,
    run_by: String,
    run_at: chrono::NaiveDateTime,
    version: i64,
}

/// A configuration audit.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The baseline verified against.
    pub baseline_id: String,
    /// `open` while a discrepancy is unresolved, then `closed`.
    pub status: String,
    /// Each difference found (`index`, `ci`, `changed` or `removed`) and its `resolution`.
    #[schema(value_type = Vec<Object>)]
    pub discrepancies: Vec<Value>,
    /// Who ran it.
    pub run_by: String,
    /// When.
    pub run_at: DateTime<Utc>,
}

impl From<&AuditRow> for AuditView {
    fn from(row: &AuditRow) -> Self {
        Self {
            id: row.id.clone(),
            name: row.name.clone(),
            baseline_id: row.baseline_id.clone(),
            status: row.status.clone(),
            discrepancies: serde_json::from_str(&row.discrepancies).unwrap_or_default(),
            run_by: row.run_by.clone(),
            run_at: DateTime::from_naive_utc_and_offset(row.run_at, Utc),
        }
    }
}

fn not_found() -> Problem {
    Problem::new(codes::CONFIG_AUDIT_NOT_FOUND)
}

fn record(
    conn: &mut AnyConnection,
    before: Option<&AuditRow>,
    after: &AuditRow,
    action: &str,
) -> QueryResult<()> {
    audit::record(
        conn,
        audit::Entry {
            actor: &after.run_by,
            action,
            entity_type: "config_audit",
            entity_id: &after.id,
            before,
            after: Some(after),
            at: DateTime::from_naive_utc_and_offset(after.run_at, Utc),
        },
    )
}

/// The body of `POST /v1/config-audits`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunAudit {
    /// e.g. `Q4 audit of payroll`.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// The baseline to verify the CMDB against.
    pub baseline_id: String,
}

/// `POST /v1/config-audits`: verifies the CMDB against a baseline and records each difference as
/// a discrepancy.
#[utoipa::path(post, path = "/v1/config-audits", tag = "cmdb", request_body = RunAudit,
    responses(
        (status = 201, description = "Run (closed at once when nothing differs)", body = AuditView),
        (status = 400, description = "Bad fields, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn run_audit(
    who: Authenticated<ConfigurationManager>,
    body: Json<RunAudit>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let body = body.0;
    super::required("name", &body.name, 200)?;
    let now = meridian_chassis::clock::to_micros(svc.clock.now());
    let actor = who.subject.clone();
    let row = svc
        .db
        .transaction(move |conn| -> Result<AuditRow, Problem> {
            let baseline = baselines::baseline(conn, &body.baseline_id)?
                .ok_or_else(|| Problem::field("baseline_id", "no baseline has this id"))?;
            let then: Vec<CiRow> = serde_json::from_str(&baseline.snapshot).unwrap_or_default();
            let found: Vec<Value> = super::releases::differences(conn, &then)?
                .into_iter()
                .enumerate()
                .map(|(index, mut d)| {
                    d["index"] = json!(index);
                    d["resolution"] = Value::Null;
                    d
                })
                .collect();
            let row = AuditRow {
                id: Uuid::now_v7().to_string(),
                name: body.name.trim().to_owned(),
                baseline_id: baseline.id,
                status: if found.is_empty() { "closed" } else { "open" }.to_owned(),
                discrepancies: Value::Array(found).to_string(),
                run_by: actor,
                run_at: now.naive_utc(),
                version: 1,
            };
            diesel::insert_into(config_audits::table)
                .values(&row)
                .execute(conn)?;
            record(conn, None, &row, "config_audit.run")?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Created().json(AuditView::from(&row)))
}

/// `GET /v1/config-audits/{id}`: the audit and its discrepancies.
#[utoipa::path(get, path = "/v1/config-audits/{id}", tag = "cmdb", params(("id" = String, Path)),
    responses(
        (status = 200, description = "The audit", body = AuditView),
        (status = 404, description = "No such audit", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_audit(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let row = svc
        .db
        .run(move |conn| -> Result<AuditRow, Problem> {
            config_audits::table
                .find(&id)
                .select(AuditRow::as_select())
                .first(conn)
                .optional()?
                .ok_or_else(not_found)
        })
        .await?;
    Ok(HttpResponse::Ok().json(AuditView::from(&row)))
}

/// How a discrepancy was resolved.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// The CMDB is right as it is now (the change was authorised).
    Accepted,
    /// The CI was put right.
    Corrected,
}

/// The body of `POST /v1/config-audits/{id}/discrepancies/{index}/resolve`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    /// How it was resolved.
    pub resolution: Resolution,
    /// Why, or what was done.
    #[schema(min_length = 1, max_length = 20000)]
    pub notes: String,
}

/// `POST /v1/config-audits/{id}/discrepancies/{index}/resolve`: resolves one discrepancy; the
/// audit closes with the last.
#[utoipa::path(post, path = "/v1/config-audits/{id}/discrepancies/{index}/resolve", tag = "cmdb",
    params(("id" = String, Path), ("index" = usize, Path)), request_body = Resolve,
    responses(
        (status = 200, description = "Resolved", body = AuditView),
        (status = 404, description = "No such audit or discrepancy", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn resolve_discrepancy(
    who: Authenticated<ConfigurationManager>,
    req: HttpRequest,
    path: web::Path<(String, usize)>,
    body: Json<Resolve>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let body = body.0;
    super::required("notes", &body.notes, 20_000)?;
    let (id, index) = path.into_inner();
    let now = meridian_chassis::clock::to_micros(svc.clock.now());
    let actor = who.subject.clone();
    let trace = req
        .extensions()
        .get::<RequestIds>()
        .map(|ids| ids.trace_id.clone());
    let row = svc
        .db
        .transaction(move |conn| -> Result<AuditRow, Problem> {
            let before: AuditRow = config_audits::table
                .find(&id)
                .select(AuditRow::as_select())
                .first(conn)
                .optional()?
                .ok_or_else(not_found)?;
            let mut found: Vec<Value> = serde_json::from_str(&before.discrepancies).unwrap_or_default();
            let entry = found.get_mut(index).ok_or_else(not_found)?;
            entry["resolution"] = json!({"resolution": body.resolution, "notes": body.notes, "by": actor, "at": now, "trace_id": trace});
            let open = found.iter().any(|d| d["resolution"].is_null());
            let after = AuditRow {
                status: if open { "open" } else { "closed" }.to_owned(),
                discrepancies: Value::Array(found).to_string(),
                version: before.version + 1,
                ..before.clone()
            };
            diesel::update(config_audits::table.find(&after.id))
                .set((
                    config_audits::status.eq(&after.status),
                    config_audits::discrepancies.eq(&after.discrepancies),
                    config_audits::version.eq(after.version),
                ))
                .execute(conn)?;
            record(conn, Some(&before), &after, "config_audit.resolved")?;
            Ok(after)
        })
        .await?;
    Ok(HttpResponse::Ok().json(AuditView::from(&row)))
}
