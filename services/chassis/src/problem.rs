//! RFC 7807 `application/problem+json` errors, and the extractors that make bad input name its field.
//!
//! Every error a client sees is a [`Problem`] with a stable `code` from the catalogue below; each
//! code has a page in `docs/problems/<code>.md` and the problem `type` is `urn:meridian:problem:<code>`.
//! A 400 lists every bad field in `invalid-params` (JSON shape errors included, through
//! [`Json`] and [`Query`], which use `serde_path_to_error`). A 5xx says "internal error" and the
//! trace id; its cause goes to the log only.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One row of the error catalogue: a stable code, its HTTP status and its title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemCode {
    /// Stable snake_case code, e.g. `incident_not_found`.
    pub code: &'static str,
    /// The HTTP status it is sent with.
    pub status: u16,
    /// A short, fixed, human-readable summary.
    pub title: &'static str,
}

macro_rules! catalogue {
    ($($name:ident = ($code:literal, $status:literal, $title:literal);)*) => {
        /// The catalogue of problem codes: one row per code. Each has a page in `docs/problems/`.
        pub mod codes {
            use super::ProblemCode;
            $(
                #[doc = $title]
                pub const $name: ProblemCode = ProblemCode { code: $code, status: $status, title: $title };
            )*
            /// Every code, for the docs test.
            pub const ALL: &[ProblemCode] = &[$($name),*];
        }
    };
}

