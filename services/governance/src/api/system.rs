//! Context and scope (4), roles (5.3), competence (7.2), risks and opportunities (6.1),
//! objectives (6.2).

use actix_web::{HttpResponse, web};
use chrono::NaiveDate;
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated};
use meridian_chassis::problem::{InvalidParam, Json, Query, codes};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{SmsManager, checked, not_found, one_of, slug, text, view};
use crate::Governance;
use crate::domain;
use crate::store::audit;
use crate::store::rows::{
    self, CompetenceRow, ContextRow, ObjectiveRow, ProgressRow, RiskRow, RoleRow, ScopeRow,
};

const CONTEXT_KINDS: &[&str] = &["internal_issue", "external_issue", "interested_party"];

/// A context item as written.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextInput {
    /// `internal_issue`, `external_issue` or `interested_party`.
    pub kind: String,
    /// Title.
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// What it is.
    #[serde(default)]
    pub description: String,
    /// An interested party's requirements.
    #[serde(default)]
    pub requirements: String,
    /// Who follows it.
    #[schema(min_length = 1, max_length = 200)]
    pub owner: String,
}

fn check_context(input: &ContextInput) -> Result<(), Problem> {
    let mut params = Vec::new();
    one_of("kind", &input.kind, CONTEXT_KINDS, &mut params);
    text("title", &input.title, 200, true, &mut params);
    text(
        "description",
        &input.description,
        10_000,
        false,
        &mut params,
    );
    text(
        "requirements",
        &input.requirements,
        10_000,
        false,
        &mut params,
    );
    text("owner", &input.owner, 200, true, &mut params);
    checked(params)
}

async fn save_context(
    svc: &Governance,
    actor: String,
    id: Option<String>,
    input: ContextInput,
) -> Result<Value, Problem> {
    check_context(&input)?;
    let now = svc.clock.now();
    svc.db
        .transaction(move |conn| -> Result<Value, Problem> {
            let before = match &id {
                Some(id) => {
                    Some(rows::find_context(conn, id)?.ok_or_else(|| not_found("context item"))?)
                }
                None => None,
            };
            let row = ContextRow {
                id: id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
                kind: input.kind,
                title: input.title,
                description: input.description,
                requirements: input.requirements,
                owner: input.owner,
                created_at: before
                    .as_ref()
                    .map_or_else(|| now.naive_utc(), |b| b.created_at),
                updated_at: now.naive_utc(),
            };
            rows::save_context(conn, &row, before.is_none())?;
            audit(conn, &actor, "context.saved", "context", &row.id, &row, now)?;
            Ok(view(&row, &[]))
        })
        .await
}

/// `GET /v1/context` filter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ContextQuery {
    /// `internal_issue`, `external_issue` or `interested_party`.
    pub kind: Option<String>,
}

/// `GET /v1/context`: internal and external issues, interested parties and their requirements
/// (4.1, 4.2).
#[utoipa::path(get, path = "/v1/context", tag = "system", params(ContextQuery),
    responses((status = 200, description = "Context items", body = Vec<Object>),
        (status = 400, description = "A bad filter, named", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn list_context(
    _who: Authenticated<AnyRole>,
    query: Query<ContextQuery>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let kind = query.0.kind;
    if let Some(k) = &kind
        && !CONTEXT_KINDS.contains(&k.as_str())
    {
        return Err(Problem::field(
            "kind",
            "must be internal_issue, external_issue or interested_party",
        ));
    }
    let rows = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(rows::context(conn, kind)?) })
        .await?;
    Ok(HttpResponse::Ok().json(rows.iter().map(|r| view(r, &[])).collect::<Vec<_>>()))
}

