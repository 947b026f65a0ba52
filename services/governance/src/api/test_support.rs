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

use crate::Governance;

/// The SMS manager.
pub const MIA: (&str, &[&str]) = ("mia", &["sms-manager"]);
/// An auditor.
pub const IAN: (&str, &[&str]) = ("ian", &["auditor"]);
/// A document controller.
pub const DORA: (&str, &[&str]) = ("dora", &["document-controller"]);
/// Someone.
pub const ADA: (&str, &[&str]) = ("ada", &["agent"]);

/// A ledger signing key for tests (the base64 of 32 bytes).
pub const KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

pub struct Harness {
    _db: TestDb,
    pub svc: Governance,
    pub clock: ManualClock,
    auth: Authenticator,
}

/// The defaults, with a signing key.
pub fn config() -> crate::GovernanceConfig {
    #[derive(serde::Deserialize)]
    struct Root {
        governance: crate::GovernanceConfig,
    }
    let layer = format!("governance:\n  ledger:\n    signing_key: \"{KEY}\"\n");
    let root: Root =
        meridian_chassis::config::load_from(&[crate::config::DEFAULTS, &layer], None, vec![])
            .unwrap();
    root.governance
}

impl Harness {
    pub async fn new(backend: meridian_chassis::testing::Backend) -> Self {
        let db = TestDb::new(backend, crate::store::MIGRATIONS).await;
        let clock = ManualClock::at(
            chrono::DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z")
                .unwrap()
                .to_utc(),
        );
        let svc = Governance::new(
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

    /// Calls as `who`; the status and the body as sent.
    pub async fn raw(
        &self,
        who: (&str, &[&str]),
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Vec<u8>) {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        meridian_chassis::testing::request(
            crate::configure(self.svc.clone()),
            &self.auth,
            Some(who),
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

    /// Delivers an event (twice: a redelivery has no second effect).
    pub async fn deliver(&self, event_type: &str, payload: Vec<u8>) -> Envelope {
        let envelope = Envelope {
            id: uuid::Uuid::now_v7(),
            event_type: event_type.to_owned(),
            source: "/test".to_owned(),
            subject: "s".to_owned(),
            time: meridian_chassis::Clock::now(&self.clock),
            correlation_id: None,
            causation_id: None,
            actor: Some("tester".to_owned()),
            payload,
        };
        crate::events::apply(&self.svc, envelope.clone())
            .await
            .unwrap();
        crate::events::apply(&self.svc, envelope.clone())
            .await
            .unwrap();
        envelope
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
