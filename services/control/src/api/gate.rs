//! The change gate over HTTP: `POST /v1/admission/change-gate` (a Kubernetes validating
//! admission webhook, served only on its own TLS listener, [`server`]), and
//! `GET /v1/change-gate/decisions` (every decision, on the API).
//!
//! A review that is not a well-formed `admission.k8s.io/v1` AdmissionReview is answered 400 with
//! a problem naming the field, never an allow; with `failurePolicy: Fail` the API server then
//! refuses the change.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::{Authenticated, Role};
use meridian_chassis::db::DbError;
use meridian_chassis::problem::{InvalidParam, Query, codes};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::Control;
use crate::domain::gate::{self, GateRequest, Verdict};
use crate::store::gate::{self as store, DecisionRow};

/// Reads the change gate's decisions.
#[derive(Debug)]
pub struct GateReader;
impl Role for GateReader {
    const ANY_OF: &'static [&'static str] = &["change-manager", "configuration-manager", "auditor"];
}

/// The kinds the gate judges (`apps/v1`).
const WORKLOADS: [&str; 3] = ["Deployment", "StatefulSet", "DaemonSet"];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review {
    api_version: String,
    kind: String,
    request: Option<ReviewRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewRequest {
    uid: String,
    kind: GroupVersionKind,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    operation: String,
    user_info: UserInfo,
    #[serde(default)]
    object: Option<Value>,
    #[serde(default)]
    old_object: Option<Value>,
    #[serde(default)]
    dry_run: bool,
}

#[derive(Debug, Deserialize)]
struct GroupVersionKind {
    #[serde(default)]
    group: String,
    kind: String,
}

#[derive(Debug, Deserialize)]
struct UserInfo {
    #[serde(default)]
    username: String,
    #[serde(default)]
    groups: Vec<String>,
}

fn review_response(uid: &str, allowed: bool, message: &str, warnings: &[String]) -> HttpResponse {
    let mut response = json!({"uid": uid, "allowed": allowed});
    if !allowed {
        response["status"] = json!({"code": 403, "reason": "Forbidden", "message": message});
    }
    if !warnings.is_empty() {
        response["warnings"] = json!(warnings);
    }
    HttpResponse::Ok().json(json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    }))
}

/// Checks the review's shape; the request, or the problem naming the field.
fn checked(review: Review) -> Result<ReviewRequest, Problem> {
    let mut params = Vec::new();
    if review.api_version != "admission.k8s.io/v1" {
        params.push(InvalidParam::new(
            "apiVersion",
            "must be admission.k8s.io/v1",
        ));
    }
    if review.kind != "AdmissionReview" {
        params.push(InvalidParam::new("kind", "must be AdmissionReview"));
    }
    let Some(request) = review.request else {
        params.push(InvalidParam::new("request", "is required"));
        return Err(Problem::invalid(codes::INVALID_BODY, params));
    };
    if request.uid.trim().is_empty() {
        params.push(InvalidParam::new("request.uid", "is required"));
    }
    if !matches!(
        request.operation.as_str(),
        "CREATE" | "UPDATE" | "DELETE" | "CONNECT"
    ) {
        params.push(InvalidParam::new(
            "request.operation",
            "must be CREATE, UPDATE, DELETE or CONNECT",
        ));
    }
    if request.namespace.is_empty() {
        params.push(InvalidParam::new(
            "request.namespace",
            "is required (the gate judges namespaced workloads)",
        ));
    }
    let object = if request.operation == "DELETE" {
        &request.old_object
    } else {
        &request.object
    };
    if request.operation != "CONNECT" && !object.as_ref().is_some_and(Value::is_object) {
        let field = if request.operation == "DELETE" {
            "request.oldObject"
        } else {
            "request.object"
        };
        params.push(InvalidParam::new(field, "must be the workload"));
    }
    if params.is_empty() {
        Ok(request)
    } else {
        Err(Problem::invalid(codes::INVALID_BODY, params))
    }
}

