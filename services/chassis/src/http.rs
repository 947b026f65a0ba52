//! What every service's HTTP server has besides its own routes: `/healthz`, `/readyz`,
//! `/metrics`, the request middleware, the body limit and the problem responses for bad paths and
//! unknown routes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};

use crate::bus::Bus;
use crate::db::Db;
use crate::problem::{BodyLimit, codes};
use crate::telemetry::Metrics;

/// What `/readyz` checks: every database of the process, and the bus.
#[derive(Clone, Debug)]
pub struct Readiness {
    /// The databases.
    pub dbs: Vec<Db>,
    /// The bus.
    pub bus: Bus,
}

/// `GET /healthz`: the process is alive.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// `GET /readyz`: ready only when every database and the bus answer.
async fn readyz(readiness: web::Data<Readiness>) -> HttpResponse {
    let mut databases = true;
    for db in &readiness.dbs {
        databases &= db.ping().await;
    }
    let bus = readiness.bus.ping().await;
    let body = serde_json::json!({
        "status": if databases && bus { "ready" } else { "unready" },
        "database": databases,
        "bus": bus,
    });
    if databases && bus {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(body)
    }
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render())
}

/// Registers the shared routes and the error handlers of the built-in extractors.
pub fn configure(cfg: &mut web::ServiceConfig, max_body_bytes: usize) {
    cfg.app_data(BodyLimit(max_body_bytes))
        .app_data(web::PathConfig::default().error_handler(crate::problem::path_error))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

/// How many requests a process serves at once (`http.max_in_flight`); past that it sheds load.
#[derive(Debug, Clone)]
pub struct InFlight {
    max: usize,
    now: Arc<AtomicUsize>,
}

impl InFlight {
    /// At most `max` requests at once (0: no limit).
    pub fn new(max: usize) -> Self {
        Self {
            max,
            now: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// Gives the slot back when the request is done, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Middleware that sheds load: past `InFlight`'s limit a request is answered at once with a 503
/// problem and `Retry-After: 1`, never queued behind the others until it times out, never a 500.
/// Health, readiness and metrics are always answered.
///
/// # Errors
/// Whatever the inner service returns.
pub async fn shed(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let limit = req.app_data::<web::Data<InFlight>>().cloned();
    let exempt = matches!(req.path(), "/healthz" | "/readyz" | "/metrics");
    let slot = match limit {
        Some(limit) if limit.max > 0 && !exempt => {
            if limit.now.fetch_add(1, Ordering::AcqRel) >= limit.max {
                limit.now.fetch_sub(1, Ordering::AcqRel);
                let problem = crate::Problem::new(codes::UNAVAILABLE)
                    .detail("over capacity; try again shortly")
                    .header(
                        actix_web::http::header::RETRY_AFTER,
                        actix_web::http::header::HeaderValue::from_static("1"),
                    );
                return Ok(req
                    .into_response(problem.error_response())
                    .map_into_right_body());
            }
            Some(Slot(limit.now.clone()))
        }
        _ => None,
    };
    let response = next.call(req).await?;
    drop(slot);
    Ok(response.map_into_left_body())
}

/// The response to a method a resource does not have.
///
/// # Errors
/// Always: a 405 problem.
#[expect(clippy::unused_async, reason = "actix handlers are async")]
pub async fn method_not_allowed(allow: &'static str) -> Result<HttpResponse, crate::Problem> {
    Err(crate::Problem::new(codes::METHOD_NOT_ALLOWED).header(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_static(allow),
    ))
}

/// Adds the bearer (JWT) security scheme to a service's OpenAPI document.
#[derive(Debug)]
pub struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Says in an OpenAPI document (as JSON) what every operation answers when it fails: each error
/// response is an RFC 7807 problem (`application/problem+json`), and any status an operation
/// does not list (401 without a token, 413 for a body too large, 429, 503 when shedding load or
/// without its database) is one too, as the operation's `default` response.
pub fn document_problems(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    const PROBLEM: &str = "#/components/schemas/ProblemBody";
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(Value::as_object_mut)
    {
        let responses = operation
            .entry("responses")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        let Some(responses) = responses else { continue };
        for response in responses.values_mut() {
            let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else {
                continue;
            };
            let is_problem = content
                .get("application/json")
                .is_some_and(|c| c["schema"]["$ref"] == PROBLEM);
            if is_problem && let Some(media) = content.remove("application/json") {
                content.insert("application/problem+json".to_owned(), media);
            }
        }
        responses.entry("default").or_insert_with(|| {
            json!({
                "description": "Any other failure, as an RFC 7807 problem: 401 without a valid \
                    token, 403 without the role, 413 for a body too large, 415 for a body that \
                    is not JSON, 429 after too many attempts, 503 when the service sheds load or \
                    cannot reach its database (with Retry-After)",
                "content": {"application/problem+json": {"schema": {"$ref": PROBLEM}}}
            })
        });
    }
}

/// Writes each `allOf` of object schemas in an OpenAPI document (as JSON) as the one object it
/// is. A view that embeds its input (`#[serde(flatten)]`) is documented as `allOf` of the input,
/// which allows no other properties, and the view's own fields: no value can satisfy both, so
/// the document would describe nothing the API sends. The merged object has every member's
/// properties and required fields, and allows no others when a member did not.
pub fn merge_all_of(doc: &mut serde_json::Value) {
    use serde_json::Value;
    // Members that are themselves `allOf` merge first: a few passes settle every depth.
    for _ in 0..4 {
        let schemas = doc
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if !merge_in(doc, &schemas) {
            return;
        }
    }
}

/// The characters `str::trim` removes (Unicode `White_Space`, as `char::is_whitespace` has it):
/// a required text of nothing else is refused as blank.
const WHITESPACE: &[(char, char)] = &[
    ('\u{9}', '\u{d}'),
    (' ', ' '),
    ('\u{85}', '\u{85}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

/// The pattern of a text that is not blank: one character at least that is not whitespace
/// (ECMA-262 syntax, searched anywhere in the value, as JSON Schema's `pattern` is).
pub fn not_blank_pattern() -> String {
    let mut pattern = String::from("[^");
    for (from, to) in WHITESPACE {
        pattern.push_str(&format!("\\u{:04x}", u32::from(*from)));
        if from != to {
            pattern.push_str(&format!("-\\u{:04x}", u32::from(*to)));
        }
    }
    pattern.push(']');
    pattern
}

/// Gives every string schema with a `minLength` (and no pattern of its own) the pattern of
/// [`not_blank_pattern`]: the handlers refuse a required text that is only whitespace, and the
/// document says so.
pub fn texts_not_blank(doc: &mut serde_json::Value) {
    use serde_json::Value;
    fn walk(node: &mut Value, pattern: &str) {
        match node {
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, pattern)),
            Value::Object(map) => {
                let string = match map.get("type") {
                    Some(Value::String(t)) => t == "string",
                    Some(Value::Array(ts)) => ts.iter().any(|t| t == "string"),
                    _ => false,
                };
                let required = map
                    .get("minLength")
                    .and_then(Value::as_u64)
                    .is_some_and(|n| n >= 1);
                if string && required && !map.contains_key("pattern") {
                    map.insert("pattern".to_owned(), Value::String(pattern.to_owned()));
                }
                map.values_mut().for_each(|v| walk(v, pattern));
            }
            _ => {}
        }
    }
    walk(doc, &not_blank_pattern());
}

/// Merges the `allOf`s under `node`; whether any was.
fn merge_in(
    node: &mut serde_json::Value,
    schemas: &serde_json::Map<String, serde_json::Value>,
) -> bool {
    use serde_json::Value;
    let mut merged = false;
    match node {
        Value::Array(items) => {
            for item in items {
                merged |= merge_in(item, schemas);
            }
        }
        Value::Object(map) => {
            if let Some(Value::Array(members)) = map.get("allOf") {
                let resolved: Vec<Value> = members
                    .iter()
                    .map(|m| {
                        m.get("$ref")
                            .and_then(Value::as_str)
                            .and_then(|r| r.strip_prefix("#/components/schemas/"))
                            .and_then(|name| schemas.get(name))
                            .unwrap_or(m)
                            .clone()
                    })
                    .collect();
                let objects = resolved
                    .iter()
                    .all(|m| m.get("properties").is_some() && m.get("allOf").is_none());
                if objects {
                    let (mut properties, mut required) = (serde_json::Map::new(), Vec::new());
                    let mut closed = false;
                    for member in &resolved {
                        if let Some(p) = member.get("properties").and_then(Value::as_object) {
                            properties.extend(p.clone());
                        }
                        for r in member
                            .get("required")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                        {
                            if !required.contains(r) {
                                required.push(r.clone());
                            }
                        }
                        closed |= member.get("additionalProperties") == Some(&Value::Bool(false));
                    }
                    map.remove("allOf");
                    map.insert("type".to_owned(), Value::from("object"));
                    map.insert("properties".to_owned(), Value::Object(properties));
                    if !required.is_empty() {
                        map.insert("required".to_owned(), Value::Array(required));
                    }
                    if closed {
                        map.insert("additionalProperties".to_owned(), Value::Bool(false));
                    }
                    merged = true;
                }
            }
            for value in map.values_mut() {
                merged |= merge_in(value, schemas);
            }
        }
        _ => {}
    }
    merged
}

/// The `Allow` header of a resource with these methods (lower-case idents), e.g. `GET, POST`.
#[macro_export]
#[doc(hidden)]
macro_rules! __allow {
    ($first:ident $(, $method:ident)*) => {
        ::core::concat!($crate::http::method_name!($first) $(, ", ", $crate::http::method_name!($method))*)
    };
}
pub use __allow as allow;

/// The upper-case name of a method ident.
#[macro_export]
#[doc(hidden)]
macro_rules! __method_name {
    (get) => {
        "GET"
    };
    (post) => {
        "POST"
    };
    (put) => {
        "PUT"
    };
    (patch) => {
        "PATCH"
    };
    (delete) => {
        "DELETE"
    };
}
pub use __method_name as method_name;

/// A service's route table: `ROUTES` (every `(method, path)`, as the OpenAPI document has
/// them) and `configure` (registers each route; other methods on a known path get a 405
/// problem).
#[macro_export]
macro_rules! routes {
    ($($path:literal => { $($method:ident : $handler:path),+ $(,)? }),+ $(,)?) => {
        /// Every route as `(method, path)`, as they appear in the OpenAPI document.
        pub const ROUTES: &[(&str, &str)] = &[$($((stringify!($method), $path)),+),+];

        /// Registers every route; other methods on a known path get a 405 problem.
        pub fn configure(cfg: &mut ::actix_web::web::ServiceConfig) {
            $(
                cfg.service(
                    ::actix_web::web::resource($path)
                        $(.route(::actix_web::web::$method().to($handler)))+
                        .default_service(::actix_web::web::to(|| {
                            $crate::http::method_not_allowed($crate::http::allow!($($method),+))
                        })),
                );
            )+
        }
    };
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actix_web::dev::Service as _;
    use actix_web::middleware::from_fn;
    use actix_web::{App, test, web};

    use super::{InFlight, WHITESPACE, not_blank_pattern, shed, texts_not_blank};

    #[actix_web::test]
    async fn the_not_blank_pattern_excludes_exactly_what_trim_removes() {
        let all = (0..=0x0010_ffff_u32).filter_map(char::from_u32);
        for c in all {
            let listed = WHITESPACE
                .iter()
                .any(|(from, to)| (*from..=*to).contains(&c));
            assert_eq!(listed, c.is_whitespace(), "{:04x}", u32::from(c));
        }
        assert_eq!(
            not_blank_pattern(),
            "[^\\u0009-\\u000d\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028-\\u2029\\u202f\\u205f\\u3000]"
        );
        let mut doc = serde_json::json!({"properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": 200},
            "owner": {"type": ["string", "null"], "minLength": 1},
            "slug": {"type": "string", "minLength": 1, "pattern": "^[a-z]+$"},
            "notes": {"type": "string", "maxLength": 20},
        }});
        texts_not_blank(&mut doc);
        let pattern = |f: &str| doc["properties"][f]["pattern"].clone();
        assert_eq!(pattern("title"), serde_json::json!(not_blank_pattern()));
        assert_eq!(pattern("owner"), serde_json::json!(not_blank_pattern()));
        assert_eq!(pattern("slug"), "^[a-z]+$");
        assert!(pattern("notes").is_null());
    }

    /// Past the limit, requests are answered 503 with Retry-After at once; the ones within it
    /// are served; health is always answered.
    #[actix_web::test]
    async fn load_past_the_limit_is_shed_with_retry_after_never_a_500() {
        let app = test::init_service(
            App::new()
                .wrap(from_fn(shed))
                .app_data(web::Data::new(InFlight::new(2)))
                .route(
                    "/slow",
                    web::get().to(|| async {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        "done"
                    }),
                )
                .route("/healthz", web::get().to(|| async { "ok" })),
        )
        .await;
        let calls = (0..6).map(|_| app.call(test::TestRequest::get().uri("/slow").to_request()));
        let health = app.call(test::TestRequest::get().uri("/healthz").to_request());
        let (responses, health) =
            futures_util::join!(futures_util::future::join_all(calls), health);
        let statuses: Vec<u16> = responses
            .iter()
            .map(|r| r.as_ref().unwrap().status().as_u16())
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            2,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 503).count(),
            4,
            "{statuses:?}"
        );
        for r in responses.iter().flatten().filter(|r| r.status() == 503) {
            assert_eq!(r.headers().get("retry-after").unwrap(), "1");
        }
        assert_eq!(health.unwrap().status(), 200);
        // The slots come back: the next request is served.
        let again = app
            .call(test::TestRequest::get().uri("/slow").to_request())
            .await
            .unwrap();
        assert_eq!(again.status(), 200);
    }

    mod routed {
        async fn ok() -> actix_web::HttpResponse {
            actix_web::HttpResponse::Ok().finish()
        }
        crate::routes! {
            "/things/{id}" => { get: ok, put: ok },
        }
    }

    /// A method a resource lacks is a 405 problem with the `Allow` header naming those it has.
    #[actix_web::test]
    async fn a_method_the_resource_lacks_is_405_with_allow() {
        let app =
            actix_web::test::init_service(actix_web::App::new().configure(routed::configure)).await;
        let req = actix_web::test::TestRequest::delete()
            .uri("/things/1")
            .to_request();
        let response = app.call(req).await.unwrap();
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers().get("allow").unwrap(), "GET, PUT");
        assert_eq!(
            routed::ROUTES,
            &[("get", "/things/{id}"), ("put", "/things/{id}")]
        );
    }

    /// Flattened views are documented as the one object they are; problems as problems.
    #[actix_web::test]
    async fn the_document_is_rewritten_to_say_what_is_sent() {
        let mut doc = serde_json::json!({
            "paths": {"/x": {"get": {"responses": {
                "404": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ProblemBody"}}}},
                "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/View"}}}}
            }}}},
            "components": {"schemas": {
                "Input": {"type": "object", "additionalProperties": false,
                    "properties": {"name": {"type": "string"}}, "required": ["name"]},
                "View": {"allOf": [{"$ref": "#/components/schemas/Input"},
                    {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}]},
                "ProblemBody": {"type": "object", "properties": {}}
            }}
        });
        super::document_problems(&mut doc);
        super::merge_all_of(&mut doc);
        let responses = &doc["paths"]["/x"]["get"]["responses"];
        assert!(responses["404"]["content"]["application/problem+json"].is_object());
        assert!(responses["default"]["content"]["application/problem+json"].is_object());
        assert!(responses["200"]["content"]["application/json"].is_object());
        let view = &doc["components"]["schemas"]["View"];
        assert!(view.get("allOf").is_none());
        assert_eq!(view["additionalProperties"], false);
        assert_eq!(view["required"], serde_json::json!(["name", "id"]));
        assert!(view["properties"]["id"].is_object() && view["properties"]["name"].is_object());
    }
}