catalogue! {
    INVALID_BODY = ("invalid_body", 400, "The request body is not valid");
    INVALID_PARAMETERS = ("invalid_parameters", 400, "The request parameters are not valid");
    UNAUTHORIZED = ("unauthorized", 401, "Authentication is required");
    FORBIDDEN = ("forbidden", 403, "The caller lacks a role this action needs");
    NOT_FOUND = ("not_found", 404, "No such resource");
    METHOD_NOT_ALLOWED = ("method_not_allowed", 405, "The method is not allowed on this resource");
    PRECONDITION_FAILED = ("precondition_failed", 412, "The resource has changed since it was read");
    PAYLOAD_TOO_LARGE = ("payload_too_large", 413, "The request body is too large");
    UNSUPPORTED_MEDIA_TYPE = ("unsupported_media_type", 415, "The request body must be JSON");
    INTERNAL = ("internal", 500, "Internal error");
    UNAVAILABLE = ("unavailable", 503, "The service is not available right now");
    TOO_MANY_ATTEMPTS = ("too_many_attempts", 429, "Too many wrong attempts; wait before trying again");
    INCIDENT_NOT_FOUND = ("incident_not_found", 404, "No such incident");
    INCIDENT_TRANSITION_NOT_ALLOWED = ("incident_transition_not_allowed", 409, "The incident's state does not allow this action");
    MAJOR_INCIDENT_CRITERIA_NOT_MET = ("major_incident_criteria_not_met", 409, "The incident does not meet the major incident criteria");
    INCIDENT_ALREADY_MAJOR = ("incident_already_major", 409, "The incident is already a major incident");
    WORKFLOW_DEFINITION_INVALID = ("workflow_definition_invalid", 400, "The workflow definition is not valid");
    WORKFLOW_DEFINITION_NOT_FOUND = ("workflow_definition_not_found", 404, "No such workflow definition");
    WORKFLOW_INSTANCE_NOT_FOUND = ("workflow_instance_not_found", 404, "No such workflow instance");
    WORKFLOW_INSTANCE_NOT_RUNNING = ("workflow_instance_not_running", 409, "The workflow instance is no longer running");
    WORKFLOW_NOTHING_TO_RETRY = ("workflow_nothing_to_retry", 409, "The workflow instance has no incident to retry");
    TASK_NOT_FOUND = ("task_not_found", 404, "No such task");
    TASK_CLOSED = ("task_closed", 409, "The task is already completed or withdrawn");
    TASK_NOT_ALLOWED = ("task_not_allowed", 403, "The caller is neither the assignee nor a candidate of the task");
    SEGREGATION_OF_DUTIES = ("segregation_of_duties", 403, "Segregation of duties excludes this person from the task");
    CI_NOT_FOUND = ("ci_not_found", 404, "No such configuration item");
    CI_RELATION_EXISTS = ("ci_relation_exists", 409, "The two configuration items are already related this way");
    CI_RELATION_NOT_FOUND = ("ci_relation_not_found", 404, "No such relation");
    CHANGE_NOT_FOUND = ("change_not_found", 404, "No such change");
    CHANGE_TRANSITION_NOT_ALLOWED = ("change_transition_not_allowed", 409, "The change's state does not allow this action");
    CHANGE_IN_FREEZE_WINDOW = ("change_in_freeze_window", 409, "The change's window falls in a freeze window");
    DESIGN_NOT_ACCEPTED = ("design_not_accepted", 409, "The change needs an accepted service design and transition first");
    RELEASE_NOT_FOUND = ("release_not_found", 404, "No such release");
    RELEASE_NOT_APPROVED = ("release_not_approved", 409, "A change of the release is not approved");
    BASELINE_NOT_FOUND = ("baseline_not_found", 404, "No such baseline");
    CONFIG_AUDIT_NOT_FOUND = ("config_audit_not_found", 404, "No such configuration audit or discrepancy");
    NOTIFICATION_NOT_FOUND = ("notification_not_found", 404, "No such notification");
    NOT_FAILED = ("not_failed", 409, "Only a failed notification or delivery can be sent again");
    RECIPIENT_NOT_FOUND = ("recipient_not_found", 404, "No such recipient in the notifier's directory");
    NOTIFICATION_RULE_NOT_FOUND = ("notification_rule_not_found", 404, "No such notification rule");
    WEBHOOK_NOT_FOUND = ("webhook_not_found", 404, "No such webhook subscription or delivery");
    SERVICE_NOT_FOUND = ("service_not_found", 404, "No such service in the catalogue");
    CALENDAR_NOT_FOUND = ("calendar_not_found", 404, "No such business calendar");
    AGREEMENT_NOT_FOUND = ("agreement_not_found", 404, "No such service level agreement");
    BREACH_NOT_FOUND = ("breach_not_found", 404, "No such SLA breach");
    PROBLEM_NOT_FOUND = ("problem_not_found", 404, "No such problem");
    PROBLEM_TRANSITION_NOT_ALLOWED = ("problem_transition_not_allowed", 409, "The problem's state does not allow this action");
    REQUEST_NOT_FOUND = ("request_not_found", 404, "No such service request");
    REQUEST_TRANSITION_NOT_ALLOWED = ("request_transition_not_allowed", 409, "The service request's state does not allow this action");
    REQUEST_ITEM_NOT_FOUND = ("request_item_not_found", 400, "The catalogue offers no such request item");
    CUSTOMER_NOT_FOUND = ("customer_not_found", 404, "No such customer");
    CUSTOMER_EXISTS = ("customer_exists", 409, "A customer with this id exists already");
    PARTY_NOT_FOUND = ("party_not_found", 404, "No such party");
    SERVICE_REVIEW_NOT_FOUND = ("service_review_not_found", 404, "No such service review");
    SERVICE_REVIEW_NOT_PLANNED = ("service_review_not_planned", 409, "The service review was held already");
    FOLLOW_UP_ACTION_NOT_FOUND = ("follow_up_action_not_found", 404, "No such follow-up action");
    FOLLOW_UP_ACTION_CLOSED = ("follow_up_action_closed", 409, "The follow-up action is closed already");
    COMPLAINT_NOT_FOUND = ("complaint_not_found", 404, "No such complaint");
    COMPLAINT_TRANSITION_NOT_ALLOWED = ("complaint_transition_not_allowed", 409, "The complaint's state does not allow this action");
    SURVEY_LINK_INVALID = ("survey_link_invalid", 404, "This survey link is not valid");
    RISK_NOT_FOUND = ("risk_not_found", 404, "No such risk");
    OBJECTIVE_NOT_FOUND = ("objective_not_found", 404, "No such objective");
    DOCUMENT_NOT_FOUND = ("document_not_found", 404, "No such document");
    DOCUMENT_EXISTS = ("document_exists", 409, "A document with this reference exists already");
    DOCUMENT_VERSION_NOT_FOUND = ("document_version_not_found", 404, "No such document version");
    DOCUMENT_VERSION_NOT_DRAFT = ("document_version_not_draft", 409, "Only a draft version can be changed or submitted");
    DOCUMENT_WITHDRAWN = ("document_withdrawn", 409, "The document is withdrawn");
    AUDIT_NOT_FOUND = ("audit_not_found", 404, "No such audit");
    AUDIT_TRANSITION_NOT_ALLOWED = ("audit_transition_not_allowed", 409, "The audit's state does not allow this action");
    AUDITOR_NOT_INDEPENDENT = ("auditor_not_independent", 409, "The auditor is not independent of the area audited");
    NONCONFORMITY_NOT_FOUND = ("nonconformity_not_found", 404, "No such nonconformity");
    NONCONFORMITY_TRANSITION_NOT_ALLOWED = ("nonconformity_transition_not_allowed", 409, "The nonconformity's state does not allow this action");
    IMPROVEMENT_NOT_FOUND = ("improvement_not_found", 404, "No such improvement");
    IMPROVEMENT_TRANSITION_NOT_ALLOWED = ("improvement_transition_not_allowed", 409, "The improvement's state does not allow this action");
    MANAGEMENT_REVIEW_NOT_FOUND = ("management_review_not_found", 404, "No such management review");
    MANAGEMENT_REVIEW_HELD = ("management_review_held", 409, "The management review was held already");
    REVIEW_ACTION_NOT_FOUND = ("review_action_not_found", 404, "No such review action");
    REVIEW_ACTION_CLOSED = ("review_action_closed", 409, "The review action is closed already");
    SURVEY_LINK_EXPIRED = ("survey_link_expired", 410, "This survey link has expired");
    SURVEY_ALREADY_ANSWERED = ("survey_already_answered", 409, "This survey was answered already");
    SUPPLIER_NOT_FOUND = ("supplier_not_found", 404, "No such supplier");
    SUPPLIER_EXISTS = ("supplier_exists", 409, "A supplier with this id exists already");
    CONTRACT_NOT_FOUND = ("contract_not_found", 404, "No such contract");
    CONTRACT_NOT_ACTIVE = ("contract_not_active", 409, "The contract is not active");
    SUPPLIER_REVIEW_IN_PROGRESS = ("supplier_review_in_progress", 409, "A review of this contract is in progress");
    SUPPLIER_REVIEW_NOT_FOUND = ("supplier_review_not_found", 404, "No such supplier review");
    DISPUTE_NOT_FOUND = ("dispute_not_found", 404, "No such dispute");
    DISPUTE_RESOLVED = ("dispute_resolved", 409, "The dispute is resolved already");
}