/// `POST /v1/admission/change-gate`: one AdmissionReview.
///
/// # Errors
/// A malformed review (400, naming the field) or the database failing (503): never an allow.
pub async fn admission(body: web::Bytes, svc: web::Data<Control>) -> Result<HttpResponse, Problem> {
    let review: Review = meridian_chassis::problem::from_json(&body)?;
    let request = checked(review)?;
    let object = if request.operation == "DELETE" {
        request.old_object.clone()
    } else {
        request.object.clone()
    }
    .unwrap_or(Value::Null);
    let metadata = &object["metadata"];
    let name = if request.name.is_empty() {
        metadata["name"]
            .as_str()
            .or_else(|| metadata["generateName"].as_str())
            .unwrap_or_default()
            .to_owned()
    } else {
        request.name.clone()
    };
    let config = svc.config.change_gate.clone();
    let annotated = metadata["annotations"][config.annotation.as_str()]
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let workload = request.kind.group == "apps" && WORKLOADS.contains(&request.kind.kind.as_str());
    let gate_request = GateRequest {
        operation: request.operation.clone(),
        kind: request.kind.kind.clone(),
        namespace: request.namespace.clone(),
        name,
        username: request.user_info.username.clone(),
        groups: request.user_info.groups.clone(),
        annotated_change: annotated,
    };
    let now = svc.clock.now();
    let freezes = svc.config.freeze_windows.clone();
    let uid = request.uid.clone();
    let dry_run = request.dry_run;
    let decided = svc
        .db
        .transaction(move |conn| -> Result<DecisionRow, DbError> {
            // The API server may ask again with the same uid: the same answer, recorded once.
            if let Some(earlier) = store::by_review(conn, &uid)? {
                return Ok(earlier);
            }
            let verdict = if workload {
                let named = match &gate_request.annotated_change {
                    Some(key) => store::named(conn, key)?.map(|c| store::candidate(&c)),
                    None => None,
                };
                let cis = store::workload_cis(conn, &gate_request.namespace, &gate_request.name)?;
                let by_ci: Vec<_> = store::covering(conn, &cis, now)?
                    .iter()
                    .map(store::candidate)
                    .collect();
                gate::decide(
                    &gate_request,
                    now,
                    &freezes,
                    &config.break_glass_groups,
                    named.as_ref(),
                    &by_ci,
                )
            } else {
                Verdict::Allow {
                    reason: format!("{} is not a workload the gate judges", gate_request.kind),
                    change: None,
                    break_glass: false,
                }
            };
            let (allowed, reason, change, break_glass) = match verdict {
                Verdict::Allow {
                    reason,
                    change,
                    break_glass,
                } => (true, reason, change, break_glass),
                Verdict::Deny { reason } => (false, reason, None, false),
            };
            let row = DecisionRow {
                id: uuid::Uuid::now_v7().to_string(),
                review_uid: uid.clone(),
                decided_at: now.naive_utc(),
                username: gate_request.username.clone(),
                groups: serde_json::to_string(&gate_request.groups).unwrap_or_default(),
                operation: gate_request.operation.clone(),
                kind: gate_request.kind.clone(),
                namespace: gate_request.namespace.clone(),
                name: gate_request.name.clone(),
                allowed,
                break_glass,
                dry_run,
                change_id: change.as_ref().map(|c| c.id.clone()),
                reason,
            };
            store::record(conn, &row, change.as_ref(), now)?;
            Ok(row)
        })
        .await?;
    svc.waker.wake();
    let warnings = if decided.break_glass {
        vec![format!("Meridian change gate: {}", decided.reason)]
    } else {
        Vec::new()
    };
    Ok(review_response(
        &request.uid,
        decided.allowed,
        &decided.reason,
        &warnings,
    ))
}

/// A decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionView {
    /// Id.
    pub id: String,
    /// The AdmissionReview's uid.
    pub review_uid: String,
    /// When.
    pub decided_at: DateTime<Utc>,
    /// Who asked.
    pub username: String,
    /// Their groups.
    pub groups: Vec<String>,
    /// `CREATE`, `UPDATE` or `DELETE`.
    pub operation: String,
    /// The workload's kind.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Let through.
    pub allowed: bool,
    /// By a break-glass group.
    pub break_glass: bool,
    /// A dry run.
    pub dry_run: bool,
    /// The covering change.
    pub change_id: Option<String>,
    /// Why.
    pub reason: String,
}

