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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actix_web::dev::Service as _;
    use actix_web::middleware::from_fn;
    use actix_web::{App, test, web};

    use super::{InFlight, shed};

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
}