/// `POST /v1/context`: records an issue or an interested party.
#[utoipa::path(post, path = "/v1/context", tag = "system", request_body = ContextInput,
    responses((status = 201, description = "Recorded", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn create_context(
    who: Authenticated<SmsManager>,
    body: Json<ContextInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let row = save_context(&svc, who.subject.clone(), None, body.0).await?;
    Ok(HttpResponse::Created().json(row))
}

/// `PUT /v1/context/{id}`: changes one.
#[utoipa::path(put, path = "/v1/context/{id}", tag = "system", request_body = ContextInput,
    params(("id" = String, Path, description = "Context item id")),
    responses((status = 200, description = "Saved", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such item", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn put_context(
    who: Authenticated<SmsManager>,
    id: web::Path<String>,
    body: Json<ContextInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let row = save_context(&svc, who.subject.clone(), Some(id.into_inner()), body.0).await?;
    Ok(HttpResponse::Ok().json(row))
}

/// A scope as written: each `PUT` makes a new version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeInput {
    /// The scope statement.
    #[schema(min_length = 1, max_length = 10000)]
    pub statement: String,
    /// The services in scope.
    pub services: Vec<String>,
    /// The locations.
    #[serde(default)]
    pub locations: Vec<String>,
    /// The parties (organisations, units) in scope.
    #[serde(default)]
    pub parties: Vec<String>,
    /// What is excluded, and why.
    #[serde(default)]
    pub exclusions: String,
}

const SCOPE_JSON: &[&str] = &["services", "locations", "parties"];

/// `GET /v1/scope`: the scope in force (4.3).
#[utoipa::path(get, path = "/v1/scope", tag = "system",
    responses((status = 200, description = "The newest version", body = Object),
        (status = 404, description = "No scope recorded yet", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn get_scope(
    _who: Authenticated<AnyRole>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let scopes = svc
        .db
        .run(|conn| -> Result<_, Problem> { Ok(rows::scopes(conn)?) })
        .await?;
    let current = scopes
        .first()
        .ok_or_else(|| not_found("scope (none recorded yet)"))?;
    Ok(HttpResponse::Ok().json(view(current, SCOPE_JSON)))
}

/// `PUT /v1/scope`: records a new version of the scope; the ones before stay, read-only.
#[utoipa::path(put, path = "/v1/scope", tag = "system", request_body = ScopeInput,
    responses((status = 201, description = "The new version", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn put_scope(
    who: Authenticated<SmsManager>,
    body: Json<ScopeInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    text("statement", &input.statement, 10_000, true, &mut params);
    if input.services.is_empty() {
        params.push(InvalidParam::new(
            "services",
            "name at least one service in scope",
        ));
    }
    for (i, s) in input
        .services
        .iter()
        .chain(&input.locations)
        .chain(&input.parties)
        .enumerate()
    {
        text(&format!("entries[{i}]"), s, 200, true, &mut params);
    }
    text("exclusions", &input.exclusions, 10_000, false, &mut params);
    checked(params)?;
    let (now, actor) = (svc.clock.now(), who.subject.clone());
    let row = svc
        .db
        .transaction(move |conn| -> Result<ScopeRow, Problem> {
            let version = rows::scopes(conn)?.first().map_or(1, |s| s.version + 1);
            let row = ScopeRow {
                version,
                statement: input.statement,
                services: serde_json::to_string(&input.services).unwrap_or_default(),
                locations: serde_json::to_string(&input.locations).unwrap_or_default(),
                parties: serde_json::to_string(&input.parties).unwrap_or_default(),
                exclusions: input.exclusions,
                created_by: actor.clone(),
                created_at: now.naive_utc(),
            };
            rows::add_scope(conn, &row)?;
            audit(
                conn,
                &actor,
                "scope.versioned",
                "scope",
                &version.to_string(),
                &row,
                now,
            )?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Created().json(view(&row, SCOPE_JSON)))
}

/// `GET /v1/scope/versions`: every version, newest first.
#[utoipa::path(get, path = "/v1/scope/versions", tag = "system",
    responses((status = 200, description = "Versions", body = Vec<Object>)),
    security(("bearer" = [])))]
pub async fn list_scopes(
    _who: Authenticated<AnyRole>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let scopes = svc
        .db
        .run(|conn| -> Result<_, Problem> { Ok(rows::scopes(conn)?) })
        .await?;
    Ok(HttpResponse::Ok().json(
        scopes
            .iter()
            .map(|s| view(s, SCOPE_JSON))
            .collect::<Vec<_>>(),
    ))
}

/// A role as written.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    /// Name.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Responsibilities.
    #[schema(min_length = 1, max_length = 10000)]
    pub responsibilities: String,
    /// Authorities.
    #[serde(default)]
    pub authorities: String,
    /// Who holds it.
    #[serde(default)]
    pub holders: Vec<String>,
}

/// `GET /v1/sms-roles`: roles, responsibilities, authorities and holders (5.3).
#[utoipa::path(get, path = "/v1/sms-roles", tag = "system",
    responses((status = 200, description = "Roles", body = Vec<Object>)),
    security(("bearer" = [])))]
pub async fn list_roles(
    _who: Authenticated<AnyRole>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let roles = svc
        .db
        .run(|conn| -> Result<_, Problem> { Ok(rows::roles(conn)?) })
        .await?;
    Ok(HttpResponse::Ok().json(
        roles
            .iter()
            .map(|r| view(r, &["holders"]))
            .collect::<Vec<_>>(),
    ))
}

/// `PUT /v1/sms-roles/{id}`: records or changes a role.
#[utoipa::path(put, path = "/v1/sms-roles/{id}", tag = "system", request_body = RoleInput,
    params(("id" = String, Path, description = "Role id (a slug)")),
    responses((status = 200, description = "Saved", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn put_role(
    who: Authenticated<SmsManager>,
    id: web::Path<String>,
    body: Json<RoleInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let id = id.into_inner();
    let mut params = Vec::new();
    slug("id", &id, &mut params);
    text("name", &input.name, 200, true, &mut params);
    text(
        "responsibilities",
        &input.responsibilities,
        10_000,
        true,
        &mut params,
    );
    text(
        "authorities",
        &input.authorities,
        10_000,
        false,
        &mut params,
    );
    for (i, h) in input.holders.iter().enumerate() {
        text(&format!("holders[{i}]"), h, 200, true, &mut params);
    }
    checked(params)?;
    let (now, actor) = (svc.clock.now(), who.subject.clone());
    let row = svc
        .db
        .transaction(move |conn| -> Result<RoleRow, Problem> {
            let new = rows::find_role(conn, &id)?.is_none();
            let row = RoleRow {
                id,
                name: input.name,
                responsibilities: input.responsibilities,
                authorities: input.authorities,
                holders: serde_json::to_string(&input.holders).unwrap_or_default(),
                updated_by: actor.clone(),
                updated_at: now.naive_utc(),
            };
            rows::save_role(conn, &row, new)?;
            audit(conn, &actor, "role.saved", "role", &row.id, &row, now)?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view(&row, &["holders"])))
}

/// A competence record as written.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompetenceInput {
    /// Who.
    #[schema(min_length = 1, max_length = 200)]
    pub person: String,
    /// For which role.
    pub role: Option<String>,
    /// The competence.
    #[schema(min_length = 1, max_length = 500)]
    pub competence: String,
    /// Its evidence (a certificate, a training record, an assessment).
    #[schema(min_length = 1, max_length = 5000)]
    pub evidence: String,
    /// Since.
    pub acquired_on: NaiveDate,
    /// Until (a certificate's expiry).
    pub expires_on: Option<NaiveDate>,
}

/// `GET /v1/competences` filter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CompetenceQuery {
    /// Of this person.
    pub person: Option<String>,
}

/// `GET /v1/competences`: competence records with their evidence (7.2), each flagged when expired.
#[utoipa::path(get, path = "/v1/competences", tag = "system", params(CompetenceQuery),
    responses((status = 200, description = "Records", body = Vec<Object>)),
    security(("bearer" = [])))]