/// One bad field, as in RFC 7807's own example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct InvalidParam {
    /// The field's path, e.g. `title` or `configuration_items[2]`.
    pub name: String,
    /// What is wrong with it.
    pub reason: String,
}

impl InvalidParam {
    /// A bad `name` for `reason`.
    pub fn new(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            reason: reason.into(),
        }
    }
}

/// An RFC 7807 problem, ready to be sent.
#[derive(Debug, Clone)]
pub struct Problem {
    code: ProblemCode,
    detail: Option<String>,
    invalid_params: Vec<InvalidParam>,
    allowed_actions: Box<[String]>,
    headers: Box<[(header::HeaderName, HeaderValue)]>,
}

/// The body as it goes on the wire (also the OpenAPI schema of every error).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProblemBody {
    /// `urn:meridian:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The catalogue title.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The stable code.
    pub code: String,
    /// Every bad field (400 only).
    #[serde(rename = "invalid-params", skip_serializing_if = "Vec::is_empty")]
    pub invalid_params: Vec<InvalidParam>,
    /// The actions the resource's state allows (409 on an illegal transition).
    #[serde(rename = "allowed-actions", skip_serializing_if = "Vec::is_empty")]
    pub allowed_actions: Vec<String>,
    /// The trace id of the request, to quote when reporting a problem.
    pub trace_id: String,
}

