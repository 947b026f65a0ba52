//! The harness of the API tests of problems and requests: the service on a fresh database of
//! each backend, called through actix with a dev token.

use std::sync::Arc;

use actix_web::http::{Method, StatusCode};
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
        meridian_chassis::testing::request_json(
            crate::configure(self.svc.clone()),
            &self.auth,
            who,
            method,
            path,
            body,
        )
        .await
    }

    /// Calls as `pat` with a raw body of `content_type`; the status and the body as JSON.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> (StatusCode, Value) {
        let (status, bytes) = meridian_chassis::testing::request(
            crate::configure(self.svc.clone()),
            &self.auth,
            Some(("pat", &["agent"])),
            method,
            path,
            body,
        )
        .await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// The events waiting in the outbox, oldest first.
    pub async fn outbox(&self) -> Vec<meridian_chassis::bus::Envelope> {
        meridian_chassis::testing::outbox(&self.svc.db, None).await
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
