//! The service-level API in process, on both storage backends: the catalogue published, calendars
//! and agreements refused by name, clocks computed from resolution's events with pauses and
//! priority changes, a breach raised exactly at its due time by the scheduler (injected clock),
//! an agreement change moving due times, breaches investigated.

use std::sync::Arc;

use actix_web::dev::{Service as _, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::{App, test as atest, web};
use chrono::{DateTime, Duration, Utc};
use meridian_chassis::Clock as _;
use meridian_chassis::auth::Authenticator;
use meridian_chassis::bus::Envelope;
use meridian_chassis::clock::ManualClock;
use meridian_chassis::db::DbError;
use meridian_chassis::outbox::Waker;
use meridian_chassis::testing::{BACKENDS, Backend, TestDb, dev_auth_config};
use meridian_proto::Message;
use meridian_proto::common::v1::Timestamp;
use meridian_proto::resolution::v1::{
    Incident, IncidentCreated, IncidentPriorityChanged, IncidentState, IncidentStateChanged,
};
use serde_json::{Value, json};

use crate::ServiceLevel;

const MANAGER: (&str, &[&str]) = ("sally", &["service-level-manager"]);
const AGENT: (&str, &[&str]) = ("andy", &["agent"]);

struct TestApp {
    _db: TestDb,
    auth: Authenticator,
    svc: ServiceLevel,
    clock: ManualClock,
}

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-26T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

impl TestApp {
    async fn new(backend: Backend) -> Self {
        let db = TestDb::new(backend, crate::store::MIGRATIONS).await;
        #[derive(serde::Deserialize)]
        struct Root {
            service_level: crate::ServiceLevelConfig,
        }
        let root: Root =
            meridian_chassis::config::load_from(&[crate::config::DEFAULTS], None, vec![]).unwrap();
        let clock = ManualClock::at(start());
        let svc = ServiceLevel::new(
            db.db.clone(),
            Arc::new(clock.clone()),
            root.service_level,
            Waker::default(),
        );
        Self {
            _db: db,
            auth: Authenticator::new(&dev_auth_config()).unwrap(),
            svc,
            clock,
        }
    }

    async fn service(
        &self,
    ) -> impl actix_web::dev::Service<
        actix_http::Request,
        Response = ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
    > {
        atest::init_service(
            App::new()
                .app_data(web::Data::new(self.auth.clone()))
                .configure(|cfg| meridian_chassis::http::configure(cfg, 64 * 1024))
                .configure(crate::configure(self.svc.clone()))
                .default_service(web::to(meridian_chassis::problem::not_found)),
        )
        .await
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        who: (&str, &[&str]),
        body: Option<Value>,
    ) -> (StatusCode, Vec<u8>, String) {
        let app = self.service().await;
        let roles: Vec<String> = who.1.iter().map(|r| (*r).to_owned()).collect();
        let token = self
            .auth
            .mint_dev(
                who.0,
                &roles,
                meridian_chassis::SystemClock.now(),
                chrono::Duration::minutes(10),
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
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (
            status,
            atest::read_body(response).await.to_vec(),
            content_type,
        )
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        who: (&str, &[&str]),
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, bytes, _) = self.raw(method, path, who, body).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn outbox(&self) -> Vec<Envelope> {
        self.svc
            .db
            .run(|conn| -> Result<_, DbError> {
                Ok(meridian_chassis::outbox::pending(conn, 10_000)?)
            })
            .await
            .unwrap()
            .into_iter()
            .map(|(_, e)| e)
            .collect()
    }

    /// The e-mail service, a 24×7 calendar, an office calendar, and the e-mail SLA.
    async fn setup(&self) -> String {
        let (status, body) = self
            .call(Method::POST, "/v1/services", MANAGER, Some(json!({
                "id": "email", "name": "E-mail", "owner": "it-services", "criticality": "critical", "status": "live",
                "outcome": "Staff send and receive mail", "customers": ["all-staff"],
                "request_items": [{"id": "new-mailbox", "name": "A new mailbox", "fields": {"owner": {"type": "string", "required": true}}, "needs_approval": true}]
            })))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let day = json!({"start": "00:00", "end": "24:00"});
        let always = json!({"name": "24×7", "timezone": "UTC", "week": vec![day; 7]});
        let (status, body) = self
            .call(Method::PUT, "/v1/calendars/always", MANAGER, Some(always))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, sla) = self
            .call(Method::POST, "/v1/agreements", MANAGER, Some(json!({
                "kind": "sla", "name": "E-mail for all staff", "service": "email", "customer": "all-staff", "calendar": "always",
                "targets": {"1": {"response_minutes": 15, "resolution_minutes": 240}, "3": {"response_minutes": 60, "resolution_minutes": 480}}
            })))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{sla}");
        sla["id"].as_str().unwrap().to_owned()
    }

    async fn incident_event(
        &self,
        event_type: &str,
        state: IncidentState,
        priority: i32,
        pending: &str,
        at: DateTime<Utc>,
    ) {
        let incident = Incident {
            id: "inc-1".to_owned(),
            number: "INC0000001".to_owned(),
            service: "email".to_owned(),
            priority,
            state: state.into(),
            pending_reason: pending.to_owned(),
            assignment_group: "service-desk".to_owned(),
            updated_at: Some(Timestamp {
                unix_micros: at.timestamp_micros(),
            }),
            ..Incident::default()
        };
        let payload = match event_type {
            "resolution.incident.created" => IncidentCreated {
                incident: Some(incident),
            }
            .encode_to_vec(),
            "resolution.incident.priority_changed" => IncidentPriorityChanged {
                incident: Some(incident),
                ..Default::default()
            }
            .encode_to_vec(),
            _ => IncidentStateChanged {
                incident: Some(incident),
                ..Default::default()
            }
            .encode_to_vec(),
        };
        let envelope = Envelope {
            id: uuid::Uuid::now_v7(),
            event_type: event_type.to_owned(),
            source: "/meridian/resolution".to_owned(),
            subject: "inc-1".to_owned(),
            time: at,
            correlation_id: None,
            causation_id: None,
            actor: None,
            payload,
        };
        crate::events::apply(&self.svc, envelope.clone())
            .await
            .unwrap();
        crate::events::apply(&self.svc, envelope).await.unwrap();
    }

    async fn clock(&self, metric: &str) -> Value {
        let (_, page) = self
            .call(Method::GET, "/v1/sla-clocks?ticket=INC0000001", AGENT, None)
            .await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["metric"] == metric)
            .cloned()
            .unwrap_or(Value::Null)
    }
}