impl Problem {
    /// A problem of kind `code`, with no detail.
    pub fn new(code: ProblemCode) -> Self {
        Self {
            code,
            detail: None,
            invalid_params: Vec::new(),
            allowed_actions: Box::default(),
            headers: Box::default(),
        }
    }

    /// Adds what went wrong this time. Never pass an internal error's text here.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// A 400 listing the bad fields.
    pub fn invalid(code: ProblemCode, params: Vec<InvalidParam>) -> Self {
        let detail = match params.as_slice() {
            [one] => format!("`{}` {}", one.name, one.reason),
            many => format!("{} fields are not valid", many.len()),
        };
        Self {
            invalid_params: params,
            ..Self::new(code).detail(detail)
        }
    }

    /// A 400 about one field.
    pub fn field(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::invalid(codes::INVALID_BODY, vec![InvalidParam::new(name, reason)])
    }

    /// Lists the actions the current state allows (409).
    #[must_use]
    pub fn allowed_actions(mut self, actions: Vec<String>) -> Self {
        self.allowed_actions = actions.into_boxed_slice();
        self
    }

    /// Adds a response header (e.g. `WWW-Authenticate`, `Retry-After`).
    #[must_use]
    pub fn header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        let mut headers = std::mem::take(&mut self.headers).into_vec();
        headers.push((name, value));
        self.headers = headers.into_boxed_slice();
        self
    }

    /// A 500 whose cause is logged here, with the trace id, and never sent.
    pub fn internal(cause: &dyn fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(codes::INTERNAL)
    }

    /// The catalogue row.
    pub fn code(&self) -> ProblemCode {
        self.code
    }

    /// The bad fields.
    pub fn invalid_params(&self) -> &[InvalidParam] {
        &self.invalid_params
    }

    /// The wire body, with the trace id of the current request.
    pub fn body(&self) -> ProblemBody {
        ProblemBody {
            type_: format!("urn:meridian:problem:{}", self.code.code),
            title: self.code.title.to_owned(),
            status: self.code.status,
            detail: self.detail.clone(),
            code: self.code.code.to_owned(),
            invalid_params: self.invalid_params.clone(),
            allowed_actions: self.allowed_actions.to_vec(),
            trace_id: crate::telemetry::current_trace_id(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(detail) => write!(f, "{}: {detail}", self.code.code),
            None => f.write_str(self.code.code),
        }
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("application/problem+json");
        for (name, value) in &self.headers {
            response.insert_header((name.clone(), value.clone()));
        }
        response.json(self.body())
    }
}

impl From<crate::db::DbError> for Problem {
    fn from(error: crate::db::DbError) -> Self {
        match error {
            crate::db::DbError::Unavailable(_) => {
                tracing::warn!(%error, "database unavailable");
                Self::new(codes::UNAVAILABLE)
                    .detail("the database is not reachable; try again shortly")
                    .header(header::RETRY_AFTER, HeaderValue::from_static("2"))
            }
            crate::db::DbError::Query(ref query) if crate::db::contention(query) => {
                tracing::warn!(%error, "database contention");
                Self::new(codes::UNAVAILABLE)
                    .detail("too much at once on the same records; try again shortly")
                    .header(header::RETRY_AFTER, HeaderValue::from_static("1"))
            }
            crate::db::DbError::Query(ref query) if crate::db::connection_lost(query) => {
                tracing::warn!(%error, "database connection lost");
                Self::new(codes::UNAVAILABLE)
                    .detail("the database connection was lost; try again shortly")
                    .header(header::RETRY_AFTER, HeaderValue::from_static("2"))
            }
            crate::db::DbError::Query(_) => Self::internal(&error),
        }
    }
}

impl From<diesel::result::Error> for Problem {
    fn from(error: diesel::result::Error) -> Self {
        Self::from(crate::db::DbError::Query(error))
    }
}

