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

impl TestApp {
    async fn deliver(&self, event_type: &str, payload: Vec<u8>, at: DateTime<Utc>) {
        let envelope = Envelope {
            id: uuid::Uuid::now_v7(),
            event_type: event_type.to_owned(),
            source: "/meridian/test".to_owned(),
            subject: "x".to_owned(),
            time: at,
            correlation_id: None,
            causation_id: None,
            actor: None,
            payload,
        };
        crate::events::apply(&self.svc, envelope).await.unwrap();
    }
}

on_both_backends!(
    availability_counts_unplanned_outages_including_major_incidents_against_the_target,
    |app| {
        app.setup().await;
        let (status, body) = app
            .call(
                Method::PUT,
                "/v1/services/email/availability-target",
                MANAGER,
                Some(json!({"target_percent": 99.5})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = app
            .call(
                Method::PUT,
                "/v1/services/email/availability-target",
                MANAGER,
                Some(json!({"target_percent": 101})),
            )
            .await;
        assert_eq!(
            (status, body["invalid-params"][0]["name"].as_str()),
            (StatusCode::BAD_REQUEST, Some("target_percent"))
        );
        // Planned maintenance 02:00-04:00 on the 25th; a major incident 10:00-11:00.
        let (status, planned) = app
        .call(Method::POST, "/v1/outages", MANAGER, Some(json!({"service": "email", "started_at": "2026-11-25T02:00:00Z", "ended_at": "2026-11-25T04:00:00Z", "planned": true, "description": "Mail server upgrade"})))
        .await;
        assert_eq!(status, StatusCode::CREATED, "{planned}");
        let major_at = DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let major = |state: IncidentState, at: DateTime<Utc>| Incident {
            id: "inc-9".to_owned(),
            number: "INC0000009".to_owned(),
            service: "email".to_owned(),
            priority: 1,
            state: state.into(),
            major: true,
            updated_at: Some(Timestamp {
                unix_micros: at.timestamp_micros(),
            }),
            ..Incident::default()
        };
        app.deliver(
            "resolution.incident.major_declared",
            meridian_proto::resolution::v1::IncidentMajorDeclared {
                incident: Some(major(IncidentState::InProgress, major_at)),
                ..Default::default()
            }
            .encode_to_vec(),
            major_at,
        )
        .await;
        let resolved_at = major_at + Duration::hours(1);
        app.deliver(
            "resolution.incident.resolved",
            meridian_proto::resolution::v1::IncidentResolved {
                incident: Some(major(IncidentState::Resolved, resolved_at)),
                ..Default::default()
            }
            .encode_to_vec(),
            resolved_at,
        )
        .await;
        let (status, a) = app
            .call(
                Method::GET,
                "/v1/services/email/availability?from=2026-11-25T00:00:00Z&to=2026-11-26T00:00:00Z",
                AGENT,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{a}");
        assert_eq!(
            (
                a["planned_minutes"].as_i64(),
                a["unplanned_minutes"].as_i64()
            ),
            (Some(120), Some(60)),
            "{a}"
        );
        assert_eq!(a["met"], false, "{a}");
        let outages = a["outages"].as_array().unwrap();
        let from_major = outages
            .iter()
            .find(|o| o["source"] == "major_incident")
            .unwrap();
        assert_eq!(
            (
                from_major["ended_at"].as_str(),
                from_major["needs_investigation"].as_bool()
            ),
            (Some("2026-11-25T11:00:00Z"), Some(true))
        );
        // Investigated.
        let id = from_major["id"].as_str().unwrap();
        let (status, body) = app
        .call(Method::PUT, &format!("/v1/outages/{id}"), MANAGER, Some(json!({"service": "email", "started_at": "2026-11-25T10:00:00Z", "ended_at": "2026-11-25T11:00:00Z", "description": "major incident INC0000009", "investigation": "A certificate expired on the relay"})))
        .await;
        assert_eq!(
            (
                status,
                body["needs_investigation"].as_bool(),
                body["source"].as_str()
            ),
            (StatusCode::OK, Some(false), Some("major_incident")),
            "{body}"
        );
        let (status, body) = app
        .call(Method::POST, "/v1/outages", MANAGER, Some(json!({"service": "email", "started_at": "2026-11-25T04:00:00Z", "ended_at": "2026-11-25T03:00:00Z", "description": ""})))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let names: Vec<&str> = body["invalid-params"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, ["description", "ended_at"]);
    }
);

on_both_backends!(
    continuity_plans_are_flagged_until_tested_within_their_interval,
    |app| {
        app.setup().await;
        let (status, plan) = app
        .call(Method::POST, "/v1/continuity-plans", MANAGER, Some(json!({"service": "email", "name": "Mail site failover", "strategy": "Fail over to the second site", "rto_minutes": 240, "rpo_minutes": 15, "test_interval_days": 180, "owner": "it-services"})))
        .await;
        assert_eq!(status, StatusCode::CREATED, "{plan}");
        assert_eq!(plan["test_overdue"], true, "never tested");
        let id = plan["id"].as_str().unwrap();
        let (_, overdue) = app
            .call(
                Method::GET,
                "/v1/continuity-plans?overdue=true",
                AGENT,
                None,
            )
            .await;
        assert_eq!(overdue.as_array().unwrap().len(), 1);
        let (status, body) = app
            .call(
                Method::POST,
                &format!("/v1/continuity-plans/{id}/tests"),
                MANAGER,
                Some(json!({"at": "2026-11-20T10:00:00Z", "scenario": "", "result": "great"})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let names: Vec<&str> = body["invalid-params"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, ["scenario", "result"]);
        let (status, tested) = app
        .call(Method::POST, &format!("/v1/continuity-plans/{id}/tests"), MANAGER, Some(json!({"at": "2026-11-20T10:00:00Z", "scenario": "Primary site power loss", "result": "passed", "notes": "Failover in 35 minutes"})))
        .await;
        assert_eq!(
            (
                status,
                tested["test_overdue"].as_bool(),
                tested["last_tested"].as_str()
            ),
            (StatusCode::CREATED, Some(false), Some("2026-11-20")),
            "{tested}"
        );
        let (status, invoked) = app
        .call(Method::POST, &format!("/v1/continuity-plans/{id}/invocations"), MANAGER, Some(json!({"at": "2026-11-25T10:00:00Z", "scenario": "Flood in the primary data centre", "result": "recovered"})))
        .await;
        assert_eq!(
            (status, invoked["record"].as_array().unwrap().len()),
            (StatusCode::CREATED, 2)
        );
        // 181 days later, overdue again.
        app.clock.advance(Duration::days(181));
        let (_, overdue) = app
            .call(
                Method::GET,
                "/v1/continuity-plans?overdue=true&service=email",
                AGENT,
                None,
            )
            .await;
        assert_eq!(overdue.as_array().unwrap().len(), 1);
    }
);

on_both_backends!(
    capacity_measurements_over_rest_and_prometheus_raise_threshold_events,
    |app| {
        app.setup().await;
        let (status, body) = app
        .call(Method::POST, "/v1/capacity-plans", MANAGER, Some(json!({"service": "email", "name": "Mail storage", "technical": "2 TB", "financial": "4000 EUR a year", "owner": "it",
            "thresholds": [{"metric": "storage_used_percent", "warning": 75, "critical": 90}]})))
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = app
            .call(
                Method::POST,
                "/v1/measurements",
                MANAGER,
                Some(
                    json!([{"service": "email", "metric": "storage_used_percent", "value": 80.5}]),
                ),
            )
            .await;
        assert_eq!(
            (status, body["thresholds"][0]["level"].as_str()),
            (StatusCode::CREATED, Some("warning")),
            "{body}"
        );
        let (status, bytes, _) = app
            .raw(
                Method::POST,
                "/v1/measurements",
                MANAGER,
                Some(json!([{"service": "nope", "metric": "m", "value": 1}])),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        let app_service = app.service().await;
        let token = app
            .auth
            .mint_dev(
                "sally",
                &["service-level-manager".to_owned()],
                meridian_chassis::SystemClock.now(),
                chrono::Duration::minutes(5),
            )
            .unwrap();
        let post = |body: &'static str| {
            atest::TestRequest::post()
                .uri("/v1/measurements/prometheus")
                .insert_header(("Authorization", format!("Bearer {token}")))
                .insert_header(("content-type", "text/plain"))
                .set_payload(body)
                .to_request()
        };
        let response = app_service.call(post("# TYPE storage_used_percent gauge\nstorage_used_percent{service=\"email\"} 93\nqueue_depth{service=\"email\"} 4\n")).await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = serde_json::from_slice(&atest::read_body(response).await).unwrap();
        assert_eq!(
            (
                body["recorded"].as_i64(),
                body["thresholds"][0]["level"].as_str()
            ),
            (Some(2), Some("critical")),
            "{body}"
        );
        let response = app_service
            .call(post("storage_used_percent{service=email} 93"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = serde_json::from_slice(&atest::read_body(response).await).unwrap();
        assert!(
            body["invalid-params"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("line 1"),
            "{body}"
        );
        let response = app_service
            .call(post("storage_used_percent 93"))
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "a sample without a service label"
        );
        let crossed: Vec<_> = app
            .outbox()
            .await
            .into_iter()
            .filter(|e| e.event_type == "service_level.capacity.threshold_crossed")
            .collect();
        assert_eq!(crossed.len(), 2);
        let (status, body) = app.call(Method::PUT, "/v1/demand-forecasts", MANAGER, Some(json!({"service": "email", "period": "2027-01", "metric": "mailboxes", "expected": 1250}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = app.call(Method::PUT, "/v1/demand-forecasts", MANAGER, Some(json!({"service": "email", "period": "2027-13", "metric": "mailboxes", "expected": -1}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let names: Vec<&str> = body["invalid-params"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, ["period", "expected"]);
    }
);

on_both_backends!(budgets_and_costs_are_reported_against_each_other, |app| {
    app.setup().await;
    let (status, body) = app.call(Method::POST, "/v1/costs", MANAGER, Some(json!({"service": "email", "period": "2026", "amount": 100, "category": "licences", "incurred_on": "2026-03-01"}))).await;
    assert_eq!(
        (status, body["invalid-params"][0]["name"].as_str()),
        (StatusCode::BAD_REQUEST, Some("period")),
        "no budget yet: {body}"
    );
    let (status, body) = app
        .call(
            Method::PUT,
            "/v1/budgets/email/2026",
            MANAGER,
            Some(json!({"amount": 50000, "currency": "eur"})),
        )
        .await;
    assert_eq!(
        (status, body["invalid-params"][0]["name"].as_str()),
        (StatusCode::BAD_REQUEST, Some("currency"))
    );
    let (status, _) = app
        .call(
            Method::PUT,
            "/v1/budgets/email/2026",
            MANAGER,
            Some(json!({"amount": 50000, "currency": "EUR"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for (amount, category) in [
        (12000.0, "licences"),
        (30000.5, "staff"),
        (9000.0, "licences"),
    ] {
        let (status, body) = app.call(Method::POST, "/v1/costs", MANAGER, Some(json!({"service": "email", "period": "2026", "amount": amount, "category": category, "incurred_on": "2026-06-01"}))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, report) = app
        .call(Method::GET, "/v1/budgets/email/2026", AGENT, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            report["spent"].as_f64(),
            report["remaining"].as_f64(),
            report["percent_used"].as_f64()
        ),
        (Some(51000.5), Some(-1000.5), Some(102.0)),
        "{report}"
    );
    assert_eq!(report["by_category"]["licences"].as_f64(), Some(21000.0));
});

on_both_backends!(
    the_service_report_holds_known_data_as_json_csv_and_html,
    |app| {
        let sla = app.setup().await;
        let (status, _) = app
        .call(Method::PUT, "/v1/services/email", MANAGER, Some(json!({"name": "E-mail", "owner": "it", "criticality": "critical", "status": "live", "configuration_items": ["ci-mx"]})))
        .await;
        assert_eq!(status, StatusCode::OK);
        // One incident resolved in time (P3, 8 h), one late.
        let t0 = start();
        app.incident_event("resolution.incident.created", IncidentState::New, 3, "", t0)
            .await;
        app.clock.advance(Duration::hours(2));
        app.incident_event(
            "resolution.incident.state_changed",
            IncidentState::InProgress,
            3,
            "",
            t0 + Duration::hours(2),
        )
        .await;
        app.clock.advance(Duration::hours(1));
        app.incident_event(
            "resolution.incident.resolved",
            IncidentState::Resolved,
            3,
            "",
            t0 + Duration::hours(3),
        )
        .await;
        // A change touching the service's CI, a change elsewhere, two satisfaction scores.
        for (id, ci) in [("c1", "ci-mx"), ("c2", "ci-other")] {
            app.deliver(
                "control.change.submitted",
                meridian_proto::control::v1::ChangeSubmitted {
                    id: id.to_owned(),
                    number: id.to_uppercase(),
                    configuration_items: vec![ci.to_owned()],
                    ..Default::default()
                }
                .encode_to_vec(),
                t0,
            )
            .await;
        }
        for (id, score) in [("r1", 5), ("r2", 4)] {
            app.deliver(
                "relationship.satisfaction.recorded",
                meridian_proto::relationship::v1::SatisfactionRecorded {
                    response_id: id.to_owned(),
                    service: "email".to_owned(),
                    customer: "all-staff".to_owned(),
                    score,
                    ..Default::default()
                }
                .encode_to_vec(),
                t0,
            )
            .await;
        }
        let query = "from=2026-11-26T00:00:00Z&to=2026-11-27T00:00:00Z";
        let (status, report) = app
            .call(
                Method::GET,
                &format!("/v1/reports/services/email?{query}"),
                AGENT,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["incidents"], 1);
        assert_eq!(report["incidents_by_priority"]["P3"], 1);
        assert_eq!(report["incidents_by_week"]["2026-W48"], 1);
        let resolution = report["attainment"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["metric"] == "resolution")
            .unwrap()
            .clone();
        assert_eq!(
            (
                resolution["agreement_id"].as_str(),
                resolution["met"].as_i64(),
                resolution["percent"].as_f64()
            ),
            (Some(sla.as_str()), Some(1), Some(100.0)),
            "{report}"
        );
        let response = report["attainment"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["metric"] == "response")
            .unwrap()
            .clone();
        assert_eq!(
            (response["breached"].as_i64(), response["percent"].as_f64()),
            (Some(1), Some(0.0)),
            "2 h to respond against 1 h: {report}"
        );
        assert_eq!(report["changes"], 1);
        assert_eq!(
            (
                report["satisfaction_responses"].as_i64(),
                report["satisfaction_average"].as_f64()
            ),
            (Some(2), Some(4.5))
        );
        assert_eq!(report["availability"]["percent"], 100.0);
        let (status, bytes, content_type) = app
            .raw(
                Method::GET,
                &format!("/v1/reports/services/email?{query}&format=csv"),
                AGENT,
                None,
            )
            .await;
        assert_eq!(
            (status, content_type.as_str()),
            (StatusCode::OK, "text/csv; charset=utf-8")
        );
        let csv = String::from_utf8(bytes).unwrap();
        assert!(
            csv.contains("incidents,total,1") && csv.contains("satisfaction,average,4.5"),
            "{csv}"
        );
        let (status, bytes, content_type) = app
            .raw(
                Method::GET,
                &format!("/v1/reports/services/email?{query}&format=html"),
                AGENT,
                None,
            )
            .await;
        assert_eq!(
            (status, content_type.as_str()),
            (StatusCode::OK, "text/html; charset=utf-8")
        );
        let html = String::from_utf8(bytes).unwrap();
        assert!(
            html.contains("<svg")
                && html.contains("Service report: E-mail")
                && html.contains("4.5 / 5"),
            "{html}"
        );
        let (status, body) = app
            .call(
                Method::GET,
                "/v1/reports/services/email?format=pdf",
                AGENT,
                None,
            )
            .await;
        assert_eq!(
            (status, body["invalid-params"][0]["name"].as_str()),
            (StatusCode::BAD_REQUEST, Some("format"))
        );
        let (status, body) = app
            .call(Method::GET, "/v1/reports/services/nope", AGENT, None)
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("service_not_found"))
        );
    }
);

on_both_backends!(
    service_requests_are_timed_at_the_request_priority_and_counted_in_the_report,
    |app| {
        app.setup().await;
        let (status, body) = app
            .call(Method::POST, "/v1/agreements", MANAGER, Some(json!({
                "kind": "sla", "name": "E-mail requests", "service": "email", "customer": "all-staff", "calendar": "always",
                "targets": {"4": {"response_minutes": 60, "resolution_minutes": 480}},
                "applies_to": ["request"]
            })))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let requests_sla = body["id"].as_str().unwrap().to_owned();
        // An agreement for incidents only never times a request.
        let (status, body) = app
            .call(Method::POST, "/v1/agreements", MANAGER, Some(json!({
                "kind": "sla", "name": "E-mail incidents, P4", "service": "email", "customer": "all-staff", "calendar": "always",
                "targets": {"4": {"response_minutes": 5, "resolution_minutes": 10}},
                "applies_to": ["incident"]
            })))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = app
            .call(Method::POST, "/v1/agreements", MANAGER, Some(json!({
                "kind": "sla", "name": "Bad", "service": "email", "customer": "all-staff", "calendar": "always",
                "targets": {"4": {"response_minutes": 5}}, "applies_to": ["problem"]
            })))
            .await;
        assert_eq!(
            (status, body["invalid-params"][0]["name"].as_str()),
            (StatusCode::BAD_REQUEST, Some("applies_to[0]"))
        );
        let t0 = start();
        let request = |state: &str| {
            meridian_proto::resolution::v1::RequestChanged {
                id: "req-1".to_owned(),
                number: "REQ0001000".to_owned(),
                service: "email".to_owned(),
                item: "new-mailbox".to_owned(),
                state: state.to_owned(),
                ..Default::default()
            }
            .encode_to_vec()
        };
        app.deliver("resolution.request.submitted", request("submitted"), t0)
            .await;
        // Fulfilment starts after 90 minutes: the response (60) is late; delivered in 4 hours.
        for (minutes, event, state) in [
            (30, "approved", "approved"),
            (90, "fulfilment_started", "in_fulfilment"),
            (240, "fulfilled", "fulfilled"),
        ] {
            let at = t0 + Duration::minutes(minutes);
            app.clock.advance(at - app.clock.now());
            app.deliver(&format!("resolution.request.{event}"), request(state), at)
                .await;
        }
        let (_, page) = app
            .call(Method::GET, "/v1/sla-clocks?ticket=REQ0001000", AGENT, None)
            .await;
        assert!(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["agreement_id"] == requests_sla.as_str()),
            "{page}"
        );
        let stages: std::collections::BTreeMap<String, String> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["metric"].as_str().unwrap().to_owned(),
                    c["stage"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            stages,
            [
                ("resolution".to_owned(), "met".to_owned()),
                ("response".to_owned(), "breached".to_owned())
            ]
            .into(),
            "{page}"
        );
        let query = "from=2026-11-26T00:00:00Z&to=2026-11-27T00:00:00Z";
        let (status, report) = app
            .call(
                Method::GET,
                &format!("/v1/reports/services/email?{query}"),
                AGENT,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(
            (report["requests"].as_i64(), report["incidents"].as_i64()),
            (Some(1), Some(0))
        );
        assert_eq!(report["requests_by_week"]["2026-W48"], 1);
        // An unknown request state is refused as malformed.
        let envelope = Envelope {
            id: uuid::Uuid::now_v7(),
            event_type: "resolution.request.approved".to_owned(),
            source: "/meridian/resolution".to_owned(),
            subject: "req-1".to_owned(),
            time: t0,
            correlation_id: None,
            causation_id: None,
            actor: None,
            payload: request("teleported"),
        };
        assert!(matches!(
            crate::events::apply(&app.svc, envelope).await,
            Err(meridian_chassis::bus::HandleError::Malformed(_))
        ));
    }
);
