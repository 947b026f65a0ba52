//! The API in process: every endpoint, each kind of bad input with its problem code, on both
//! storage backends.

use std::sync::Arc;

use actix_web::dev::{Service as _, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::from_fn;
use actix_web::{App, test as atest, web};
use meridian_chassis::auth::Authenticator;

use meridian_chassis::outbox::Waker;
use meridian_chassis::telemetry::{Metrics, observe};
use meridian_chassis::testing::{BACKENDS, Backend, TestDb, dev_auth_config};
use serde_json::{Value, json};

use crate::Resolution;

struct TestApp {
    _db: TestDb,
    auth: Authenticator,
    service: Resolution,
}

fn config() -> crate::ResolutionConfig {
    #[derive(serde::Deserialize)]
    struct Root {
        resolution: crate::ResolutionConfig,
    }
    let root: Root =
        meridian_chassis::config::load_from(&[crate::config::DEFAULTS], None, vec![]).unwrap();
    root.resolution
}

impl TestApp {
    async fn new(backend: Backend) -> Self {
        let db = TestDb::new(backend, crate::store::MIGRATIONS).await;
        let service = Resolution::new(
            db.db.clone(),
            Arc::new(meridian_chassis::SystemClock),
            config(),
            Waker::default(),
        );
        Self {
            _db: db,
            auth: Authenticator::new(&dev_auth_config()).unwrap(),
            service,
        }
    }

    fn token(&self, sub: &str, roles: &[&str]) -> String {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        self.auth
            .mint_dev(
                sub,
                &roles,
                meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
                chrono::Duration::minutes(10),
            )
            .unwrap()
    }

    fn agent(&self) -> String {
        self.token("alice", &["agent"])
    }

    async fn service(
        &self,
    ) -> impl actix_web::dev::Service<
        actix_http::Request,
        Response = ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
    > {
        let metrics = Metrics::new().unwrap();
        atest::init_service(
            App::new()
                .wrap(from_fn(observe))
                .app_data(web::Data::new(metrics))
                .app_data(web::Data::new(self.auth.clone()))
                .configure(|cfg| meridian_chassis::http::configure(cfg, 64 * 1024))
                .configure(crate::configure(self.service.clone()))
                .default_service(web::to(meridian_chassis::problem::not_found)),
        )
        .await
    }

    /// Sends a request; returns the status, the ETag and the JSON body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> (StatusCode, Option<String>, Value) {
        let app = self.service().await;
        let mut req = atest::TestRequest::default().method(method).uri(path);
        if let Some(token) = token {
            req = req.insert_header(("Authorization", format!("Bearer {token}")));
        }
        if let Some(tag) = if_match {
            req = req.insert_header(("If-Match", tag.to_owned()));
        }
        if let Some(body) = body {
            req = req.set_json(body);
        }
        let response = app.call(req.to_request()).await.unwrap();
        let status = response.status();
        let etag = response
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = atest::read_body(response).await;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, etag, body)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let token = self.agent();
        let (status, _, body) = self
            .call(Method::POST, path, Some(&token), Some(body), None)
            .await;
        (status, body)
    }

    async fn create(&self, body: Value) -> Value {
        let (status, body) = self.post("/v1/incidents", body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let token = self.agent();
        let (status, _, body) = self.call(Method::GET, path, Some(&token), None, None).await;
        (status, body)
    }

    async fn outbox_types(&self) -> Vec<String> {
        self.service
            .db
            .run(|conn| {
                meridian_chassis::outbox::pending(conn, 1000)
                    .map_err(meridian_chassis::db::DbError::from)
            })
            .await
            .unwrap()
            .into_iter()
            .map(|(_, envelope)| envelope.event_type)
            .collect()
    }
}

fn basic() -> Value {
    json!({ "title": "Mail down", "impact": "high", "urgency": "medium", "service": "email" })
}

fn assert_problem(body: &Value, code: &str) {
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["type"], format!("urn:meridian:problem:{code}"));
    assert!(
        body["trace_id"].as_str().is_some_and(|t| t.len() == 32),
        "{body}"
    );
}