/// Turns a deserialisation error into the name and reason of the field at fault.
fn describe<E: fmt::Display>(error: serde_path_to_error::Error<E>) -> InvalidParam {
    let path = error.path().to_string();
    let message = error.into_inner().to_string();
    // serde_json appends " at line 1 column 9"; the field name says more.
    let message = match message.find(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message,
    };
    // For a missing field serde names the field in the message and the path stops at the parent:
    // complete the path so `name` points at the field itself.
    let field = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
        .map(str::to_owned);
    let name = match (field, path.as_str()) {
        (Some(field), "." | "") => field,
        (Some(field), parent) => format!("{parent}.{field}"),
        (None, "." | "") => "body".to_owned(),
        (None, path) => path.to_owned(),
    };
    let reason = match message.split_once(", expected ") {
        Some((what, expected)) if message.starts_with("invalid type") => {
            format!("expected {expected} ({what})")
        }
        _ => message,
    };
    InvalidParam::new(name, reason)
}

/// Deserialises JSON bytes into `T`, naming the field at fault.
///
/// # Errors
/// A 400 `invalid_body` problem naming the field.
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::field(
            "body",
            "the request body is empty; send a JSON object",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| Problem::invalid(codes::INVALID_BODY, vec![describe(error)]))?;
    deserializer
        .end()
        .map_err(|_| Problem::field("body", "trailing characters after the JSON value"))?;
    Ok(value)
}

/// A JSON body extractor whose errors are problems naming the field (`title: expected a string`).
#[derive(Debug)]
pub struct Json<T>(pub T);

/// The JSON body limit, from `http.max_body_bytes`; put it in app data.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Problem>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_json_body(req, payload);
        Box::pin(async move { from_json(&body.await?).map(Json) })
    }
}

/// A JSON body that may be left out (no body at all): `None` then. A body that is there must be
/// JSON and valid, as for [`Json`]; it is never taken for absent.
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Problem>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let empty = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v.trim() == "0")
            && req.headers().get(header::TRANSFER_ENCODING).is_none();
        if empty {
            return Box::pin(async { Ok(OptionalJson(None)) });
        }
        let body = read_json_body(req, payload);
        Box::pin(async move { from_json(&body.await?).map(|v| OptionalJson(Some(v))) })
    }
}