impl From<DecisionRow> for DecisionView {
    fn from(r: DecisionRow) -> Self {
        Self {
            groups: serde_json::from_str(&r.groups).unwrap_or_default(),
            id: r.id,
            review_uid: r.review_uid,
            decided_at: meridian_chassis::clock::utc(r.decided_at),
            username: r.username,
            operation: r.operation,
            kind: r.kind,
            namespace: r.namespace,
            name: r.name,
            allowed: r.allowed,
            break_glass: r.break_glass,
            dry_run: r.dry_run,
            change_id: r.change_id,
            reason: r.reason,
        }
    }
}

/// `GET /v1/change-gate/decisions` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DecisionQuery {
    /// Only allowed (`true`) or denied (`false`).
    pub allowed: Option<bool>,
    /// Only in this namespace.
    pub namespace: Option<String>,
    /// Only under this change (id).
    pub change: Option<String>,
    /// The cursor: the last id of the previous page.
    pub after: Option<String>,
    /// Page size, 1–500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// A page of decisions.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionPage {
    /// Oldest first.
    pub items: Vec<DecisionView>,
    /// The next page's cursor.
    pub next: Option<String>,
}

/// `GET /v1/change-gate/decisions`: what the gate let through or refused, and why.
#[utoipa::path(get, path = "/v1/change-gate/decisions", tag = "changes", params(DecisionQuery),
    responses(
        (status = 200, description = "A page of decisions", body = DecisionPage),
        (status = 400, description = "A bad filter, named", body = meridian_chassis::problem::ProblemBody),
        (status = 403, description = "Not a change manager, configuration manager or auditor", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_decisions(
    _who: Authenticated<GateReader>,
    query: Query<DecisionQuery>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::field("limit", "must be 1 to 500"));
    }
    let filter = store::Filter {
        allowed: query.allowed,
        namespace: query.namespace,
        change_id: query.change,
        after: query.after,
        limit: limit + 1,
    };
    let page = svc
        .db
        .run(move |conn| -> Result<DecisionPage, Problem> {
            let mut rows = store::list(conn, &filter)?;
            let max = usize::try_from(limit).unwrap_or(usize::MAX);
            let more = rows.len() > max;
            rows.truncate(max);
            let next = more.then(|| rows.last().map(|r| r.id.clone())).flatten();
            Ok(DecisionPage {
                items: rows.into_iter().map(DecisionView::from).collect(),
                next,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// The admission route alone (for the TLS listener).
pub fn configure_admission(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/admission/change-gate", web::post().to(admission));
}

/// The change gate's TLS listener on `control.change_gate.bind`, serving only the admission
/// route (plus `/healthz`).
///
/// # Errors
/// The certificate or key cannot be read, or the address cannot be bound.
pub fn server(control: Control) -> anyhow::Result<(std::net::SocketAddr, actix_web::dev::Server)> {
    use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};
    let config = control.config.change_gate.clone();
    let mut tls = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    tls.set_private_key_file(&config.tls_key_file, SslFiletype::PEM)
        .map_err(|e| {
            anyhow::anyhow!(
                "control.change_gate.tls_key_file {}: {e}",
                config.tls_key_file
            )
        })?;
    tls.set_certificate_chain_file(&config.tls_cert_file)
        .map_err(|e| {
            anyhow::anyhow!(
                "control.change_gate.tls_cert_file {}: {e}",
                config.tls_cert_file
            )
        })?;
    let data = web::Data::new(control);
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(4 * 1024 * 1024))
            .configure(configure_admission)
            .route(
                "/healthz",
                web::get().to(|| async { HttpResponse::Ok().body("ok") }),
            )
            .default_service(web::to(meridian_chassis::problem::not_found))
    })
    .workers(2)
    .disable_signals()
    .bind_openssl(&config.bind, tls)
    .map_err(|e| anyhow::anyhow!("control.change_gate.bind {}: {e}", config.bind))?;
    let address = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("no address bound"))?;
    Ok((address, server.run()))
}
