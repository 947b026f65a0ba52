//! The harness of the API tests of problems and requests: the service on a fresh database of
//! each backend, called through actix with a dev token.

use std::sync::Arc;

use actix_web::dev::Service as _;
use actix_web::http::{Method, StatusCode};
use actix_web::{App, test as atest, web};
use meridian_chassis::auth::Authenticator;
use meridian_chassis::outbox::Waker;
use meridian_chassis::testing::{TestDb, dev_auth_config};
use serde_json::{Value, json};

use crate::Resolution;

pub struct Harness {
    _db: TestDb,
    pub svc: Resolution,
    auth: Authenticator,
}

impl Harness {
    pub async fn new(backend: meridian_chassis::testing::Backend) -> Self {
        let db = TestDb::new(backend, crate::store::MIGRATIONS).await;
        #[derive(serde::Deserialize)]
        struct Root {
            resolution: crate::ResolutionConfig,
        }
        let root: Root =
            meridian_chassis::config::load_from(&[crate::config::DEFAULTS], None, vec![]).unwrap();
        let svc = Resolution::new(
            db.db.clone(),
            Arc::new(meridian_chassis::SystemClock),
            root.resolution,
            Waker::default(),
        );
        Self {
            _db: db,
            svc,
            auth: Authenticator::new(&dev_auth_config()).unwrap(),
        }
    }

    /// Calls as `pat`, an agent.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_as(("pat", &["agent"]), method, path, body).await
    }

    /// Calls as `who` (user, roles).
    pub async fn call_as(
        &self,
        who: (&str, &[&str]),
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let app = atest::init_service(
            App::new()
                .app_data(web::Data::new(self.auth.clone()))
                .configure(|cfg| meridian_chassis::http::configure(cfg, 64 * 1024))
                .configure(crate::configure(self.svc.clone())),
        )
        .await;
        let roles: Vec<String> = who.1.iter().map(|r| (*r).to_owned()).collect();
        let token = self
            .auth
            .mint_dev(
                who.0,
                &roles,
                meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
                chrono::Duration::minutes(5),
            )
            .unwrap();
        let mut req = atest::TestRequest::default()
            .method(method)
            .uri(path)
            .insert_header(("Authorization", format!("Bearer {token}")));
        if let Some(body) = body {
            req = req.set_json(body);
        }
        let response = app.call(req.to_request()).await.unwrap();
        let status = response.status();
        let bytes = atest::read_body(response).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// The events waiting in the outbox, oldest first.
    pub async fn outbox(&self) -> Vec<meridian_chassis::bus::Envelope> {
        self.svc
            .db
            .run(|conn| {
                meridian_chassis::outbox::pending(conn, 10_000)
                    .map_err(meridian_chassis::db::DbError::from)
            })
            .await
            .unwrap()
            .into_iter()
            .map(|(_, envelope)| envelope)
            .collect()
    }

    /// Records an incident on the email service and CI `ci`.
    pub async fn incident(&self, title: &str, ci: &str) -> Value {
        let (status, body) = self
            .call(Method::POST, "/v1/incidents", Some(json!({"title": title, "impact": "medium", "urgency": "medium", "service": "email", "configuration_items": [ci], "assignment_group": "messaging"})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }
}

/// Runs the body on a fresh harness of each backend.
macro_rules! on_both_backends {
    ($name:ident, |$h:ident| $body:block) => {
        #[actix_web::test]
        async fn $name() {
            for backend in meridian_chassis::testing::BACKENDS {
                let $h = $crate::api::test_support::Harness::new(backend).await;
                async { $body }.await;
                drop($h);
            }
        }
    };
}
pub(crate) use on_both_backends;