/// Reads a body that must be JSON (by its content type) and within `http.max_body_bytes`.
fn read_json_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<web::BytesMut, Problem>> + 'static {
    let limit = req
        .app_data::<BodyLimit>()
        .map_or(256 * 1024, |limit| limit.0);
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
        .unwrap_or(false);
    let mut payload = payload.take();
    async move {
        if !is_json {
            return Err(Problem::new(codes::UNSUPPORTED_MEDIA_TYPE)
                .detail("send the body as application/json"));
        }
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk =
                chunk.map_err(|_| Problem::field("body", "the request body could not be read"))?;
            if body.len() + chunk.len() > limit {
                return Err(Problem::new(codes::PAYLOAD_TOO_LARGE)
                    .detail(format!("the body may hold at most {limit} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// A query-string extractor whose errors are problems naming the parameter.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = Problem;
    type Future = std::future::Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let pairs = form_urlencoded::parse(req.query_string().as_bytes());
        let deserializer = serde_urlencoded::Deserializer::new(pairs);
        let result = serde_path_to_error::deserialize(deserializer)
            .map(Query)
            .map_err(|error| {
                let mut param = describe(error);
                if param.name == "body" {
                    param.name = "query".to_owned();
                }
                Problem::invalid(codes::INVALID_PARAMETERS, vec![param])
            });
        std::future::ready(result)
    }
}

/// A path segment that failed to parse (e.g. an id that is not a UUID) names itself.
pub fn path_error(error: actix_web::error::PathError, _req: &HttpRequest) -> actix_web::Error {
    let reason = match &error {
        actix_web::error::PathError::Deserialize(inner) => inner.to_string(),
        other => other.to_string(),
    };
    Problem::invalid(
        codes::INVALID_PARAMETERS,
        vec![InvalidParam::new("id", reason)],
    )
    .into()
}

/// The response for routes that do not exist.
///
/// # Errors
/// Always: a 404 problem.
#[expect(clippy::unused_async, reason = "actix handlers are async")]
pub async fn not_found() -> Result<HttpResponse, Problem> {
    Err(Problem::new(codes::NOT_FOUND).detail("no route matches this path"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deadlock between concurrent transactions (seen under load: two approvers deciding the
    /// same task at once) is a 503 to retry, never a 500.
    #[test]
    fn contention_is_a_503_to_retry_and_other_query_failures_are_500() {
        use diesel::result::{DatabaseErrorKind, Error};
        let deadlock = Error::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new("deadlock detected".to_owned()),
        );
        let problem = Problem::from(crate::db::DbError::Query(deadlock));
        assert_eq!(problem.code().status, 503);
        let response = problem.error_response();
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "1");
        let serialization = Error::DatabaseError(
            DatabaseErrorKind::SerializationFailure,
            Box::new("could not serialize access".to_owned()),
        );
        assert_eq!(Problem::from(serialization).code().status, 503);
        let broken = Error::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new("syntax error".to_owned()),
        );
        assert_eq!(Problem::from(broken).code().status, 500);
    }

    /// The database restarting under a request (seen in the fault suite) is a 503 to retry.
    #[test]
    fn a_lost_database_connection_is_a_503_to_retry() {
        use diesel::result::{DatabaseErrorKind, Error};
        for message in [
            "server closed the connection unexpectedly",
            "no connection to the server\n",
            "terminating connection due to administrator command",
            "the database system is starting up",
        ] {
            let lost =
                Error::DatabaseError(DatabaseErrorKind::Unknown, Box::new(message.to_owned()));
            assert_eq!(Problem::from(lost).code().status, 503, "{message}");
        }
        let closed =
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, Box::new(String::new()));
        assert_eq!(Problem::from(closed).code().status, 503);
        assert_eq!(
            Problem::from(Error::BrokenTransactionManager).code().status,
            503
        );
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "fields are read by serde only")]
    struct Body {
        title: String,
        tags: Vec<String>,
        nested: Option<Nested>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "fields are read by serde only")]
    struct Nested {
        count: u32,
    }

    fn bad(json: &str) -> InvalidParam {
        let problem = from_json::<Body>(json.as_bytes()).unwrap_err();
        assert_eq!(problem.code(), codes::INVALID_BODY);
        problem.invalid_params()[0].clone()
    }

    #[test]
    fn a_wrong_type_names_the_field_and_the_expected_type() {
        let param = bad(r#"{"title": 5, "tags": []}"#);
        assert_eq!(param.name, "title");
        assert!(
            param.reason.starts_with("expected a string"),
            "{}",
            param.reason
        );
    }

    #[test]
    fn a_bad_array_element_names_its_index() {
        let param = bad(r#"{"title": "x", "tags": ["a", 3]}"#);
        assert_eq!(param.name, "tags[1]");
    }

    #[test]
    fn an_unknown_field_is_named_with_its_parent() {
        assert_eq!(
            bad(r#"{"title": "x", "tags": [], "colour": 1}"#).name,
            "colour"
        );
        let param = bad(r#"{"title": "x", "tags": [], "nested": {"count": 1, "x": 2}}"#);
        assert_eq!(param.name, "nested.x");
    }

    #[test]
    fn a_missing_field_is_named() {
        assert_eq!(bad(r#"{"tags": []}"#).name, "title");
        assert_eq!(
            bad(r#"{"title": "x", "tags": [], "nested": {}}"#).name,
            "nested.count"
        );
    }

    #[test]
    fn an_empty_or_broken_body_names_the_body() {
        assert_eq!(bad("").name, "body");
        assert_eq!(bad("{\"title\": ").name, "title");
        assert_eq!(bad("42").name, "body");
    }

    #[test]
    fn every_code_has_its_documentation_page() {
        let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/problems");
        for code in codes::ALL {
            let page = format!("{docs}/{}.md", code.code);
            assert!(std::path::Path::new(&page).exists(), "missing {page}");
        }
    }

    #[test]
    fn codes_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in codes::ALL {
            assert!(seen.insert(code.code), "{} twice", code.code);
        }
    }
}
