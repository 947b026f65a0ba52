//! Documented information (7.5): controlled documents with a reference, owner, review interval,
//! access by role and retention; versions written as drafts, approved through the
//! document-approval workflow, then read-only (superseded when a newer one is issued).

use actix_web::{HttpResponse, web};
use chrono::NaiveDate;
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated, Principal};
use meridian_chassis::db::AnyConnection;
use meridian_chassis::problem::{InvalidParam, Json, Query, codes};
use meridian_proto::Message;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{DocumentController, checked, one_of, text, view};
use crate::Governance;
use crate::domain::clauses;
use crate::store::rows::{self, DocumentRow, VersionRow};
use crate::store::{audit, publish};

const KINDS: &[&str] = &["policy", "procedure", "plan", "record", "other"];
const DOC_JSON: &[&str] = &["clauses", "access_roles"];

/// A new document with its first draft.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentInput {
    /// Its reference, e.g. `POL-001` (unique, never reused).
    pub reference: String,
    /// Title.
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// `policy`, `procedure`, `plan`, `record` or `other`.
    pub kind: String,
    /// The clauses of ISO/IEC 20000-1 it addresses, e.g. `["5.2"]`.
    #[serde(default)]
    pub clauses: Vec<String>,
    /// Who owns it.
    #[schema(min_length = 1, max_length = 200)]
    pub owner: String,
    /// Only holders of these roles (and its owner and document controllers) may read it; empty:
    /// everyone signed in.
    #[serde(default)]
    pub access_roles: Vec<String>,
    /// Kept this many years after it is superseded or withdrawn (default 6).
    #[serde(default = "six")]
    pub retention_years: i32,
    /// Reviewed at least this often, days (default 365).
    #[serde(default = "year")]
    pub review_interval_days: i32,
    /// The first draft.
    #[schema(min_length = 1, max_length = 500000)]
    pub body: String,
}

fn six() -> i32 {
    6
}

fn year() -> i32 {
    365
}

fn may_read(who: &Principal, doc: &DocumentRow) -> bool {
    let roles: Vec<String> = serde_json::from_str(&doc.access_roles).unwrap_or_default();
    roles.is_empty()
        || doc.owner == who.subject
        || who.has("document-controller")
        || who.has("sms-manager")
        || roles.iter().any(|r| who.has(r))
}

fn document_view(doc: &DocumentRow, today: NaiveDate, versions: Option<&[VersionRow]>) -> Value {
    let mut v = view(doc, DOC_JSON);
    let due = doc
        .approved_at
        .map(|at| at.date() + chrono::Duration::days(i64::from(doc.review_interval_days)));
    v["next_review_due"] = json!(due);
    v["review_overdue"] = json!(doc.status == "approved" && due.is_some_and(|d| d < today));
    if let Some(versions) = versions {
        v["versions"] = json!(
            versions
                .iter()
                .map(|r| {
                    let mut v = view(r, &["reviewers"]);
                    if let Some(map) = v.as_object_mut() {
                        map.remove("body");
                    }
                    v
                })
                .collect::<Vec<_>>()
        );
    }
    v
}

fn load(conn: &mut AnyConnection, who: &Principal, key: &str) -> Result<DocumentRow, Problem> {
    rows::find_document(conn, key)?
        .filter(|d| may_read(who, d))
        .ok_or_else(|| Problem::new(codes::DOCUMENT_NOT_FOUND))
}

