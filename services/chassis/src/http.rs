//! What every service's HTTP server has besides its own routes: `/healthz`, `/readyz`,
//! `/metrics`, the request middleware, the body limit and the problem responses for bad paths and
//! unknown routes.

use actix_web::{HttpResponse, web};

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

/// The response to a method a resource does not have.
///
/// # Errors
/// Always: a 405 problem.
#[expect(clippy::unused_async, reason = "actix handlers are async")]
pub async fn method_not_allowed() -> Result<HttpResponse, crate::Problem> {
    Err(crate::Problem::new(codes::METHOD_NOT_ALLOWED))
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
                        .default_service(::actix_web::web::to($crate::http::method_not_allowed)),
                );
            )+
        }
    };
}