macro_rules! on_both_backends {
    ($name:ident, |$app:ident| $body:block) => {
        #[actix_web::test]
        async fn $name() {
            for backend in BACKENDS {
                let $app = TestApp::new(backend).await;
                async { $body }.await;
                drop($app);
            }
        }
    };
}

on_both_backends!(
    the_catalogue_is_kept_and_published_with_its_request_items,
    |app| {
        app.setup().await;
        let (status, body) = app
            .call(Method::GET, "/v1/services?status=live", AGENT, None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body[0]["request_items"][0]["id"], "new-mailbox");
        let published: Vec<_> = app
            .outbox()
            .await
            .into_iter()
            .filter(|e| e.event_type == "service_level.service.published")
            .collect();
        assert_eq!(published.len(), 1);
        let message = meridian_proto::service_level::v1::ServicePublished::decode(
            published[0].payload.as_slice(),
        )
        .unwrap();
        assert_eq!((message.id.as_str(), message.revision), ("email", 1));
        assert!(message.request_items_json.contains("new-mailbox"));
        let (status, body) = app
        .call(Method::PUT, "/v1/services/email", MANAGER, Some(json!({"name": "E-mail", "owner": "it", "criticality": "high", "status": "live"})))
        .await;
        assert_eq!(
            (status, body["revision"].as_i64()),
            (StatusCode::OK, Some(2)),
            "{body}"
        );
        // Refused, each named.
        let (status, body) = app
        .call(Method::POST, "/v1/services", MANAGER, Some(json!({
            "id": "Bad Id", "name": "", "owner": "o", "criticality": "extreme", "status": "alive", "depends_on": ["nope"],
            "request_items": [{"id": "x", "name": ""}, {"id": "x", "name": "y"}]
        })))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let names: Vec<&str> = body["invalid-params"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "id",
                "name",
                "criticality",
                "status",
                "request_items[0].name",
                "request_items[1].id"
            ],
            "{body}"
        );
        let (status, body) = app
        .call(Method::POST, "/v1/services", MANAGER, Some(json!({"id": "web", "name": "Web", "owner": "o", "criticality": "low", "status": "live", "depends_on": ["nope"]})))
        .await;
        assert_eq!(
            (status, body["invalid-params"][0]["name"].as_str()),
            (StatusCode::BAD_REQUEST, Some("depends_on[0]"))
        );
        let (status, body) = app
            .call(Method::GET, "/v1/services/nope", AGENT, None)
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("service_not_found"))
        );
        let (status, _) = app
            .call(
                Method::POST,
                "/v1/services",
                AGENT,
                Some(json!({"id": "x"})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
);

on_both_backends!(calendars_and_agreements_are_refused_by_name, |app| {
    app.setup().await;
    let (status, body) = app
        .call(Method::PUT, "/v1/calendars/bad", MANAGER, Some(json!({"name": "x", "timezone": "Mars/Olympus", "week": [{"start": "9:00", "end": "17:00"}, {"start": "18:00", "end": "17:00"}, null, null, null, null, {"start": "00:00", "end": "25:00"}]})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let names: Vec<&str> = body["invalid-params"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["timezone", "week[0].start", "week[1].end", "week[6].end"],
        "{body}"
    );
    let (status, body) = app
        .call(Method::POST, "/v1/agreements", MANAGER, Some(json!({
            "kind": "ola", "name": "", "service": "email", "calendar": "always", "warning_percent": 100,
            "targets": {"7": {"resolution_minutes": 0}, "2": {}}
        })))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let names: Vec<&str> = body["invalid-params"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "group",
            "name",
            "targets.2",
            "targets.7",
            "targets.7.resolution_minutes",
            "warning_percent"
        ],
        "{body}"
    );
    let (status, body) = app
        .call(Method::POST, "/v1/agreements", MANAGER, Some(json!({"kind": "sla", "name": "x", "service": "payroll", "calendar": "always", "targets": {"1": {"resolution_minutes": 60}}})))
        .await;
    assert_eq!(
        (status, body["invalid-params"][0]["name"].as_str()),
        (StatusCode::BAD_REQUEST, Some("service"))
    );
    let (status, body) = app
        .call(Method::POST, "/v1/agreements", MANAGER, Some(json!({"kind": "sla", "name": "x", "service": "email", "calendar": "nights", "targets": {"1": {"resolution_minutes": 60}}})))
        .await;
    assert_eq!(
        (status, body["invalid-params"][0]["name"].as_str()),
        (StatusCode::BAD_REQUEST, Some("calendar"))
    );
});

on_both_backends!(
    clocks_follow_the_tickets_history_and_a_breach_is_raised_exactly_at_its_due_time,
    |app| {
        let sla = app.setup().await;
        let t0 = start();
        app.incident_event("resolution.incident.created", IncidentState::New, 3, "", t0)
            .await;
        let resolution = app.clock("resolution").await;
        assert_eq!(
            (
                resolution["stage"].as_str(),
                resolution["target_seconds"].as_i64()
            ),
            (Some("running"), Some(8 * 3600))
        );
        assert_eq!(resolution["due_at"], "2026-11-26T18:00:00Z");
        // Work starts at 10:30: the response is met; pending on the caller 11:00-14:00 pauses.
        app.clock.advance(Duration::minutes(30));
        app.incident_event(
            "resolution.incident.state_changed",
            IncidentState::InProgress,
            3,
            "",
            t0 + Duration::minutes(30),
        )
        .await;
        assert_eq!(app.clock("response").await["stage"], "met");
        app.clock.advance(Duration::minutes(30));
        app.incident_event(
            "resolution.incident.state_changed",
            IncidentState::Pending,
            3,
            "awaiting_caller",
            t0 + Duration::hours(1),
        )
        .await;
        assert_eq!(app.clock("resolution").await["stage"], "paused");
        app.clock.advance(Duration::hours(3));
        app.incident_event(
            "resolution.incident.state_changed",
            IncidentState::InProgress,
            3,
            "",
            t0 + Duration::hours(4),
        )
        .await;
        let resolution = app.clock("resolution").await;
        assert_eq!(
            resolution["due_at"], "2026-11-26T21:00:00Z",
            "18:00 plus the three paused hours"
        );
        assert_eq!(
            resolution["warn_at"], "2026-11-26T19:00:00Z",
            "75 % of 8 hours"
        );
        // The scheduler: nothing before the warning; the warning at 19:00; the breach at 21:00 sharp.
        app.clock
            .advance(Duration::hours(4) + Duration::minutes(59));
        assert_eq!(
            crate::scheduler::tick(&app.svc).await.unwrap(),
            0,
            "18:59: nothing due"
        );
        app.clock.advance(Duration::minutes(1));
        assert_eq!(crate::scheduler::tick(&app.svc).await.unwrap(), 1);
        let types: Vec<String> = app
            .outbox()
            .await
            .into_iter()
            .map(|e| e.event_type)
            .filter(|t| t.starts_with("service_level.sla"))
            .collect();
        assert_eq!(types, ["service_level.sla.warning"]);
        app.clock.advance(Duration::hours(2) - Duration::seconds(1));
        assert_eq!(
            crate::scheduler::tick(&app.svc).await.unwrap(),
            0,
            "20:59:59: not yet"
        );
        app.clock.advance(Duration::seconds(1));
        assert_eq!(
            crate::scheduler::tick(&app.svc).await.unwrap(),
            1,
            "21:00:00: breached"
        );
        assert_eq!(crate::scheduler::tick(&app.svc).await.unwrap(), 0, "once");
        let breached: Vec<_> = app
            .outbox()
            .await
            .into_iter()
            .filter(|e| e.event_type == "service_level.sla.breached")
            .collect();
        assert_eq!(breached.len(), 1);
        let event = meridian_proto::service_level::v1::SlaClockEvent::decode(
            breached[0].payload.as_slice(),
        )
        .unwrap();
        assert_eq!(
            (
                event.number.as_str(),
                event.metric.as_str(),
                event.agreement_id.as_str()
            ),
            ("INC0000001", "resolution", sla.as_str())
        );
        assert_eq!(app.clock("resolution").await["stage"], "breached");
        // The breach is investigated.
        let (_, breaches) = app
            .call(
                Method::GET,
                "/v1/breaches?service=email&open=true",
                AGENT,
                None,
            )
            .await;
        assert_eq!(breaches.as_array().unwrap().len(), 1, "{breaches}");
        assert_eq!(breaches[0]["due_at"], "2026-11-26T21:00:00Z");
        let id = breaches[0]["id"].as_str().unwrap();
        let (status, body) = app
            .call(
                Method::PUT,
                &format!("/v1/breaches/{id}/investigation"),
                MANAGER,
                Some(json!({"cause": "", "category": "luck"})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, body) = app
            .call(
                Method::PUT,
                &format!("/v1/breaches/{id}/investigation"),
                MANAGER,
                Some(
                    json!({"cause": "The mail relay vendor took two days", "category": "supplier"}),
                ),
            )
            .await;
        assert_eq!(
            (status, body["investigated_by"].as_str()),
            (StatusCode::OK, Some("sally")),
            "{body}"
        );
        let (_, open) = app
            .call(
                Method::GET,
                "/v1/breaches?service=email&open=true",
                AGENT,
                None,
            )
            .await;
        assert!(open.as_array().unwrap().is_empty());
    }
);

on_both_backends!(
    a_priority_change_and_an_agreement_change_move_the_due_time_without_losing_paused_time,
    |app| {
        let sla = app.setup().await;
        let t0 = start();
        app.incident_event("resolution.incident.created", IncidentState::New, 3, "", t0)
            .await;
        app.clock.advance(Duration::hours(1));
        app.incident_event(
            "resolution.incident.state_changed",
            IncidentState::Pending,
            3,
            "awaiting_supplier",
            t0 + Duration::hours(1),
        )
        .await;
        app.clock.advance(Duration::hours(2));
        app.incident_event(
            "resolution.incident.state_changed",
            IncidentState::InProgress,
            3,
            "",
            t0 + Duration::hours(3),
        )
        .await;
        app.incident_event(
            "resolution.incident.priority_changed",
            IncidentState::InProgress,
            1,
            "",
            t0 + Duration::hours(3),
        )
        .await;
        let c = app.clock("resolution").await;
        assert_eq!(
            (c["target_seconds"].as_i64(), c["stage"].as_str()),
            (Some(4 * 3600), Some("running"))
        );
        assert_eq!(
            c["due_at"], "2026-11-26T16:00:00Z",
            "1 counted hour before the pause: 3 left from 13:00"
        );
        // The SLA is renegotiated: P1 resolution within 6 hours; the open ticket follows at once.
        let (status, body) = app
        .call(Method::PUT, &format!("/v1/agreements/{sla}"), MANAGER, Some(json!({
            "kind": "sla", "name": "E-mail for all staff", "service": "email", "customer": "all-staff", "calendar": "always",
            "targets": {"1": {"response_minutes": 15, "resolution_minutes": 360}, "3": {"response_minutes": 60, "resolution_minutes": 480}}
        })))
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            app.clock("resolution").await["due_at"],
            "2026-11-26T18:00:00Z"
        );
        let (status, _) = app
            .call(
                Method::PUT,
                "/v1/agreements/nope",
                MANAGER,
                Some(body.clone()),
            )
            .await;
        assert_ne!(status, StatusCode::OK);
    }
);
