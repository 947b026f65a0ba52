//! The governance service's routes, in one table, its OpenAPI document, and what its handlers
//! share.

pub mod audits;
pub mod documents;
pub mod evidence;
pub mod reviews;
pub mod system;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use meridian_chassis::auth::Role;
use meridian_chassis::http::BearerAuth;
use serde::Serialize;
use serde_json::Value;
use utoipa::OpenApi;

pub(crate) use meridian_chassis::checks::{checked, one_of, one_text, slug, text};

/// Keeps the management system: context, scope, roles, risks, objectives, nonconformities,
/// improvements, management reviews.
#[derive(Debug)]
pub struct SmsManager;
impl Role for SmsManager {
    const ANY_OF: &'static [&'static str] = &["sms-manager"];
}

/// Controls documents.
#[derive(Debug)]
pub struct DocumentController;
impl Role for DocumentController {
    const ANY_OF: &'static [&'static str] = &["document-controller", "sms-manager"];
}

/// Plans and runs internal audits.
#[derive(Debug)]
pub struct Auditor;
impl Role for Auditor {
    const ANY_OF: &'static [&'static str] = &["auditor", "sms-manager"];
}

/// Reads the audit ledger: auditors and the management system's manager.
#[derive(Debug)]
pub struct LedgerReader;
impl Role for LedgerReader {
    const ANY_OF: &'static [&'static str] = &["auditor", "sms-manager"];
}

meridian_chassis::routes! {
    "/v1/context" => { get: system::list_context, post: system::create_context },
    "/v1/context/{id}" => { put: system::put_context },
    "/v1/scope" => { get: system::get_scope, put: system::put_scope },
    "/v1/scope/versions" => { get: system::list_scopes },
    "/v1/sms-roles" => { get: system::list_roles },
    "/v1/sms-roles/{id}" => { put: system::put_role },
    "/v1/competences" => { get: system::list_competences, post: system::create_competence },
    "/v1/risks" => { get: system::list_risks, post: system::create_risk },
    "/v1/risks/{id}" => { get: system::get_risk, put: system::put_risk },
    "/v1/risks/{id}/review" => { post: system::review_risk },
    "/v1/objectives" => { get: system::list_objectives, post: system::create_objective },
    "/v1/objectives/{id}" => { get: system::get_objective },
    "/v1/objectives/{id}/progress" => { post: system::record_progress },
    "/v1/documents" => { get: documents::list_documents, post: documents::create_document },
    "/v1/documents/{id}" => { get: documents::get_document },
    "/v1/documents/{id}/versions" => { post: documents::new_version },
    "/v1/documents/{id}/versions/{version}" => { get: documents::get_version, put: documents::edit_version },
    "/v1/documents/{id}/versions/{version}/submit" => { post: documents::submit_version },
    "/v1/documents/{id}/withdraw" => { post: documents::withdraw_document },
    "/v1/audits" => { get: audits::list_audits, post: audits::plan_audit },
    "/v1/audits/{id}" => { get: audits::get_audit },
    "/v1/audits/{id}/start" => { post: audits::start_audit },
    "/v1/audits/{id}/checklist" => { put: audits::put_checklist },
    "/v1/audits/{id}/findings" => { post: audits::add_finding },
    "/v1/audits/{id}/complete" => { post: audits::complete_audit },
    "/v1/audit-programme" => { get: audits::programme },
    "/v1/nonconformities" => { get: audits::list_nonconformities, post: audits::create_nonconformity },
    "/v1/nonconformities/{id}" => { get: audits::get_nonconformity },
    "/v1/nonconformities/{id}/{action}" => { post: audits::act_on_nonconformity },
    "/v1/improvements" => { get: audits::list_improvements, post: audits::create_improvement },
    "/v1/improvements/{id}" => { get: audits::get_improvement },
    "/v1/improvements/{id}/{action}" => { post: audits::act_on_improvement },
    "/v1/management-reviews" => { get: reviews::list_reviews, post: reviews::plan_review },
    "/v1/management-reviews/{id}" => { get: reviews::get_review },
    "/v1/management-reviews/{id}/inputs" => { post: reviews::refresh_inputs },
    "/v1/management-reviews/{id}/hold" => { post: reviews::hold_review },
    "/v1/review-actions" => { get: reviews::list_actions },
    "/v1/review-actions/{id}/close" => { post: reviews::close_action },
    "/v1/evidence" => { get: evidence::evidence },
    "/v1/evidence/readiness" => { get: evidence::readiness },
    "/v1/ledger" => { get: evidence::ledger_entries },
    "/v1/ledger/verify" => { get: evidence::verify_ledger },
    "/v1/ledger/checkpoints" => { get: evidence::list_checkpoints, post: evidence::sign_checkpoint },
    "/v1/ledger/public-key" => { get: evidence::public_key },
}

