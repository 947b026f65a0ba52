//! The harness of the API tests: the service on a fresh database of each backend, on a clock
//! the test moves, called through actix with dev tokens.

use std::sync::Arc;

use actix_web::http::{Method, StatusCode};
use meridian_chassis::auth::Authenticator;
use meridian_chassis::bus::Envelope;
use meridian_chassis::clock::ManualClock;
use meridian_chassis::outbox::Waker;
use meridian_chassis::testing::{TestDb, dev_auth_config};
use serde_json::Value;

use crate::Relationship;

/// A relationship manager.
pub const RITA: (&str, &[&str]) = ("rita", &["relationship-manager"]);
/// A supplier manager.
pub const SAM: (&str, &[&str]) = ("sam", &["supplier-manager"]);
/// A service desk agent.
pub const ADA: (&str, &[&str]) = ("ada", &["agent"]);

pub struct Harness {
    _db: TestDb,
    pub svc: Relationship,
    pub clock: ManualClock,
    auth: Authenticator,
}

/// The defaults, with a link secret.
pub fn config() -> crate::RelationshipConfig {
    #[derive(serde::Deserialize)]
    struct Root {
        relationship: crate::RelationshipConfig,
    }
    let root: Root = meridian_chassis::config::load_from(
        &[
            crate::config::DEFAULTS,
            "relationship:\n  public_url: \"https://meridian.example.org\"\n  service_level_url: \"http://127.0.0.1:9\"\n  surveys:\n    link_secret: \"test-secret-test-secret-test-secret\"\n",
        ],
        None,
        vec![],
    )
    .unwrap();
    root.relationship
}

impl Harness {
    pub async fn new(backend: meridian_chassis::testing::Backend) -> Self {
        let db = TestDb::new(backend, crate::store::MIGRATIONS).await;
        let clock = ManualClock::at(
            chrono::DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z")
                .unwrap()
                .to_utc(),
        );
        let svc = Relationship::new(
            db.db.clone(),
            Arc::new(clock.clone()),
            config(),
            Waker::default(),
        )
        .unwrap();
        Self {
            _db: db,
            svc,
            clock,
            auth: Authenticator::new(&dev_auth_config()).unwrap(),
        }
    }

    /// Calls as `who` (user, roles); the status and the JSON body (`null` when there is none).
    pub async fn call(
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

    /// Calls with an optional caller and a body of the given content type; the status and the
    /// body as sent.
    pub async fn raw(
        &self,
        who: Option<(&str, &[&str])>,
        method: Method,
        path: &str,
        body: Option<(&str, String)>,
    ) -> (StatusCode, Vec<u8>) {
        let body = body.map(|(t, b)| (t, b.into_bytes()));
        meridian_chassis::testing::request(
            crate::configure(self.svc.clone()),
            &self.auth,
            who,
            method,
            path,
            body,
        )
        .await
    }

    /// The events waiting in the outbox of `event_type`, oldest first.
    pub async fn outbox(&self, event_type: &str) -> Vec<Envelope> {
        meridian_chassis::testing::outbox(&self.svc.db, Some(event_type)).await
    }

    /// Delivers an event to the service's consumer.
    pub async fn deliver(&self, event_type: &str, subject: &str, payload: Vec<u8>) {
        let envelope = Envelope {
            id: uuid::Uuid::now_v7(),
            event_type: event_type.to_owned(),
            source: "/test".to_owned(),
            subject: subject.to_owned(),
            time: meridian_chassis::Clock::now(&self.clock),
            correlation_id: None,
            causation_id: None,
            actor: None,
            payload,
        };
        crate::events::apply(&self.svc, envelope.clone())
            .await
            .unwrap();
        // A redelivery has no second effect.
        crate::events::apply(&self.svc, envelope).await.unwrap();
    }

    /// Publishes the catalogue service `id` to the read model.
    pub async fn service(&self, id: &str) {
        use meridian_proto::Message;
        let message = meridian_proto::service_level::v1::ServicePublished {
            id: id.to_owned(),
            name: id.to_owned(),
            owner: "olga".to_owned(),
            status: meridian_proto::service_level::v1::ServiceStatus::Live.into(),
            revision: 1,
            ..Default::default()
        };
        self.deliver(
            "service_level.service.published",
            id,
            message.encode_to_vec(),
        )
        .await;
    }

    /// Moves the clock.
    pub fn advance(&self, by: chrono::Duration) {
        self.clock.advance(by);
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
