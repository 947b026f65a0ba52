//! Internal audit (9.2) with auditor independence enforced; nonconformities and corrective
//! action (10.1); improvement (10.2).

use actix_web::{HttpResponse, web};
use chrono::{Datelike, NaiveDate};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated};
use meridian_chassis::problem::{InvalidParam, Json, Query, codes};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{Auditor, SmsManager, checked, not_allowed, one_of, text, view};
use crate::Governance;
use crate::domain::{self, clauses};
use crate::events;
use crate::evidence::covers;
use crate::store::audit;
use crate::store::rows::{self, AuditRow, FindingRow, ImprovementRow, NonconformityRow};

const AUDIT_JSON: &[&str] = &["clauses", "area_members", "auditors", "checklist"];

/// An audit as planned.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditInput {
    /// Title.
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// The criteria audited against (the standard, policies, procedures).
    #[schema(min_length = 1, max_length = 5000)]
    pub criteria: String,
    /// The clauses in scope: ids (`8.6.1`) or whole clauses (`8`).
    pub clauses: Vec<String>,
    /// The area audited (a process, a team).
    #[schema(min_length = 1, max_length = 200)]
    pub area: String,
    /// Its owner and members: none of them may audit it.
    pub area_members: Vec<String>,
    /// The lead auditor.
    #[schema(min_length = 1, max_length = 200)]
    pub lead_auditor: String,
    /// Other auditors.
    #[serde(default)]
    pub auditors: Vec<String>,
    /// When.
    pub planned_for: NaiveDate,
}

fn clause_known(id: &str) -> bool {
    clauses::find(id).is_some() || matches!(id, "4" | "5" | "6" | "7" | "8" | "9" | "10")
}