/// The governance service's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Meridian governance", description = "The service management system (ISO/IEC 20000-1 clauses 4 to 7, 9, 10), the audit ledger and the evidence report"),
    paths(
        system::list_context, system::create_context, system::put_context,
        system::get_scope, system::put_scope, system::list_scopes,
        system::list_roles, system::put_role, system::list_competences, system::create_competence,
        system::list_risks, system::create_risk, system::get_risk, system::put_risk, system::review_risk,
        system::list_objectives, system::create_objective, system::get_objective, system::record_progress,
        documents::list_documents, documents::create_document, documents::get_document,
        documents::new_version, documents::get_version, documents::edit_version,
        documents::submit_version, documents::withdraw_document,
        audits::list_audits, audits::plan_audit, audits::get_audit, audits::start_audit,
        audits::put_checklist, audits::add_finding, audits::complete_audit, audits::programme,
        audits::list_nonconformities, audits::create_nonconformity, audits::get_nonconformity,
        audits::act_on_nonconformity, audits::list_improvements, audits::create_improvement,
        audits::get_improvement, audits::act_on_improvement,
        reviews::list_reviews, reviews::plan_review, reviews::get_review, reviews::refresh_inputs,
        reviews::hold_review, reviews::list_actions, reviews::close_action,
        evidence::evidence, evidence::readiness, evidence::ledger_entries, evidence::verify_ledger,
        evidence::list_checkpoints, evidence::sign_checkpoint, evidence::public_key,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "system", description = "Context, scope, roles, competence, risks and objectives (4 to 7)"),
        (name = "documents", description = "Documented information (7.5)"),
        (name = "audits", description = "Internal audit (9.2), nonconformities (10.1), improvement (10.2)"),
        (name = "reviews", description = "Management review (9.3)"),
        (name = "evidence", description = "The evidence report, certification readiness and the audit ledger"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI 3.1 document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// A row as the API shows it: its JSON text columns (`json_fields`) as JSON, its times in UTC
/// (RFC 3339 with `Z`).
pub(crate) fn view<T: Serialize>(row: &T, json_fields: &[&str]) -> Value {
    let mut value = serde_json::to_value(row).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        for (name, field) in map.iter_mut() {
            if json_fields.contains(&name.as_str()) {
                if let Some(text) = field.as_str() {
                    *field = crate::store::json(text);
                }
            } else if (name.ends_with("_at") || name == "at" || name == "time")
                && let Some(text) = field.as_str()
                && !text.ends_with('Z')
            {
                *field = Value::String(format!("{text}Z"));
            }
        }
    }
    value
}

/// The 404 of a record kind.
pub(crate) fn not_found(what: &str) -> meridian_chassis::Problem {
    meridian_chassis::Problem::new(meridian_chassis::problem::codes::NOT_FOUND)
        .detail(format!("no such {what}"))
}

/// The 409 of an action a record's state does not allow, with the actions it does.
pub(crate) fn not_allowed(
    code: meridian_chassis::ProblemCode,
    what: &str,
    state: &str,
    action: &str,
    allowed: Vec<&'static str>,
) -> meridian_chassis::Problem {
    meridian_chassis::Problem::new(code)
        .detail(format!("a {state} {what} cannot be {action}d"))
        .allowed_actions(allowed.into_iter().map(str::to_owned).collect())
}