fn param(body: &Value, name: &str) -> bool {
    body["invalid-params"]
        .as_array()
        .is_some_and(|params| params.iter().any(|p| p["name"] == name))
}

/// Runs the test body once on each backend.
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
    creating_an_incident_derives_its_priority_and_publishes_created,
    |app| {
        let incident = app.create(basic()).await;
        assert_eq!(incident["priority"], 2);
        assert_eq!(incident["state"], "new");
        assert_eq!(incident["caller"], "alice");
        assert!(incident["number"].as_str().unwrap().starts_with("INC"));
        assert_eq!(app.outbox_types().await, ["resolution.incident.created"]);
    }
);

on_both_backends!(numbers_are_unique_and_increasing, |app| {
    let a = app.create(basic()).await;
    let b = app.create(basic()).await;
    assert!(a["number"].as_str().unwrap() < b["number"].as_str().unwrap());
});

on_both_backends!(bad_bodies_name_every_bad_field, |app| {
    let (status, body) = app
        .post(
            "/v1/incidents",
            json!({ "title": 5, "impact": "high", "urgency": "high" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_problem(&body, "invalid_body");
    assert!(param(&body, "title"));
    assert!(
        body["invalid-params"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("expected a string")
    );

    let (_, body) = app
        .post(
            "/v1/incidents",
            json!({ "title": "x", "impact": "huge", "urgency": "high" }),
        )
        .await;
    assert!(param(&body, "impact"), "{body}");
    let (_, body) = app
        .post("/v1/incidents", json!({ "title": "x", "urgency": "high" }))
        .await;
    assert!(param(&body, "impact"), "{body}");
    let (_, body) = app
        .post(
            "/v1/incidents",
            json!({ "title": "x", "impact": "high", "urgency": "high", "colour": "red" }),
        )
        .await;
    assert!(param(&body, "colour"), "{body}");
    let (_, body) = app
        .post(
            "/v1/incidents",
            json!({ "title": "  ", "impact": "low", "urgency": "low", "assignee": "bob",
                    "configuration_items": ["ok", ""] }),
        )
        .await;
    assert!(
        param(&body, "title") && param(&body, "assignee") && param(&body, "configuration_items[1]"),
        "{body}"
    );
    let (_, body) = app
        .post(
            "/v1/incidents",
            json!({ "title": "x".repeat(201), "impact": "low", "urgency": "low" }),
        )
        .await;
    assert!(param(&body, "title"), "{body}");
    assert!(
        app.outbox_types().await.is_empty(),
        "a refused request wrote something"
    );
});

on_both_backends!(a_body_that_is_not_json_is_refused, |app| {
    let token = app.agent();
    let service = app.service().await;
    let req = atest::TestRequest::post()
        .uri("/v1/incidents")
        .insert_header(("Authorization", format!("Bearer {token}")))
        .insert_header(("Content-Type", "text/plain"))
        .set_payload("title=x")
        .to_request();
    let response = service.call(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let req = atest::TestRequest::post()
        .uri("/v1/incidents")
        .insert_header(("Authorization", format!("Bearer {token}")))
        .insert_header(("Content-Type", "application/json"))
        .set_payload("{\"title\": ")
        .to_request();
    let response = service.call(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let req = atest::TestRequest::post()
        .uri("/v1/incidents")
        .insert_header(("Authorization", format!("Bearer {token}")))
        .insert_header(("Content-Type", "application/json"))
        .set_payload(format!("{{\"title\": \"{}\"}}", "x".repeat(70_000)))
        .to_request();
    let response = service.call(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
});

on_both_backends!(requests_without_a_valid_token_or_role_are_refused, |app| {
    let (status, _, body) = app
        .call(Method::GET, "/v1/incidents", None, None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_problem(&body, "unauthorized");
    let (status, _, _) = app
        .call(
            Method::GET,
            "/v1/incidents",
            Some("not-a-token"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let viewer = app.token("vic", &["viewer"]);
    let (status, _, body) = app
        .call(
            Method::POST,
            "/v1/incidents",
            Some(&viewer),
            Some(basic()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_problem(&body, "forbidden");
    let requester = app.token("carol", &["requester"]);
    let (status, _, body) = app
        .call(
            Method::POST,
            "/v1/incidents",
            Some(&requester),
            Some(basic()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = body["id"].as_str().unwrap().to_owned();
    let (status, _, _) = app
        .call(
            Method::POST,
            &format!("/v1/incidents/{id}/assign"),
            Some(&requester),
            Some(json!({"group": "g"})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = app
        .call(
            Method::POST,
            &format!("/v1/incidents/{id}/notes"),
            Some(&requester),
            Some(json!({"kind": "work_note", "body": "x"})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
});

on_both_backends!(
    the_whole_lifecycle_runs_and_lands_in_history_and_on_the_bus,
    |app| {
        let incident = app.create(basic()).await;
        let id = incident["id"].as_str().unwrap();
        let steps = [
            (
                "assign",
                json!({ "group": "messaging", "assignee": "bob" }),
                "assigned",
            ),
            ("start", json!(null), "in_progress"),
            (
                "pend",
                json!({ "reason": "awaiting_caller", "note": "asked for headers" }),
                "pending",
            ),
            ("resume", json!(null), "in_progress"),
            (
                "escalate",
                json!({ "kind": "functional", "group": "mail-experts", "reason": "needs L3" }),
                "in_progress",
            ),
            (
                "escalate",
                json!({ "kind": "hierarchical", "reason": "customer VIP" }),
                "in_progress",
            ),
            (
                "priority",
                json!({ "priority": 1, "reason": "board affected" }),
                "in_progress",
            ),
            (
                "notes",
                json!({ "kind": "work_note", "body": "checked MX records" }),
                "in_progress",
            ),
            (
                "resolve",
                json!({ "code": "solved_permanently", "notes": "fixed MX record" }),
                "resolved",
            ),
            (
                "reopen",
                json!({ "reason": "bounces again" }),
                "in_progress",
            ),
            (
                "resolve",
                json!({ "code": "solved_workaround", "notes": "relay via backup" }),
                "resolved",
            ),
            ("close", json!(null), "closed"),
        ];
        for (action, body, state) in steps {
            let body = if body.is_null() { None } else { Some(body) };
            let token = app.agent();
            let (status, _, result) = app
                .call(
                    Method::POST,
                    &format!("/v1/incidents/{id}/{action}"),
                    Some(&token),
                    body,
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{action}: {result}");
            assert_eq!(result["state"], state, "{action}");
        }
        let (status, detail) = app.get(&format!("/v1/incidents/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(detail["priority"], 1);
        assert_eq!(detail["escalation_level"], 1);
        assert_eq!(detail["assignment_group"], "mail-experts");
        let kinds: Vec<&str> = detail["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "created",
                "assigned",
                "state_changed",
                "state_changed",
                "state_changed",
                "escalated",
                "escalated",
                "priority_changed",
                "work_note",
                "resolved",
                "reopened",
                "resolved",
                "closed"
            ]
        );
        let types = app.outbox_types().await;
        for expected in [
            "created",
            "assigned",
            "state_changed",
            "escalated",
            "priority_changed",
            "resolved",
            "reopened",
            "closed",
        ] {
            assert!(
                types.contains(&format!("resolution.incident.{expected}")),
                "{expected} missing: {types:?}"
            );
        }
        assert_eq!(types.len(), 12, "notes are not published: {types:?}");
        let audit = app
            .service
            .db
            .run({
                let id = id.to_owned();
                move |conn| {
                    meridian_chassis::audit::list_for(conn, "incident", &id)
                        .map_err(meridian_chassis::db::DbError::from)
                }
            })
            .await
            .unwrap();
        assert_eq!(audit.len(), 13);
        assert!(audit[0].before.is_none() && audit[1].before.is_some());
    }
);

on_both_backends!(
    an_illegal_transition_is_a_409_listing_the_allowed_actions,
    |app| {
        let incident = app.create(basic()).await;
        let id = incident["id"].as_str().unwrap();
        let (status, body) = app
            .post(&format!("/v1/incidents/{id}/close"), json!({}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_problem(&body, "incident_transition_not_allowed");
        let allowed: Vec<&str> = body["allowed-actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(
            allowed.contains(&"assign") && !allowed.contains(&"close"),
            "{allowed:?}"
        );
        let (status, _) = app
            .post(
                &format!("/v1/incidents/{id}/resolve"),
                json!({"code": "duplicate", "notes": "x"}),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            app.outbox_types().await.len(),
            1,
            "a refused transition wrote something"
        );
    }
);

on_both_backends!(resolving_needs_a_code_and_notes, |app| {
    let incident = app
        .create(
            json!({"title": "x", "impact": "low", "urgency": "low", "assignment_group": "desk"}),
        )
        .await;
    let id = incident["id"].as_str().unwrap();
    let (status, body) = app
        .post(
            &format!("/v1/incidents/{id}/resolve"),
            json!({"code": "duplicate", "notes": " "}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(param(&body, "notes"));
    let (_, body) = app
        .post(
            &format!("/v1/incidents/{id}/resolve"),
            json!({"notes": "done"}),
        )
        .await;
    assert!(param(&body, "code"), "{body}");
    let (_, body) = app
        .post(
            &format!("/v1/incidents/{id}/resolve"),
            json!({"code": "magic", "notes": "done"}),
        )
        .await;
    assert!(param(&body, "code"), "{body}");
});

on_both_backends!(a_stale_etag_is_a_412_and_a_fresh_one_passes, |app| {
    let incident = app.create(basic()).await;
    let id = incident["id"].as_str().unwrap();
    let token = app.agent();
    let path = format!("/v1/incidents/{id}");
    let (_, etag, _) = app.call(Method::GET, &path, Some(&token), None, None).await;
    let etag = etag.unwrap();
    assert_eq!(etag, "\"1\"");
    let (status, new_etag, body) = app
        .call(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"title": "Mail down everywhere"})),
            Some(&etag),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(new_etag.as_deref(), Some("\"2\""));
    let (status, _, body) = app
        .call(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"title": "again"})),
            Some(&etag),
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert_problem(&body, "precondition_failed");
    let (status, _, _) = app
        .call(
            Method::POST,
            &format!("{path}/assign"),
            Some(&token),
            Some(json!({"group": "g"})),
            Some("W/\"1\""),
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let (_, detail) = app.get(&path).await;
    assert_eq!(detail["title"], "Mail down everywhere");
});

on_both_backends!(
    updating_impact_recomputes_priority_and_empty_patches_are_refused,
    |app| {
        let incident = app.create(basic()).await;
        let id = incident["id"].as_str().unwrap();
        let token = app.agent();
        let path = format!("/v1/incidents/{id}");
        let (status, _, body) = app
            .call(
                Method::PATCH,
                &path,
                Some(&token),
                Some(json!({"impact": "low", "urgency": "low"})),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["priority"], 5);
        let (status, _, body) = app
            .call(Method::PATCH, &path, Some(&token), Some(json!({})), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(param(&body, "body"));
        let types = app.outbox_types().await;
        assert!(types.contains(&"resolution.incident.priority_changed".to_owned()));
        assert!(types.contains(&"resolution.incident.updated".to_owned()));
    }
);

on_both_backends!(escalation_requires_the_right_fields, |app| {
    let incident = app.create(basic()).await;
    let id = incident["id"].as_str().unwrap();
    let (_, body) = app
        .post(
            &format!("/v1/incidents/{id}/escalate"),
            json!({"kind": "functional", "reason": "x"}),
        )
        .await;
    assert!(param(&body, "group"), "{body}");
    let (_, body) = app
        .post(
            &format!("/v1/incidents/{id}/escalate"),
            json!({"kind": "hierarchical", "group": "g", "reason": "x"}),
        )
        .await;
    assert!(param(&body, "group"), "{body}");
    let (_, body) = app
        .post(
            &format!("/v1/incidents/{id}/priority"),
            json!({"priority": 9, "reason": "x"}),
        )
        .await;
    assert!(param(&body, "priority"), "{body}");
});

on_both_backends!(major_incidents_need_the_role_and_the_criteria, |app| {
    let p3 = app
        .create(json!({"title": "x", "impact": "medium", "urgency": "medium"}))
        .await;
    let id = p3["id"].as_str().unwrap();
    let path = format!("/v1/incidents/{id}/major");
    let body = json!({"manager": "mia", "reason": "many users"});
    let (status, _) = app.post(&path, body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let manager = app.token("mia", &["incident-manager"]);
    let (status, _, problem) = app
        .call(
            Method::POST,
            &path,
            Some(&manager),
            Some(body.clone()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_problem(&problem, "major_incident_criteria_not_met");
    let p1 = app
        .create(json!({"title": "y", "impact": "high", "urgency": "high"}))
        .await;
    let path = format!("/v1/incidents/{}/major", p1["id"].as_str().unwrap());
    let (status, _, declared) = app
        .call(
            Method::POST,
            &path,
            Some(&manager),
            Some(body.clone()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{declared}");
    assert_eq!(declared["major"], true);
    assert_eq!(declared["major_manager"], "mia");
    let (status, _, problem) = app
        .call(Method::POST, &path, Some(&manager), Some(body), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_problem(&problem, "incident_already_major");
    assert!(
        app.outbox_types()
            .await
            .contains(&"resolution.incident.major_declared".to_owned())
    );
});

on_both_backends!(
    a_critical_catalogue_service_qualifies_a_lower_priority_for_major,
    |app| {
        let row = crate::store::catalogue::ServiceRow {
            id: "email".into(),
            name: "E-mail".into(),
            criticality: "critical".into(),
            status: "live".into(),
            revision: 1,
        };
        app.service
            .db
            .transaction(move |conn| {
                crate::store::catalogue::upsert(conn, &row)
                    .map_err(meridian_chassis::db::DbError::from)
            })
            .await
            .unwrap();
        let p3 = app
            .create(
                json!({"title": "x", "impact": "medium", "urgency": "medium", "service": "email"}),
            )
            .await;
        let manager = app.token("mia", &["incident-manager"]);
        let path = format!("/v1/incidents/{}/major", p3["id"].as_str().unwrap());
        let (status, _, body) = app
            .call(
                Method::POST,
                &path,
                Some(&manager),
                Some(json!({"manager": "mia", "reason": "mail"})),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
);

on_both_backends!(unknown_and_malformed_ids_are_named, |app| {
    let (status, body) = app
        .get(&format!("/v1/incidents/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_problem(&body, "incident_not_found");
    let (status, body) = app.get("/v1/incidents/not-a-uuid").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(param(&body, "id"), "{body}");
    let (status, body) = app
        .post(
            &format!("/v1/incidents/{}/start", uuid::Uuid::now_v7()),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_problem(&body, "incident_not_found");
});

on_both_backends!(lists_filter_sort_and_page_by_cursor, |app| {
    for (i, (impact, urgency)) in [
        ("high", "high"),
        ("low", "low"),
        ("medium", "medium"),
        ("high", "medium"),
        ("low", "medium"),
    ]
    .iter()
    .enumerate()
    {
        let mut body =
            json!({"title": format!("incident {i}"), "impact": impact, "urgency": urgency});
        if i % 2 == 0 {
            body["assignment_group"] = json!("desk");
            body["assignee"] = json!("alice");
        }
        app.create(body).await;
    }
    let (_, page) = app.get("/v1/incidents?sort=priority&limit=2").await;
    let priorities: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["priority"].as_i64().unwrap())
        .collect();
    assert_eq!(priorities, [1, 2]);
    let mut seen = priorities.clone();
    let mut cursor = page["next_cursor"].as_str().map(str::to_owned);
    while let Some(next) = cursor {
        let (status, page) = app
            .get(&format!(
                "/v1/incidents?sort=priority&limit=2&cursor={next}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["priority"].as_i64().unwrap()),
        );
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, [1, 2, 3, 4, 5]);
    let (_, page) = app.get("/v1/incidents?assignee=me&state=assigned").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let (_, page) = app.get("/v1/incidents?group=desk&priority=1").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (_, page) = app.get("/v1/incidents?sort=-created_at&limit=1").await;
    assert_eq!(page["items"][0]["title"], "incident 4");
    let (_, page) = app
        .get("/v1/incidents?created_from=2000-01-01T00:00:00Z&created_to=2000-01-02T00:00:00Z")
        .await;
    assert!(page["items"].as_array().unwrap().is_empty());
    assert!(page["next_cursor"].is_null());
});

on_both_backends!(bad_list_parameters_are_named, |app| {
    for (query, name) in [
        ("state=open", "state"),
        ("priority=7", "priority"),
        ("sort=title", "sort"),
        ("limit=0", "limit"),
        ("limit=many", "limit"),
        ("cursor=abc", "cursor"),
        ("created_from=yesterday", "created_from"),
        ("colour=red", "colour"),
    ] {
        let (status, body) = app.get(&format!("/v1/incidents?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_problem(&body, "invalid_parameters");
        assert!(param(&body, name), "{query}: {body}");
    }
    let (_, page) = app.get("/v1/incidents?sort=priority&limit=1").await;
    let _ = page;
});

#[test]
fn the_openapi_document_lists_exactly_the_routes() {
    let doc = serde_json::to_value(crate::api::openapi()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                documented.push((method.to_owned(), path.clone()));
            }
        }
    }
    let mut routed: Vec<(String, String)> = crate::api::ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    documented.sort();
    routed.sort();
    assert_eq!(documented, routed);
    assert_eq!(doc["openapi"], "3.1.0");
}

#[actix_web::test]
async fn every_documented_route_is_served() {
    let app = TestApp::new(Backend::Sqlite).await;
    let token = app.agent();
    let id = uuid::Uuid::now_v7();
    for (method, path) in crate::api::ROUTES {
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let path = path.replace("{id}", &id.to_string());
        let (status, _, body) = app
            .call(method.clone(), &path, Some(&token), Some(json!({})), None)
            .await;
        assert_ne!(body["code"], "not_found", "{method} {path} is not routed");
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(!status.is_server_error(), "{method} {path}: {body}");
    }
}

on_both_backends!(a_failed_deployment_becomes_an_incident_once, |app| {
    use meridian_proto::Message;
    use meridian_proto::control::v1::DeploymentRecorded;
    let envelope = meridian_chassis::bus::Envelope {
        id: uuid::Uuid::now_v7(),
        event_type: "control.deployment.failed".to_owned(),
        source: "/meridian/control".to_owned(),
        subject: "dep-1".to_owned(),
        time: meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
        correlation_id: None,
        causation_id: None,
        actor: Some("rita".to_owned()),
        payload: DeploymentRecorded {
            deployment_id: "dep-1".to_owned(),
            release_id: "rel-1".to_owned(),
            release_name: "Payroll".to_owned(),
            version: "17.1".to_owned(),
            environment: "production".to_owned(),
            outcome: "failed".to_owned(),
            notes: "migration timed out".to_owned(),
            configuration_items: vec!["pay-db".to_owned()],
            ..Default::default()
        }
        .encode_to_vec(),
    };
    for _ in 0..2 {
        crate::events::consume::apply_deployment_failed(
            &app.service.db,
            &meridian_chassis::SystemClock,
            crate::domain::priority::PriorityMatrix::itil(),
            config().problems,
            envelope.clone(),
        )
        .await
        .unwrap();
    }
    let (status, page) = app.get("/v1/incidents").await;
    assert_eq!(status, StatusCode::OK);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(
        items[0]["title"],
        "Deployment of Payroll 17.1 to production failed"
    );
    assert_eq!(items[0]["priority"], 1);
    assert_eq!(items[0]["configuration_items"], json!(["pay-db"]));
    assert_eq!(items[0]["category"], "deployment");
});

fn ci_changed(id: &str, name: &str, revision: i64) -> meridian_chassis::bus::Envelope {
    use meridian_proto::Message;
    meridian_chassis::bus::Envelope {
        id: uuid::Uuid::now_v7(),
        event_type: crate::events::consume::CI_CHANGED.to_owned(),
        source: "/meridian/control".to_owned(),
        subject: id.to_owned(),
        time: meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
        correlation_id: None,
        causation_id: None,
        actor: Some("system:discovery".to_owned()),
        payload: meridian_proto::control::v1::ConfigurationItemChanged {
            id: id.to_owned(),
            name: name.to_owned(),
            class: "server".to_owned(),
            owner: "olga".to_owned(),
            status: "live".to_owned(),
            revision,
        }
        .encode_to_vec(),
    }
}

on_both_backends!(cis_named_by_their_name_are_recorded_by_their_id, |app| {
    let apply = |envelope| {
        crate::events::consume::apply_ci(&app.service.db, &meridian_chassis::SystemClock, envelope)
    };
    apply(ci_changed("ci-1", "mx-gateway", 2)).await.unwrap();
    // An older revision arriving late changes nothing; a newer one renames.
    apply(ci_changed("ci-1", "old-name", 1)).await.unwrap();
    apply(ci_changed("ci-2", "db", 1)).await.unwrap();
    apply(ci_changed("ci-3", "db", 1)).await.unwrap();
    let mut empty = ci_changed("", "x", 1);
    empty.payload = meridian_proto::Message::encode_to_vec(
        &meridian_proto::control::v1::ConfigurationItemChanged::default(),
    );
    assert!(matches!(
        apply(empty).await,
        Err(meridian_chassis::bus::HandleError::Malformed(_))
    ));
    let created = app
        .create(
            json!({"title": "Mail queue stuck", "impact": "low", "urgency": "low",
            "configuration_items": ["mx-gateway", "ci-1", "db", "printer-7"]}),
        )
        .await;
    // By name → its id (once); an id stays; a shared name or an unknown CI stays as given.
    assert_eq!(
        created["configuration_items"],
        json!(["ci-1", "db", "printer-7"]),
        "{created}"
    );
    apply(ci_changed("ci-1", "mx-gw", 3)).await.unwrap();
    let renamed = app
        .create(json!({"title": "Again", "impact": "low", "urgency": "low",
            "configuration_items": ["mx-gw", "old-name"]}))
        .await;
    assert_eq!(
        renamed["configuration_items"],
        json!(["ci-1", "old-name"]),
        "{renamed}"
    );
    // Editing the CIs resolves names the same way.
    let path = format!("/v1/incidents/{}", renamed["id"].as_str().unwrap());
    let token = app.agent();
    let (status, _, edited) = app
        .call(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"configuration_items": ["mx-gw", "printer-7"]})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["configuration_items"], json!(["ci-1", "printer-7"]));
});

on_both_backends!(
    a_major_incident_review_is_noted_on_its_incident_once,
    |app| {
        use meridian_proto::Message;
        let incident = app
            .create(json!({"title": "Mail down", "impact": "high", "urgency": "high"}))
            .await;
        let id = incident["id"].as_str().unwrap();
        let completed = |definition: &str| {
            meridian_chassis::bus::Envelope {
        id: uuid::Uuid::now_v7(),
        event_type: crate::events::consume::INSTANCE_COMPLETED.to_owned(),
        source: "/meridian/workflow".to_owned(),
        subject: "wf-1".to_owned(),
        time: meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
        correlation_id: None,
        causation_id: None,
        actor: None,
        payload: meridian_proto::workflow::v1::InstanceCompleted {
            instance_id: "wf-1".to_owned(),
            definition: definition.to_owned(),
            business_key: id.to_owned(),
            outcome: "reviewed".to_owned(),
            variables_json: json!({"review": {"by": "mona", "cause": "expired certificate", "lessons": "alert on expiry", "problem_needed": true}}).to_string(),
        }
        .encode_to_vec(),
    }
        };
        let apply = |envelope| {
            crate::events::consume::apply_instance_completed(
                &app.service.db,
                &meridian_chassis::SystemClock,
                envelope,
            )
        };
        apply(completed("change-advisory-board")).await.unwrap();
        let review = completed("major-incident");
        apply(review.clone()).await.unwrap();
        apply(review).await.unwrap();
        let (_, detail) = app.get(&format!("/v1/incidents/{id}")).await;
        let notes: Vec<&Value> = detail["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "work_note")
            .collect();
        assert_eq!(notes.len(), 1, "{detail}");
        let note = notes[0].to_string();
        assert!(
            note.contains("review by mona")
                && note.contains("expired certificate")
                && note.contains("A problem record is needed"),
            "{note}"
        );
    }
);