/// `POST /v1/documents`: records a controlled document with its first draft.
#[utoipa::path(post, path = "/v1/documents", tag = "documents", request_body = DocumentInput,
    responses((status = 201, description = "Recorded, its first version a draft", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "The reference is taken", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn create_document(
    who: Authenticated<DocumentController>,
    body: Json<DocumentInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    let reference_ok = !input.reference.is_empty()
        && input.reference.len() <= 40
        && input
            .reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !reference_ok {
        params.push(InvalidParam::new(
            "reference",
            "must be 1 to 40 of A-Z, a-z, 0-9, - and .",
        ));
    }
    text("title", &input.title, 200, true, &mut params);
    one_of("kind", &input.kind, KINDS, &mut params);
    for (i, c) in input.clauses.iter().enumerate() {
        if clauses::find(c).is_none() {
            params.push(InvalidParam::new(
                format!("clauses[{i}]"),
                format!("{c} is not a clause of ISO/IEC 20000-1 (4 to 10)"),
            ));
        }
    }
    text("owner", &input.owner, 200, true, &mut params);
    if !(1..=100).contains(&input.retention_years) {
        params.push(InvalidParam::new("retention_years", "must be 1 to 100"));
    }
    if !(30..=1095).contains(&input.review_interval_days) {
        params.push(InvalidParam::new(
            "review_interval_days",
            "must be 30 to 1095",
        ));
    }
    text("body", &input.body, 500_000, true, &mut params);
    checked(params)?;
    let (now, actor) = (svc.clock.now(), who.subject.clone());
    let view = svc
        .db
        .transaction(move |conn| -> Result<Value, Problem> {
            if rows::find_document(conn, &input.reference)?.is_some() {
                return Err(Problem::new(codes::DOCUMENT_EXISTS));
            }
            let doc = DocumentRow {
                id: uuid::Uuid::now_v7().to_string(),
                reference: input.reference,
                title: input.title,
                kind: input.kind,
                clauses: serde_json::to_string(&input.clauses).unwrap_or_default(),
                owner: input.owner,
                access_roles: serde_json::to_string(&input.access_roles).unwrap_or_default(),
                retention_years: input.retention_years,
                review_interval_days: input.review_interval_days,
                status: "draft".to_owned(),
                current_version: None,
                approved_at: None,
                created_by: actor.clone(),
                created_at: now.naive_utc(),
                updated_at: now.naive_utc(),
            };
            rows::save_document(conn, &doc, true)?;
            let version = draft(&doc, 1, input.body, "First issue".to_owned(), &actor, now);
            rows::save_version(conn, &version, true)?;
            audit(
                conn,
                &actor,
                "document.created",
                "document",
                &doc.id,
                &doc,
                now,
            )?;
            Ok(document_view(&doc, now.date_naive(), Some(&[version])))
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

fn draft(
    doc: &DocumentRow,
    version: i32,
    body: String,
    change_summary: String,
    author: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> VersionRow {
    VersionRow {
        id: uuid::Uuid::now_v7().to_string(),
        document_id: doc.id.clone(),
        version,
        status: "draft".to_owned(),
        body,
        change_summary,
        author: author.to_owned(),
        reviewers: "[]".to_owned(),
        approver: String::new(),
        submitted_at: None,
        approved_at: None,
        instance_outcome: String::new(),
        created_at: now.naive_utc(),
        updated_at: now.naive_utc(),
    }
}

/// `GET /v1/documents` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DocumentQuery {
    /// `policy`, `procedure`, `plan`, `record` or `other`.
    pub kind: Option<String>,
    /// `draft`, `in_review`, `approved` or `withdrawn`.
    pub status: Option<String>,
    /// Naming this clause.
    pub clause: Option<String>,
    /// Only approved documents overdue for review.
    pub review_overdue: Option<bool>,
}

/// `GET /v1/documents`: the documents the caller may read.
#[utoipa::path(get, path = "/v1/documents", tag = "documents", params(DocumentQuery),
    responses((status = 200, description = "Documents", body = Vec<Object>),
        (status = 400, description = "A bad filter, named", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn list_documents(
    who: Authenticated<AnyRole>,
    query: Query<DocumentQuery>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    if let Some(kind) = &query.kind
        && !KINDS.contains(&kind.as_str())
    {
        return Err(Problem::field(
            "kind",
            "must be policy, procedure, plan, record or other",
        ));
    }
    let today = svc.clock.now().date_naive();
    let (kind, status) = (query.kind, query.status);
    let docs = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(rows::documents(conn, kind, status)?) })
        .await?;
    let views: Vec<Value> = docs
        .iter()
        .filter(|d| may_read(&who, d))
        .filter(|d| {
            query.clause.as_ref().is_none_or(|c| {
                serde_json::from_str::<Vec<String>>(&d.clauses)
                    .unwrap_or_default()
                    .contains(c)
            })
        })
        .map(|d| document_view(d, today, None))
        .filter(|v| {
            query
                .review_overdue
                .is_none_or(|o| v["review_overdue"] == o)
        })
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

/// `GET /v1/documents/{id}`: a document with its versions.
#[utoipa::path(get, path = "/v1/documents/{id}", tag = "documents",
    params(("id" = String, Path, description = "Id or reference")),
    responses((status = 200, description = "The document", body = Object),
        (status = 404, description = "No such document (or not one the caller may read)", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn get_document(
    who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let (key, today, principal) = (
        id.into_inner(),
        svc.clock.now().date_naive(),
        who.principal.clone(),
    );
    let view = svc
        .db
        .run(move |conn| -> Result<Value, Problem> {
            let doc = load(conn, &principal, &key)?;
            let versions = rows::versions(conn, &doc.id)?;
            Ok(document_view(&doc, today, Some(&versions)))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A draft's text.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionInput {
    /// The text.
    #[schema(min_length = 1, max_length = 500000)]
    pub body: String,
    /// What changed.
    #[schema(min_length = 1, max_length = 2000)]
    pub change_summary: String,
}

fn check_version(input: &VersionInput) -> Result<(), Problem> {
    let mut params = Vec::new();
    text("body", &input.body, 500_000, true, &mut params);
    text(
        "change_summary",
        &input.change_summary,
        2000,
        true,
        &mut params,
    );
    checked(params)
}

/// `POST /v1/documents/{id}/versions`: starts a new draft (none may be open already).
#[utoipa::path(post, path = "/v1/documents/{id}/versions", tag = "documents", request_body = VersionInput,
    params(("id" = String, Path, description = "Id or reference")),
    responses((status = 201, description = "The new draft", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such document", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "A draft or a version in review is open, or the document is withdrawn", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn new_version(
    who: Authenticated<DocumentController>,
    id: web::Path<String>,
    body: Json<VersionInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    check_version(&input)?;
    let (now, principal, key) = (svc.clock.now(), who.principal.clone(), id.into_inner());
    let row = svc
        .db
        .transaction(move |conn| -> Result<VersionRow, Problem> {
            let doc = load(conn, &principal, &key)?;
            if doc.status == "withdrawn" {
                return Err(Problem::new(codes::DOCUMENT_WITHDRAWN));
            }
            let versions = rows::versions(conn, &doc.id)?;
            if let Some(open) = versions
                .iter()
                .find(|v| matches!(v.status.as_str(), "draft" | "in_review"))
            {
                return Err(
                    Problem::new(codes::DOCUMENT_VERSION_NOT_DRAFT).detail(format!(
                        "version {} is {} already",
                        open.version, open.status
                    )),
                );
            }
            let next = versions.first().map_or(1, |v| v.version + 1);
            let row = draft(
                &doc,
                next,
                input.body,
                input.change_summary,
                &principal.subject,
                now,
            );
            rows::save_version(conn, &row, true)?;
            audit(
                conn,
                &principal.subject,
                "document.drafted",
                "document",
                &doc.id,
                &row,
                now,
            )?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Created().json(view(&row, &["reviewers"])))
}

fn version_of(
    conn: &mut AnyConnection,
    doc: &DocumentRow,
    version: i32,
) -> Result<VersionRow, Problem> {
    rows::versions(conn, &doc.id)?
        .into_iter()
        .find(|v| v.version == version)
        .ok_or_else(|| Problem::new(codes::DOCUMENT_VERSION_NOT_FOUND))
}

/// `GET /v1/documents/{id}/versions/{version}`: a version with its text.
#[utoipa::path(get, path = "/v1/documents/{id}/versions/{version}", tag = "documents",
    params(("id" = String, Path, description = "Id or reference"), ("version" = i32, Path, description = "Version number")),
    responses((status = 200, description = "The version", body = Object),
        (status = 404, description = "No such document or version", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn get_version(
    who: Authenticated<AnyRole>,
    path: web::Path<(String, i32)>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let ((key, version), principal) = (path.into_inner(), who.principal.clone());
    let row = svc
        .db
        .run(move |conn| -> Result<VersionRow, Problem> {
            let doc = load(conn, &principal, &key)?;
            version_of(conn, &doc, version)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view(&row, &["reviewers"])))
}

/// `PUT /v1/documents/{id}/versions/{version}`: changes a draft (its author or a controller).
#[utoipa::path(put, path = "/v1/documents/{id}/versions/{version}", tag = "documents", request_body = VersionInput,
    params(("id" = String, Path, description = "Id or reference"), ("version" = i32, Path, description = "Version number")),
    responses((status = 200, description = "Saved", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such document or version", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Not a draft: read-only", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn edit_version(
    who: Authenticated<DocumentController>,
    path: web::Path<(String, i32)>,
    body: Json<VersionInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    check_version(&input)?;
    let ((key, version), principal, now) =
        (path.into_inner(), who.principal.clone(), svc.clock.now());
    let row = svc
        .db
        .transaction(move |conn| -> Result<VersionRow, Problem> {
            let doc = load(conn, &principal, &key)?;
            let mut row = version_of(conn, &doc, version)?;
            if row.status != "draft" {
                return Err(Problem::new(codes::DOCUMENT_VERSION_NOT_DRAFT)
                    .detail(format!("version {} is {}", row.version, row.status)));
            }
            row.body = input.body;
            row.change_summary = input.change_summary;
            row.updated_at = now.naive_utc();
            rows::save_version(conn, &row, false)?;
            audit(
                conn,
                &principal.subject,
                "document.edited",
                "document",
                &doc.id,
                &row,
                now,
            )?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view(&row, &["reviewers"])))
}

/// Who reviews and who approves.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitInput {
    /// The reviewers (never the author).
    pub reviewers: Vec<String>,
    /// The approver (never the author).
    #[schema(min_length = 1, max_length = 200)]
    pub approver: String,
}

/// `POST /v1/documents/{id}/versions/{version}/submit`: sends a draft for review and approval
/// (`governance.document.submitted` starts the document-approval workflow; when it approves, the
/// version is issued).
#[utoipa::path(post, path = "/v1/documents/{id}/versions/{version}/submit", tag = "documents", request_body = SubmitInput,
    params(("id" = String, Path, description = "Id or reference"), ("version" = i32, Path, description = "Version number")),
    responses((status = 200, description = "In review", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such document or version", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Not a draft", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn submit_version(
    who: Authenticated<DocumentController>,
    path: web::Path<(String, i32)>,
    body: Json<SubmitInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    if input.reviewers.is_empty() || input.reviewers.len() > 20 {
        params.push(InvalidParam::new("reviewers", "name 1 to 20 reviewers"));
    }
    for (i, r) in input.reviewers.iter().enumerate() {
        text(&format!("reviewers[{i}]"), r, 200, true, &mut params);
    }
    text("approver", &input.approver, 200, true, &mut params);
    checked(params)?;
    let ((key, version), principal, now) =
        (path.into_inner(), who.principal.clone(), svc.clock.now());
    let row = svc
        .db
        .transaction(move |conn| -> Result<VersionRow, Problem> {
            let mut doc = load(conn, &principal, &key)?;
            let mut row = version_of(conn, &doc, version)?;
            if row.status != "draft" {
                return Err(Problem::new(codes::DOCUMENT_VERSION_NOT_DRAFT)
                    .detail(format!("version {} is {}", row.version, row.status)));
            }
            let mut params = Vec::new();
            if let Some(i) = input.reviewers.iter().position(|r| *r == row.author) {
                params.push(InvalidParam::new(
                    format!("reviewers[{i}]"),
                    "the author does not review their own document",
                ));
            }
            if input.approver == row.author {
                params.push(InvalidParam::new(
                    "approver",
                    "the author does not approve their own document",
                ));
            }
            checked(params)?;
            row.status = "in_review".to_owned();
            row.reviewers = serde_json::to_string(&input.reviewers).unwrap_or_default();
            row.approver = input.approver.clone();
            row.submitted_at = Some(now.naive_utc());
            row.updated_at = now.naive_utc();
            rows::save_version(conn, &row, false)?;
            if doc.status == "draft" {
                doc.status = "in_review".to_owned();
                doc.updated_at = now.naive_utc();
                rows::save_document(conn, &doc, false)?;
            }
            audit(
                conn,
                &principal.subject,
                "document.submitted",
                "document",
                &doc.id,
                &row,
                now,
            )?;
            let message = meridian_proto::governance::v1::DocumentSubmitted {
                id: row.id.clone(),
                document_id: doc.id.clone(),
                reference: doc.reference.clone(),
                title: doc.title.clone(),
                version: row.version,
                kind: doc.kind.clone(),
                author: row.author.clone(),
                reviewers: input.reviewers,
                approver: input.approver,
                change_summary: row.change_summary.clone(),
            };
            publish(
                conn,
                "governance.document.submitted",
                &row.id,
                &principal.subject,
                message.encode_to_vec(),
                now,
            )?;
            Ok(row)
        })
        .await?;
    svc.waker.wake();
    Ok(HttpResponse::Ok().json(view(&row, &["reviewers"])))
}

/// Why a document is withdrawn.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawInput {
    /// Why.
    #[schema(min_length = 1, max_length = 2000)]
    pub reason: String,
}

/// `POST /v1/documents/{id}/withdraw`: withdraws a document; its versions stay, read-only, for
/// its retention period.
#[utoipa::path(post, path = "/v1/documents/{id}/withdraw", tag = "documents", request_body = WithdrawInput,
    params(("id" = String, Path, description = "Id or reference")),
    responses((status = 200, description = "Withdrawn", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such document", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Withdrawn already", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn withdraw_document(
    who: Authenticated<DocumentController>,
    id: web::Path<String>,
    body: Json<WithdrawInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    super::one_text("reason", &body.0.reason, 2000)?;
    let (now, principal, key, reason) = (
        svc.clock.now(),
        who.principal.clone(),
        id.into_inner(),
        body.0.reason,
    );
    let view = svc
        .db
        .transaction(move |conn| -> Result<Value, Problem> {
            let mut doc = load(conn, &principal, &key)?;
            if doc.status == "withdrawn" {
                return Err(Problem::new(codes::DOCUMENT_WITHDRAWN));
            }
            doc.status = "withdrawn".to_owned();
            doc.updated_at = now.naive_utc();
            rows::save_document(conn, &doc, false)?;
            for mut v in rows::versions(conn, &doc.id)? {
                if matches!(v.status.as_str(), "draft" | "approved") {
                    v.status = if v.status == "approved" {
                        "superseded"
                    } else {
                        "withdrawn"
                    }
                    .to_owned();
                    v.updated_at = now.naive_utc();
                    rows::save_version(conn, &v, false)?;
                }
            }
            audit(
                conn,
                &principal.subject,
                "document.withdrawn",
                "document",
                &doc.id,
                &json!({"document": &doc, "reason": reason}),
                now,
            )?;
            let versions = rows::versions(conn, &doc.id)?;
            Ok(document_view(&doc, now.date_naive(), Some(&versions)))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}