pub async fn list_competences(
    _who: Authenticated<AnyRole>,
    query: Query<CompetenceQuery>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let person = query.0.person;
    let today = svc.clock.now().date_naive();
    let rows = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(rows::competences(conn, person)?) })
        .await?;
    Ok(HttpResponse::Ok().json(
        rows.iter()
            .map(|r| {
                let mut v = view(r, &[]);
                v["expired"] = json!(r.expires_on.is_some_and(|e| e < today));
                v
            })
            .collect::<Vec<_>>(),
    ))
}

/// `POST /v1/competences`: records a competence with its evidence.
#[utoipa::path(post, path = "/v1/competences", tag = "system", request_body = CompetenceInput,
    responses((status = 201, description = "Recorded", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn create_competence(
    who: Authenticated<SmsManager>,
    body: Json<CompetenceInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    text("person", &input.person, 200, true, &mut params);
    text("competence", &input.competence, 500, true, &mut params);
    text("evidence", &input.evidence, 5000, true, &mut params);
    if input.expires_on.is_some_and(|e| e <= input.acquired_on) {
        params.push(InvalidParam::new("expires_on", "must be after acquired_on"));
    }
    checked(params)?;
    let (now, actor) = (svc.clock.now(), who.subject.clone());
    let row = svc
        .db
        .transaction(move |conn| -> Result<CompetenceRow, Problem> {
            if let Some(role) = &input.role
                && rows::find_role(conn, role)?.is_none()
            {
                return Err(Problem::field("role", format!("no role {role}")));
            }
            let row = CompetenceRow {
                id: uuid::Uuid::now_v7().to_string(),
                person: input.person,
                role_id: input.role,
                competence: input.competence,
                evidence: input.evidence,
                acquired_on: input.acquired_on,
                expires_on: input.expires_on,
                recorded_by: actor.clone(),
                recorded_at: now.naive_utc(),
            };
            rows::add_competence(conn, &row)?;
            audit(
                conn,
                &actor,
                "competence.recorded",
                "competence",
                &row.id,
                &row,
                now,
            )?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Created().json(view(&row, &[])))
}

/// A risk or opportunity as assessed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskInput {
    /// `risk` or `opportunity`.
    pub kind: String,
    /// Title.
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// What could happen.
    #[serde(default)]
    pub description: String,
    /// e.g. `service`, `information_security`, `supplier`.
    #[schema(pattern = "^[a-z0-9-]{1,50}$")]
    pub category: String,
    /// Who owns it.
    #[schema(min_length = 1, max_length = 200)]
    pub owner: String,
    /// 1 (rare) to 5 (almost certain).
    pub likelihood: i32,
    /// 1 (negligible) to 5 (severe).
    pub impact: i32,
    /// `accept` (low risks only), `mitigate`, `transfer`, `avoid` or `exploit` (opportunities).
    pub treatment: String,
    /// The treatment plan (required above the acceptance score).
    #[serde(default)]
    #[schema(max_length = 10000)]
    pub treatment_plan: String,
    /// Who carries it out.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub treatment_owner: String,
    /// By when.
    pub treatment_due: Option<NaiveDate>,
    /// Reviewed at least this often, days (default 90).
    #[serde(default = "ninety")]
    pub review_interval_days: i32,
}

fn ninety() -> i32 {
    90
}

fn check_risk(input: &RiskInput, level: &str) -> Result<(), Problem> {
    let mut params = Vec::new();
    one_of("kind", &input.kind, &["risk", "opportunity"], &mut params);
    text("title", &input.title, 200, true, &mut params);
    text(
        "description",
        &input.description,
        10_000,
        false,
        &mut params,
    );
    slug("category", &input.category.replace('_', "-"), &mut params);
    text("owner", &input.owner, 200, true, &mut params);
    for (name, v) in [("likelihood", input.likelihood), ("impact", input.impact)] {
        if !(1..=5).contains(&v) {
            params.push(InvalidParam::new(name, "must be 1 to 5"));
        }
    }
    one_of(
        "treatment",
        &input.treatment,
        &["accept", "mitigate", "transfer", "avoid", "exploit"],
        &mut params,
    );
    if input.treatment == "accept" && !domain::acceptable(level) && params.is_empty() {
        params.push(InvalidParam::new(
            "treatment",
            format!("a {level} risk is above the acceptance criteria: it needs a treatment, not acceptance"),
        ));
    }
    if input.treatment != "accept" {
        text(
            "treatment_plan",
            &input.treatment_plan,
            10_000,
            true,
            &mut params,
        );
        text(
            "treatment_owner",
            &input.treatment_owner,
            200,
            true,
            &mut params,
        );
        if input.treatment_due.is_none() {
            params.push(InvalidParam::new(
                "treatment_due",
                "a treatment has a due date",
            ));
        }
    }
    if !(7..=730).contains(&input.review_interval_days) {
        params.push(InvalidParam::new(
            "review_interval_days",
            "must be 7 to 730",
        ));
    }
    checked(params)
}

fn risk_view(row: &RiskRow, today: NaiveDate) -> Value {
    let mut v = view(row, &[]);
    let due =
        row.last_reviewed_at.date() + chrono::Duration::days(i64::from(row.review_interval_days));
    v["next_review_due"] = json!(due);
    v["review_overdue"] = json!(due < today);
    v
}

async fn save_risk(
    svc: &Governance,
    actor: String,
    key: Option<String>,
    input: RiskInput,
) -> Result<Value, Problem> {
    let (score, level) = domain::assess(input.likelihood, input.impact, svc.config.risks);
    check_risk(&input, level)?;
    let now = svc.clock.now();
    svc.db
        .transaction(move |conn| -> Result<Value, Problem> {
            let before = match &key {
                Some(key) => Some(
                    rows::find_risk(conn, key)?
                        .ok_or_else(|| Problem::new(codes::RISK_NOT_FOUND))?,
                ),
                None => None,
            };
            let row = RiskRow {
                id: before
                    .as_ref()
                    .map_or_else(|| uuid::Uuid::now_v7().to_string(), |b| b.id.clone()),
                number: match &before {
                    Some(b) => b.number.clone(),
                    None => crate::store::next_number(conn, "risk", "RSK")?,
                },
                kind: input.kind,
                title: input.title,
                description: input.description,
                category: input.category,
                owner: input.owner,
                likelihood: input.likelihood,
                impact: input.impact,
                score,
                level: level.to_owned(),
                treatment: input.treatment,
                treatment_plan: input.treatment_plan,
                treatment_owner: input.treatment_owner,
                treatment_due: input.treatment_due,
                state: before
                    .as_ref()
                    .map_or_else(|| "open".to_owned(), |b| b.state.clone()),
                review_interval_days: input.review_interval_days,
                last_reviewed_at: now.naive_utc(),
                created_by: before
                    .as_ref()
                    .map_or_else(|| actor.clone(), |b| b.created_by.clone()),
                created_at: before
                    .as_ref()
                    .map_or_else(|| now.naive_utc(), |b| b.created_at),
                updated_at: now.naive_utc(),
            };
            rows::save_risk(conn, &row, before.is_none())?;
            audit(conn, &actor, "risk.assessed", "risk", &row.id, &row, now)?;
            Ok(risk_view(&row, now.date_naive()))
        })
        .await
}

/// `POST /v1/risks`: records a risk or opportunity, assessed against the criteria
/// (`governance.risks`): score = likelihood × impact, level low, medium or high.
#[utoipa::path(post, path = "/v1/risks", tag = "system", request_body = RiskInput,
    responses((status = 201, description = "Assessed", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn create_risk(
    who: Authenticated<SmsManager>,
    body: Json<RiskInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let view = save_risk(&svc, who.subject.clone(), None, body.0).await?;
    Ok(HttpResponse::Created().json(view))
}

/// `PUT /v1/risks/{id}`: assesses it again.
#[utoipa::path(put, path = "/v1/risks/{id}", tag = "system", request_body = RiskInput,
    params(("id" = String, Path, description = "Id or number")),
    responses((status = 200, description = "Assessed", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such risk", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn put_risk(
    who: Authenticated<SmsManager>,
    id: web::Path<String>,
    body: Json<RiskInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let view = save_risk(&svc, who.subject.clone(), Some(id.into_inner()), body.0).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A periodic review of a risk.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskReviewInput {
    /// What the review found.
    #[schema(min_length = 1, max_length = 10000)]
    pub notes: String,
    /// Close it (no longer relevant, or fully treated).
    #[serde(default)]
    pub close: bool,
}

/// `POST /v1/risks/{id}/review`: records its periodic review.
#[utoipa::path(post, path = "/v1/risks/{id}/review", tag = "system", request_body = RiskReviewInput,
    params(("id" = String, Path, description = "Id or number")),
    responses((status = 200, description = "Reviewed", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such risk", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn review_risk(
    who: Authenticated<SmsManager>,
    id: web::Path<String>,
    body: Json<RiskReviewInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    super::one_text("notes", &input.notes, 10_000)?;
    let (now, actor, key) = (svc.clock.now(), who.subject.clone(), id.into_inner());
    let view = svc
        .db
        .transaction(move |conn| -> Result<Value, Problem> {
            let mut row =
                rows::find_risk(conn, &key)?.ok_or_else(|| Problem::new(codes::RISK_NOT_FOUND))?;
            row.last_reviewed_at = now.naive_utc();
            row.updated_at = now.naive_utc();
            if input.close {
                row.state = "closed".to_owned();
            }
            rows::save_risk(conn, &row, false)?;
            audit(
                conn,
                &actor,
                "risk.reviewed",
                "risk",
                &row.id,
                &json!({"risk": &row, "notes": input.notes}),
                now,
            )?;
            Ok(risk_view(&row, now.date_naive()))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /v1/risks` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RiskQuery {
    /// `open` or `closed`.
    pub state: Option<String>,
    /// `low`, `medium` or `high`.
    pub level: Option<String>,
    /// Only those overdue for review.
    pub review_overdue: Option<bool>,
}

/// `GET /v1/risks`: the risk register, highest score first.
#[utoipa::path(get, path = "/v1/risks", tag = "system", params(RiskQuery),
    responses((status = 200, description = "Risks", body = Vec<Object>),
        (status = 400, description = "A bad filter, named", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn list_risks(
    _who: Authenticated<AnyRole>,
    query: Query<RiskQuery>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    if let Some(l) = &query.level
        && !["low", "medium", "high"].contains(&l.as_str())
    {
        return Err(Problem::field("level", "must be low, medium or high"));
    }
    let today = svc.clock.now().date_naive();
    let (state, level) = (query.state, query.level);
    let rows = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(rows::risks(conn, state, level)?) })
        .await?;
    let views: Vec<Value> = rows
        .iter()
        .map(|r| risk_view(r, today))
        .filter(|v| {
            query
                .review_overdue
                .is_none_or(|o| v["review_overdue"] == o)
        })
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

/// `GET /v1/risks/{id}`: one.
#[utoipa::path(get, path = "/v1/risks/{id}", tag = "system",
    params(("id" = String, Path, description = "Id or number")),
    responses((status = 200, description = "The risk", body = Object),
        (status = 404, description = "No such risk", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn get_risk(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let key = id.into_inner();
    let today = svc.clock.now().date_naive();
    let row = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            rows::find_risk(conn, &key)?.ok_or_else(|| Problem::new(codes::RISK_NOT_FOUND))
        })
        .await?;
    Ok(HttpResponse::Ok().json(risk_view(&row, today)))
}

/// An objective as set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveInput {
    /// Title.
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// How it is measured.
    #[schema(min_length = 1, max_length = 2000)]
    pub measure: String,
    /// Who owns it.
    #[schema(min_length = 1, max_length = 200)]
    pub owner: String,
    /// Where it starts.
    pub baseline: f64,
    /// Where it should get.
    pub target: f64,
    /// Unit.
    #[serde(default)]
    pub unit: String,
    /// `at_least` (higher is better) or `at_most`.
    pub direction: String,
    /// By when.
    pub due_on: NaiveDate,
}

fn objective_view(
    row: &ObjectiveRow,
    today: NaiveDate,
    history: Option<Vec<ProgressRow>>,
) -> Value {
    let mut v = view(row, &[]);
    v["progress_percent"] = json!(domain::progress(
        row.baseline,
        row.target,
        row.current_value
    ));
    v["overdue"] = json!(row.state == "open" && row.due_on < today);
    if let Some(h) = history {
        v["history"] = json!(h.iter().map(|p| view(p, &[])).collect::<Vec<_>>());
    }
    v
}

/// `POST /v1/objectives`: sets a measurable objective (6.2).
#[utoipa::path(post, path = "/v1/objectives", tag = "system", request_body = ObjectiveInput,
    responses((status = 201, description = "Set", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn create_objective(
    who: Authenticated<SmsManager>,
    body: Json<ObjectiveInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    text("title", &input.title, 200, true, &mut params);
    text("measure", &input.measure, 2000, true, &mut params);
    text("owner", &input.owner, 200, true, &mut params);
    text("unit", &input.unit, 20, false, &mut params);
    one_of(
        "direction",
        &input.direction,
        &["at_least", "at_most"],
        &mut params,
    );
    if !input.baseline.is_finite() || !input.target.is_finite() {
        params.push(InvalidParam::new(
            "target",
            "baseline and target are numbers",
        ));
    } else if domain::met(input.target, &input.direction, input.baseline) && params.is_empty() {
        params.push(InvalidParam::new(
            "target",
            "is met by the baseline already: nothing to achieve",
        ));
    }
    checked(params)?;
    let (now, actor) = (svc.clock.now(), who.subject.clone());
    let row = svc
        .db
        .transaction(move |conn| -> Result<ObjectiveRow, Problem> {
            let row = ObjectiveRow {
                id: uuid::Uuid::now_v7().to_string(),
                title: input.title,
                measure: input.measure,
                owner: input.owner,
                baseline: input.baseline,
                target: input.target,
                unit: input.unit,
                direction: input.direction,
                current_value: None,
                due_on: input.due_on,
                state: "open".to_owned(),
                created_by: actor.clone(),
                created_at: now.naive_utc(),
                updated_at: now.naive_utc(),
            };
            rows::save_objective(conn, &row, true)?;
            audit(
                conn,
                &actor,
                "objective.set",
                "objective",
                &row.id,
                &row,
                now,
            )?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Created().json(objective_view(&row, svc.clock.now().date_naive(), None)))
}

/// A measurement of an objective.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgressInput {
    /// The value measured.
    pub value: f64,
    /// Notes.
    #[serde(default)]
    pub note: String,
}

/// `POST /v1/objectives/{id}/progress`: records a measurement; the objective is achieved when it
/// meets the target.
#[utoipa::path(post, path = "/v1/objectives/{id}/progress", tag = "system", request_body = ProgressInput,
    params(("id" = String, Path, description = "Objective id")),
    responses((status = 200, description = "Recorded", body = Object),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such objective", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn record_progress(
    who: Authenticated<AnyRole>,
    id: web::Path<String>,
    body: Json<ProgressInput>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let input = body.0;
    let mut params = Vec::new();
    if !input.value.is_finite() {
        params.push(InvalidParam::new("value", "must be a number"));
    }
    text("note", &input.note, 2000, false, &mut params);
    checked(params)?;
    let (now, actor, key, manager) = (
        svc.clock.now(),
        who.subject.clone(),
        id.into_inner(),
        who.has("sms-manager"),
    );
    let view = svc
        .db
        .transaction(move |conn| -> Result<Value, Problem> {
            let mut row = rows::find_objective(conn, &key)?
                .ok_or_else(|| Problem::new(codes::OBJECTIVE_NOT_FOUND))?;
            if !manager && row.owner != actor {
                return Err(Problem::new(codes::FORBIDDEN)
                    .detail("only the objective's owner or the SMS manager records its progress"));
            }
            rows::add_progress(
                conn,
                &ProgressRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    objective_id: row.id.clone(),
                    value: input.value,
                    note: input.note,
                    recorded_by: actor.clone(),
                    at: now.naive_utc(),
                },
            )?;
            row.current_value = Some(input.value);
            row.state = if domain::met(row.target, &row.direction, input.value) {
                "achieved"
            } else {
                "open"
            }
            .to_owned();
            row.updated_at = now.naive_utc();
            rows::save_objective(conn, &row, false)?;
            audit(
                conn,
                &actor,
                "objective.measured",
                "objective",
                &row.id,
                &row,
                now,
            )?;
            let history = rows::progress(conn, &row.id)?;
            Ok(objective_view(&row, now.date_naive(), Some(history)))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /v1/objectives`: objectives with their progress.
#[utoipa::path(get, path = "/v1/objectives", tag = "system",
    responses((status = 200, description = "Objectives", body = Vec<Object>)),
    security(("bearer" = [])))]
pub async fn list_objectives(
    _who: Authenticated<AnyRole>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let today = svc.clock.now().date_naive();
    let rows = svc
        .db
        .run(|conn| -> Result<_, Problem> { Ok(rows::objectives(conn)?) })
        .await?;
    Ok(HttpResponse::Ok().json(
        rows.iter()
            .map(|r| objective_view(r, today, None))
            .collect::<Vec<_>>(),
    ))
}

/// `GET /v1/objectives/{id}`: one, with its measurements.
#[utoipa::path(get, path = "/v1/objectives/{id}", tag = "system",
    params(("id" = String, Path, description = "Objective id")),
    responses((status = 200, description = "The objective", body = Object),
        (status = 404, description = "No such objective", body = meridian_chassis::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn get_objective(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    svc: web::Data<Governance>,
) -> Result<HttpResponse, Problem> {
    let key = id.into_inner();
    let today = svc.clock.now().date_naive();
    let view = svc
        .db
        .run(move |conn| -> Result<Value, Problem> {
            let row = rows::find_objective(conn, &key)?
                .ok_or_else(|| Problem::new(codes::OBJECTIVE_NOT_FOUND))?;
            let history = rows::progress(conn, &row.id)?;
            Ok(objective_view(&row, today, Some(history)))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}