/// `POST /v1/audits`: plans an internal audit. Its lead auditor and auditors must be independent
/// of the area audited (409 `auditor_not_independent`); its checklist has a line per clause.
#[utoipa::path(post, path = "/v1/audits", tag = "audits", request_body = AuditInput,
    responses((status = 201, description = "Planned", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "An auditor is not independent of the area", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn plan_audit(
    who: Authenticated<Auditor>,
    body: Json<AuditInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    text("title", &input.title, 200, true, &mut params);
    text("criteria", &input.criteria, 5000, true, &mut params);
    if input.clauses.is_empty() {
        params.push(InvalidParam::new("clauses", "name the clauses in scope"));
    }
    for (i, c) in input.clauses.iter().enumerate() {
        if !clause_known(c) {
            params.push(InvalidParam::new(
                format!("clauses[{i}]"),
                format!("{c} is not a clause of ISO/IEC 20000-1 (4 to 10)"),
            ));
        }
    }
    text("area", &input.area, 200, true, &mut params);
    if input.area_members.is_empty() {
        params.push(InvalidParam::new(
            "area_members",
            "name the area's owner and members",
        ));
    }
    text("lead_auditor", &input.lead_auditor, 200, true, &mut params);
    checked(params)?;
    for auditor in std::iter::once(&input.lead_auditor).chain(&input.auditors) {
        if domain::not_independent(auditor, &input.area_members) {
            return Err(Problem::new(codes::AUDITOR_NOT_INDEPENDENT).detail(format!(
                "{auditor} belongs to the area audited ({}) and may not audit it",
                input.area
            )));
        }
    }
    let checklist: Vec<Value> = clauses::CLAUSES
        .iter()
        .filter(|c| covers(&input.clauses, c.id))
        .map(|c| json!({"clause": c.id, "question": format!("Is {} ({}) met, with evidence?", c.id, c.title), "result": null, "notes": ""}))
        .collect();
    let (now, actor) = (svc.clock.now(), who.subject.clone());
    let row = svc
        .db
        .transaction(move |conn| -> Result<AuditRow, Problem> {
            let row = AuditRow {
                id: uuid::Uuid::now_v7().to_string(),
                number: crate::store::next_number(conn, "audit", "AUD")?,
                title: input.title,
                criteria: input.criteria,
                clauses: serde_json::to_string(&input.clauses).unwrap_or_default(),
                area: input.area,
                area_members: serde_json::to_string(&input.area_members).unwrap_or_default(),
                lead_auditor: input.lead_auditor,
                auditors: serde_json::to_string(&input.auditors).unwrap_or_default(),
                planned_for: input.planned_for,
                state: "planned".to_owned(),
                checklist: serde_json::to_string(&checklist).unwrap_or_default(),
                report: String::new(),
                started_at: None,
                completed_at: None,
                created_by: actor.clone(),
                created_at: now.naive_utc(),
                updated_at: now.naive_utc(),
            };
            rows::save_audit(conn, &row, true)?;
            audit(conn, &actor, "audit.planned", "audit", &row.id, &row, now)?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Created().json(view(&row, AUDIT_JSON)))
}

fn audit_view(row: &AuditRow, findings: &[FindingRow]) -> Value {
    let mut v = view(row, AUDIT_JSON);
    v["findings"] = json!(findings.iter().map(|f| view(f, &[])).collect::<Vec<_>>());
    v
}

fn audit_allowed(state: &str) -> Vec<&'static str> {
    match state {
        "planned" => vec!["start"],
        "in_progress" => vec!["checklist", "findings", "complete"],
        _ => Vec::new(),
    }
}

/// Loads an audit the caller runs (its lead auditor or one of its auditors) in `state`.
fn running(
    conn: &mut meridian_chassis::db::AnyConnection,
    key: &str,
    who: &str,
    state: &str,
    action: &str,
) -> Result<AuditRow, Problem> {
    let row = rows::find_audit(conn, key)?.ok_or_else(|| Problem::new(codes::AUDIT_NOT_FOUND))?;
    let auditors: Vec<String> = serde_json::from_str(&row.auditors).unwrap_or_default();
    if row.lead_auditor != who && !auditors.iter().any(|a| a == who) {
        return Err(Problem::new(codes::FORBIDDEN).detail("only the audit's auditors run it"));
    }
    if row.state != state {
        return Err(not_allowed(
            codes::AUDIT_TRANSITION_NOT_ALLOWED,
            "audit",
            &row.state,
            action,
            audit_allowed(&row.state),
        ));
    }
    Ok(row)
}

/// `POST /v1/audits/{id}/start`: the audit begins (its auditors).
#[utoipa::path(post, path = "/v1/audits/{id}/start", tag = "audits",
    params(("id" = String, Path, description = "Id or number")),
    responses((status = 200, description = "In progress", body = Object),
        (status = 403, description = "Not one of its auditors", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such audit", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Not planned", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn start_audit(
    who: Authenticated<Auditor>,
    id: web::Path<String>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let (now, actor, key) = (svc.clock.now(), who.subject.clone(), id.into_inner());
    let view = svc
        .db
        .transaction(move |conn| -> Result<Value, Problem> {
            let mut row = running(conn, &key, &actor, "planned", "start")?;
            row.state = "in_progress".to_owned();
            row.started_at = Some(now.naive_utc());
            row.updated_at = now.naive_utc();
            rows::save_audit(conn, &row, false)?;
            audit(conn, &actor, "audit.started", "audit", &row.id, &row, now)?;
            Ok(audit_view(&row, &[]))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// One checklist answer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecklistAnswer {
    /// The clause.
    pub clause: String,
    /// `conform`, `nonconform`, `observation` or `not_applicable`.
    pub result: String,
    /// Notes and the evidence seen.
    #[serde(default)]
    pub notes: String,
}

/// `PUT /v1/audits/{id}/checklist`: records answers of the checklist (while in progress).
#[utoipa::path(put, path = "/v1/audits/{id}/checklist", tag = "audits", request_body = Vec<ChecklistAnswer>,
    params(("id" = String, Path, description = "Id or number")),
    responses((status = 200, description = "Saved", body = Object),
        (status = 400, description = "A bad answer, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such audit", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Not in progress", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn put_checklist(
    who: Authenticated<Auditor>,
    id: web::Path<String>,
    body: Json<Vec<ChecklistAnswer>>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let answers = body.0;
    let mut params = Vec::new();
    for (i, a) in answers.iter().enumerate() {
        one_of(
            &format!("[{i}].result"),
            &a.result,
            &["conform", "nonconform", "observation", "not_applicable"],
            &mut params,
        );
        text(&format!("[{i}].notes"), &a.notes, 5000, false, &mut params);
    }
    checked(params)?;
    let (now, actor, key) = (svc.clock.now(), who.subject.clone(), id.into_inner());
    let view = svc
        .db
        .transaction(move |conn| -> Result<Value, Problem> {
            let mut row = running(conn, &key, &actor, "in_progress", "checklist")?;
            let mut checklist: Vec<Value> =
                serde_json::from_str(&row.checklist).unwrap_or_default();
            let mut params = Vec::new();
            for (i, a) in answers.iter().enumerate() {
                match checklist
                    .iter_mut()
                    .find(|c| c["clause"] == a.clause.as_str())
                {
                    Some(line) => {
                        line["result"] = json!(a.result);
                        line["notes"] = json!(a.notes);
                    }
                    None => params.push(InvalidParam::new(
                        format!("[{i}].clause"),
                        format!("{} is not in the audit's scope", a.clause),
                    )),
                }
            }
            checked(params)?;
            row.checklist = serde_json::to_string(&checklist).unwrap_or_default();
            row.updated_at = now.naive_utc();
            rows::save_audit(conn, &row, false)?;
            audit(conn, &actor, "audit.checklist", "audit", &row.id, &row, now)?;
            let findings = rows::findings(conn, &row.id)?;
            Ok(audit_view(&row, &findings))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A finding.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingInput {
    /// The clause.
    pub clause: String,
    /// `conformity`, `minor` (nonconformity), `major` (nonconformity) or `observation`.
    pub kind: String,
    /// What was found.
    #[schema(min_length = 1, max_length = 10000)]
    pub description: String,
    /// The evidence seen.
    #[schema(min_length = 1, max_length = 10000)]
    pub evidence: String,
}

/// `POST /v1/audits/{id}/findings`: records a finding; a minor or major nonconformity is
/// recorded as a nonconformity to correct (10.1).
#[utoipa::path(post, path = "/v1/audits/{id}/findings", tag = "audits", request_body = FindingInput,
    params(("id" = String, Path, description = "Id or number")),
    responses((status = 201, description = "Recorded", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such audit", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Not in progress", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn add_finding(
    who: Authenticated<Auditor>,
    id: web::Path<String>,
    body: Json<FindingInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    one_of(
        "kind",
        &input.kind,
        &["conformity", "minor", "major", "observation"],
        &mut params,
    );
    text("description", &input.description, 10_000, true, &mut params);
    text("evidence", &input.evidence, 10_000, true, &mut params);
    checked(params)?;
    let (now, actor, key) = (svc.clock.now(), who.subject.clone(), id.into_inner());
    let row = svc
        .db
        .transaction(move |conn| -> Result<FindingRow, Problem> {
            let audit_row = running(conn, &key, &actor, "in_progress", "findings")?;
            let scope: Vec<String> = serde_json::from_str(&audit_row.clauses).unwrap_or_default();
            if clauses::find(&input.clause).is_none() || !covers(&scope, &input.clause) {
                return Err(Problem::field(
                    "clause",
                    format!("{} is not a clause in the audit's scope", input.clause),
                ));
            }
            let mut row = FindingRow {
                id: uuid::Uuid::now_v7().to_string(),
                audit_id: audit_row.id.clone(),
                clause: input.clause,
                kind: input.kind,
                description: input.description,
                evidence: input.evidence,
                nonconformity_id: None,
                recorded_by: actor.clone(),
                recorded_at: now.naive_utc(),
            };
            if matches!(row.kind.as_str(), "minor" | "major") {
                let nc = events::new_nonconformity(
                    conn,
                    events::Raised {
                        source: "audit",
                        source_ref: format!("finding:{}", row.id),
                        clause: row.clause.clone(),
                        description: format!(
                            "{} ({}): {}",
                            audit_row.number, audit_row.title, row.description
                        ),
                        severity: row.kind.clone(),
                    },
                    &actor,
                    now,
                )?;
                row.nonconformity_id = Some(nc.id.clone());
                events::raise_nonconformity(conn, nc, &actor, now)?;
            }
            rows::add_finding(conn, &row)?;
            audit(
                conn,
                &actor,
                "audit.finding",
                "audit",
                &audit_row.id,
                &row,
                now,
            )?;
            Ok(row)
        })
        .await?;
    svc.waker.wake();
    Ok(HttpResponse::Created().json(view(&row, &[])))
}

/// The audit report.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteInput {
    /// The report: conclusions for the area's management.
    #[schema(min_length = 1, max_length = 50000)]
    pub report: String,
}

/// `POST /v1/audits/{id}/complete`: completes the audit with its report (its lead auditor); every
/// checklist line must be answered.
#[utoipa::path(post, path = "/v1/audits/{id}/complete", tag = "audits", request_body = CompleteInput,
    params(("id" = String, Path, description = "Id or number")),
    responses((status = 200, description = "Completed", body = Object),
        (status = 400, description = "A bad field or an unanswered line, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such audit", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Not in progress", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn complete_audit(
    who: Authenticated<Auditor>,
    id: web::Path<String>,
    body: Json<CompleteInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    super::one_text("report", &body.0.report, 50_000)?;
    let (now, actor, key, report) = (
        svc.clock.now(),
        who.subject.clone(),
        id.into_inner(),
        body.0.report,
    );
    let view = svc
        .db
        .transaction(move |conn| -> Result<Value, Problem> {
            let mut row = running(conn, &key, &actor, "in_progress", "complete")?;
            if row.lead_auditor != actor {
                return Err(
                    Problem::new(codes::FORBIDDEN).detail("the lead auditor completes the audit")
                );
            }
            let checklist: Vec<Value> = serde_json::from_str(&row.checklist).unwrap_or_default();
            let open: Vec<InvalidParam> = checklist
                .iter()
                .filter(|l| l["result"].is_null())
                .map(|l| {
                    InvalidParam::new(
                        format!("checklist.{}", l["clause"].as_str().unwrap_or_default()),
                        "is not answered",
                    )
                })
                .collect();
            checked(open)?;
            row.state = "completed".to_owned();
            row.report = report;
            row.completed_at = Some(now.naive_utc());
            row.updated_at = now.naive_utc();
            rows::save_audit(conn, &row, false)?;
            audit(conn, &actor, "audit.completed", "audit", &row.id, &row, now)?;
            events::record_changed(
                conn,
                "governance.audit.completed",
                meridian_proto::governance::v1::RecordChanged {
                    id: row.id.clone(),
                    number: row.number.clone(),
                    kind: "audit".to_owned(),
                    title: row.title.clone(),
                    state: row.state.clone(),
                    recipient: row.area.clone(),
                    source: String::new(),
                },
                &actor,
                now,
            )?;
            let findings = rows::findings(conn, &row.id)?;
            Ok(audit_view(&row, &findings))
        })
        .await?;
    svc.waker.wake();
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /v1/audits` filter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// `planned`, `in_progress` or `completed`.
    pub state: Option<String>,
}

/// `GET /v1/audits`: audits by planned date.
#[utoipa::path(get, path = "/v1/audits", tag = "audits", params(AuditQuery),
    responses((status = 200, description = "Audits", body = Vec<Object>)),
    security(("bearer" = [])))]
pub async fn list_audits(
    _who: Authenticated<AnyRole>,
    query: Query<AuditQuery>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let state = query.0.state;
    let rows = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(rows::audits(conn, state)?) })
        .await?;
    Ok(HttpResponse::Ok().json(rows.iter().map(|r| view(r, AUDIT_JSON)).collect::<Vec<_>>()))
}

/// `GET /v1/audits/{id}`: an audit with its checklist, findings and report.
#[utoipa::path(get, path = "/v1/audits/{id}", tag = "audits",
    params(("id" = String, Path, description = "Id or number")),
    responses((status = 200, description = "The audit", body = Object),
        (status = 404, description = "No such audit", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn get_audit(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let key = id.into_inner();
    let view = svc
        .db
        .run(move |conn| -> Result<Value, Problem> {
            let row = rows::find_audit(conn, &key)?
                .ok_or_else(|| Problem::new(codes::AUDIT_NOT_FOUND))?;
            let findings = rows::findings(conn, &row.id)?;
            Ok(audit_view(&row, &findings))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /v1/audit-programme` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProgrammeQuery {
    /// The year (default this one).
    pub year: Option<i32>,
}

/// `GET /v1/audit-programme`: the year's audits and which clauses they cover, audited
/// (completed) or only planned, and which none covers.
#[utoipa::path(get, path = "/v1/audit-programme", tag = "audits", params(ProgrammeQuery),
    responses((status = 200, description = "The programme", body = Object)),
    security(("bearer" = [])))]
pub async fn programme(
    _who: Authenticated<AnyRole>,
    query: Query<ProgrammeQuery>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let year = query.0.year.unwrap_or_else(|| svc.clock.now().year());
    if !(2000..=2200).contains(&year) {
        return Err(Problem::field("year", "must be 2000 to 2200"));
    }
    let audits = svc
        .db
        .run(|conn| -> Result<_, Problem> { Ok(rows::audits(conn, None)?) })
        .await?;
    let of_year: Vec<&AuditRow> = audits
        .iter()
        .filter(|a| a.planned_for.year() == year)
        .collect();
    let scope = |done: bool| -> Vec<String> {
        of_year
            .iter()
            .filter(|a| !done || a.state == "completed")
            .flat_map(|a| serde_json::from_str::<Vec<String>>(&a.clauses).unwrap_or_default())
            .collect()
    };
    let (audited, planned) = (scope(true), scope(false));
    let mut coverage = Vec::new();
    for c in clauses::CLAUSES {
        let status = if covers(&audited, c.id) {
            "audited"
        } else if covers(&planned, c.id) {
            "planned"
        } else {
            "not_covered"
        };
        coverage.push(json!({"clause": c.id, "title": c.title, "status": status}));
    }
    Ok(HttpResponse::Ok().json(json!({
        "year": year,
        "audits": of_year.iter().map(|a| view(*a, AUDIT_JSON)).collect::<Vec<_>>(),
        "coverage": coverage,
    })))
}

/// A nonconformity recorded by hand.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NonconformityInput {
    /// The clause not met.
    pub clause: String,
    /// What does not conform.
    #[schema(min_length = 1, max_length = 10000)]
    pub description: String,
    /// `minor` or `major`.
    pub severity: String,
}

/// `POST /v1/nonconformities`: records a nonconformity by hand (audits, SLA breaches and
/// escalated complaints record theirs).
#[utoipa::path(post, path = "/v1/nonconformities", tag = "audits", request_body = NonconformityInput,
    responses((status = 201, description = "Recorded", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn create_nonconformity(
    who: Authenticated<SmsManager>,
    body: Json<NonconformityInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    if clauses::find(&input.clause).is_none() {
        params.push(InvalidParam::new(
            "clause",
            format!(
                "{} is not a clause of ISO/IEC 20000-1 (4 to 10)",
                input.clause
            ),
        ));
    }
    text("description", &input.description, 10_000, true, &mut params);
    one_of(
        "severity",
        &input.severity,
        &["minor", "major"],
        &mut params,
    );
    checked(params)?;
    let (now, actor) = (svc.clock.now(), who.subject.clone());
    let row = svc
        .db
        .transaction(move |conn| -> Result<Option<NonconformityRow>, Problem> {
            let raised = events::Raised {
                source: "manual",
                source_ref: format!("manual:{}", uuid::Uuid::now_v7()),
                clause: input.clause,
                description: input.description,
                severity: input.severity,
            };
            let row = events::new_nonconformity(conn, raised, &actor, now)?;
            Ok(events::raise_nonconformity(conn, row, &actor, now)?)
        })
        .await?
        .ok_or_else(|| Problem::internal(&"a fresh reference was taken"))?;
    svc.waker.wake();
    Ok(HttpResponse::Created().json(nc_view(&row)))
}

fn nc_view(row: &NonconformityRow) -> Value {
    let mut v = view(row, &[]);
    v["allowed_actions"] = json!(domain::nc_allowed(&row.state));
    v
}

/// What an action on a nonconformity carries.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NonconformityAction {
    /// `react`: what was done at once to contain it. `analyse`: its root cause. `correct`: the
    /// corrective action. `review`: how effectiveness was judged.
    pub notes: String,
    /// `react`, `correct`: who carries out the action.
    pub action_owner: Option<String>,
    /// `correct`: by when.
    pub action_due: Option<NaiveDate>,
    /// `review`: whether the corrective action worked (not effective: back to analysis).
    pub effective: Option<bool>,
}

/// `POST /v1/nonconformities/{id}/{action}`: `react`, `analyse`, `correct`, `review` (the SMS
/// manager, or the action's owner).
#[utoipa::path(post, path = "/v1/nonconformities/{id}/{action}", tag = "audits", request_body = NonconformityAction,
    params(("id" = String, Path, description = "Id or number"), ("action" = String, Path, description = "react, analyse, correct or review")),
    responses((status = 200, description = "Done", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 403, description = "Neither the SMS manager nor the action's owner", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such nonconformity or action", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Out of order; `allowed-actions` says what is next", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn act_on_nonconformity(
    who: Authenticated<AnyRole>,
    path: web::Path<(String, String)>,
    body: Json<NonconformityAction>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let (key, action) = path.into_inner();
    if !domain::NC_FLOW.iter().any(|(a, _, _)| *a == action) {
        return Err(Problem::new(codes::NOT_FOUND).detail(format!("no action {action}")));
    }
    let input = body.0;
    let mut params = Vec::new();
    text("notes", &input.notes, 10_000, true, &mut params);
    if action == "correct" {
        text(
            "action_owner",
            input.action_owner.as_deref().unwrap_or_default(),
            200,
            true,
            &mut params,
        );
        if input.action_due.is_none() {
            params.push(InvalidParam::new(
                "action_due",
                "a corrective action has a due date",
            ));
        }
    }
    if action == "review" && input.effective.is_none() {
        params.push(InvalidParam::new(
            "effective",
            "say whether the corrective action was effective",
        ));
    }
    checked(params)?;
    let (now, principal) = (svc.clock.now(), who.principal.clone());
    let view = svc
        .db
        .transaction(move |conn| -> Result<Value, Problem> {
            let mut row = rows::find_nonconformity(conn, &key)?
                .ok_or_else(|| Problem::new(codes::NONCONFORMITY_NOT_FOUND))?;
            if !principal.has("sms-manager") && row.action_owner != principal.subject {
                return Err(Problem::new(codes::FORBIDDEN)
                    .detail("only the SMS manager or the action's owner acts on a nonconformity"));
            }
            let Some(mut next) = domain::nc_step(&action, &row.state) else {
                return Err(not_allowed(
                    codes::NONCONFORMITY_TRANSITION_NOT_ALLOWED,
                    "nonconformity",
                    &row.state,
                    &action,
                    domain::nc_allowed(&row.state),
                ));
            };
            match action.as_str() {
                "react" => {
                    row.reaction = input.notes.clone();
                    if let Some(owner) = &input.action_owner {
                        row.action_owner.clone_from(owner);
                    }
                }
                "analyse" => row.root_cause = input.notes.clone(),
                "correct" => {
                    row.corrective_action = input.notes.clone();
                    row.action_owner = input.action_owner.clone().unwrap_or_default();
                    row.action_due = input.action_due;
                }
                _ => {
                    let effective = input.effective == Some(true);
                    row.effective = Some(effective);
                    row.effectiveness_notes = input.notes.clone();
                    if effective {
                        row.closed_at = Some(now.naive_utc());
                    } else {
                        // Not effective: the cause is looked for again.
                        next = "reacted";
                    }
                }
            }
            row.state = next.to_owned();
            row.updated_at = now.naive_utc();
            rows::save_nonconformity(conn, &row, false)?;
            audit(
                conn,
                &principal.subject,
                &format!("nonconformity.{action}"),
                "nonconformity",
                &row.id,
                &row,
                now,
            )?;
            Ok(nc_view(&row))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /v1/nonconformities` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NonconformityQuery {
    /// `open`, `reacted`, `analysed`, `corrected` or `closed`.
    pub state: Option<String>,
    /// `audit`, `sla_breach`, `complaint` or `manual`.
    pub source: Option<String>,
}

/// `GET /v1/nonconformities`: nonconformities, oldest first.
#[utoipa::path(get, path = "/v1/nonconformities", tag = "audits", params(NonconformityQuery),
    responses((status = 200, description = "Nonconformities", body = Vec<Object>)),
    security(("bearer" = [])))]
pub async fn list_nonconformities(
    _who: Authenticated<AnyRole>,
    query: Query<NonconformityQuery>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let (state, source) = (query.0.state, query.0.source);
    let rows = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(rows::nonconformities(conn, state, source)?) })
        .await?;
    Ok(HttpResponse::Ok().json(rows.iter().map(nc_view).collect::<Vec<_>>()))
}

/// `GET /v1/nonconformities/{id}`: one.
#[utoipa::path(get, path = "/v1/nonconformities/{id}", tag = "audits",
    params(("id" = String, Path, description = "Id or number")),
    responses((status = 200, description = "The nonconformity", body = Object),
        (status = 404, description = "No such nonconformity", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn get_nonconformity(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let key = id.into_inner();
    let row = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            rows::find_nonconformity(conn, &key)?
                .ok_or_else(|| Problem::new(codes::NONCONFORMITY_NOT_FOUND))
        })
        .await?;
    Ok(HttpResponse::Ok().json(nc_view(&row)))
}

/// An improvement opportunity as proposed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImprovementInput {
    /// Title.
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// What and why.
    #[schema(min_length = 1, max_length = 10000)]
    pub description: String,
    /// Where it came from (a review, an audit, a suggestion).
    #[serde(default)]
    pub source: String,
    /// The expected result, measurably.
    #[schema(min_length = 1, max_length = 2000)]
    pub expected: String,
}

fn improvement_view(row: &ImprovementRow) -> Value {
    let mut v = view(row, &[]);
    v["allowed_actions"] = json!(domain::improvement_allowed(&row.state));
    v
}

/// `POST /v1/improvements`: proposes an improvement (anyone).
#[utoipa::path(post, path = "/v1/improvements", tag = "audits", request_body = ImprovementInput,
    responses((status = 201, description = "Proposed", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn create_improvement(
    who: Authenticated<AnyRole>,
    body: Json<ImprovementInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    text("title", &input.title, 200, true, &mut params);
    text("description", &input.description, 10_000, true, &mut params);
    text("source", &input.source, 200, false, &mut params);
    text("expected", &input.expected, 2000, true, &mut params);
    checked(params)?;
    let (now, actor) = (svc.clock.now(), who.subject.clone());
    let row = svc
        .db
        .transaction(move |conn| -> Result<ImprovementRow, Problem> {
            let row = ImprovementRow {
                id: uuid::Uuid::now_v7().to_string(),
                number: crate::store::next_number(conn, "improvement", "IMP")?,
                title: input.title,
                description: input.description,
                source: if input.source.is_empty() {
                    "suggestion".to_owned()
                } else {
                    input.source
                },
                benefit: None,
                effort: None,
                priority: None,
                state: "proposed".to_owned(),
                objective_id: None,
                plan: String::new(),
                owner: String::new(),
                due_on: None,
                expected: input.expected,
                result: String::new(),
                decided_by: String::new(),
                created_by: actor.clone(),
                created_at: now.naive_utc(),
                updated_at: now.naive_utc(),
            };
            rows::save_improvement(conn, &row, true)?;
            audit(
                conn,
                &actor,
                "improvement.proposed",
                "improvement",
                &row.id,
                &row,
                now,
            )?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Created().json(improvement_view(&row)))
}

/// What an action on an improvement carries.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImprovementAction {
    /// `evaluate`: its benefit, 1 to 5.
    pub benefit: Option<i32>,
    /// `evaluate`: its effort, 1 to 5.
    pub effort: Option<i32>,
    /// `plan`: the plan.
    pub plan: Option<String>,
    /// `plan`: who carries it out.
    pub owner: Option<String>,
    /// `plan`: by when.
    pub due_on: Option<NaiveDate>,
    /// `plan`: the objective it is measured against.
    pub objective: Option<String>,
    /// `approve`, `reject`, `implement`: why or what; `measure`: the result against the
    /// expected one.
    #[serde(default)]
    pub notes: String,
}

/// `POST /v1/improvements/{id}/{action}`: `evaluate`, `approve`, `reject`, `plan`, `implement`,
/// `measure` (the SMS manager).
#[utoipa::path(post, path = "/v1/improvements/{id}/{action}", tag = "audits", request_body = ImprovementAction,
    params(("id" = String, Path, description = "Id or number"), ("action" = String, Path, description = "evaluate, approve, reject, plan, implement or measure")),
    responses((status = 200, description = "Done", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such improvement or action", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Out of order; `allowed-actions` says what is next", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn act_on_improvement(
    who: Authenticated<SmsManager>,
    path: web::Path<(String, String)>,
    body: Json<ImprovementAction>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let (key, action) = path.into_inner();
    if !domain::IMPROVEMENT_FLOW
        .iter()
        .any(|(a, _, _)| *a == action)
    {
        return Err(Problem::new(codes::NOT_FOUND).detail(format!("no action {action}")));
    }
    let input = body.0;
    let mut params = Vec::new();
    match action.as_str() {
        "evaluate" => {
            for (name, v) in [("benefit", input.benefit), ("effort", input.effort)] {
                if !v.is_some_and(|v| (1..=5).contains(&v)) {
                    params.push(InvalidParam::new(name, "must be 1 to 5"));
                }
            }
        }
        "plan" => {
            text(
                "plan",
                input.plan.as_deref().unwrap_or_default(),
                10_000,
                true,
                &mut params,
            );
            text(
                "owner",
                input.owner.as_deref().unwrap_or_default(),
                200,
                true,
                &mut params,
            );
            if input.due_on.is_none() {
                params.push(InvalidParam::new("due_on", "a plan has a due date"));
            }
        }
        _ => text("notes", &input.notes, 10_000, true, &mut params),
    }
    checked(params)?;
    let (now, actor) = (svc.clock.now(), who.subject.clone());
    let view = svc
        .db
        .transaction(move |conn| -> Result<Value, Problem> {
            let mut row = rows::find_improvement(conn, &key)?
                .ok_or_else(|| Problem::new(codes::IMPROVEMENT_NOT_FOUND))?;
            let Some(next) = domain::improvement_step(&action, &row.state) else {
                return Err(not_allowed(
                    codes::IMPROVEMENT_TRANSITION_NOT_ALLOWED,
                    "improvement",
                    &row.state,
                    &action,
                    domain::improvement_allowed(&row.state),
                ));
            };
            match action.as_str() {
                "evaluate" => {
                    let (benefit, effort) = (input.benefit.unwrap_or(1), input.effort.unwrap_or(1));
                    row.benefit = Some(benefit);
                    row.effort = Some(effort);
                    row.priority = Some(domain::priority(benefit, effort));
                }
                "approve" | "reject" => row.decided_by.clone_from(&actor),
                "plan" => {
                    if let Some(objective) = &input.objective
                        && rows::find_objective(conn, objective)?.is_none()
                    {
                        return Err(Problem::field(
                            "objective",
                            format!("no objective {objective}"),
                        ));
                    }
                    row.plan = input.plan.clone().unwrap_or_default();
                    row.owner = input.owner.clone().unwrap_or_default();
                    row.due_on = input.due_on;
                    row.objective_id.clone_from(&input.objective);
                }
                "measure" => row.result.clone_from(&input.notes),
                _ => {}
            }
            row.state = next.to_owned();
            row.updated_at = now.naive_utc();
            rows::save_improvement(conn, &row, false)?;
            audit(
                conn,
                &actor,
                &format!("improvement.{action}"),
                "improvement",
                &row.id,
                &json!({"improvement": &row, "notes": input.notes}),
                now,
            )?;
            Ok(improvement_view(&row))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /v1/improvements` filter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImprovementQuery {
    /// `proposed`, `evaluated`, `approved`, `rejected`, `planned`, `implemented` or `measured`.
    pub state: Option<String>,
}

/// `GET /v1/improvements`: improvements, highest priority first.
#[utoipa::path(get, path = "/v1/improvements", tag = "audits", params(ImprovementQuery),
    responses((status = 200, description = "Improvements", body = Vec<Object>)),
    security(("bearer" = [])))]
pub async fn list_improvements(
    _who: Authenticated<AnyRole>,
    query: Query<ImprovementQuery>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let state = query.0.state;
    let rows = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(rows::improvements(conn, state)?) })
        .await?;
    Ok(HttpResponse::Ok().json(rows.iter().map(improvement_view).collect::<Vec<_>>()))
}

/// `GET /v1/improvements/{id}`: one.
#[utoipa::path(get, path = "/v1/improvements/{id}", tag = "audits",
    params(("id" = String, Path, description = "Id or number")),
    responses((status = 200, description = "The improvement", body = Object),
        (status = 404, description = "No such improvement", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn get_improvement(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let key = id.into_inner();
    let row = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            rows::find_improvement(conn, &key)?
                .ok_or_else(|| Problem::new(codes::IMPROVEMENT_NOT_FOUND))
        })
        .await?;
    Ok(HttpResponse::Ok().json(improvement_view(&row)))
}
