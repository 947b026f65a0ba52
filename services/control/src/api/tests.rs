//! The CMDB API in process, on both storage backends: CIs checked against their types,
//! relations, impact analysis with paths, history, events, and every refused input.

use std::sync::Arc;

use actix_web::dev::{Service as _, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::from_fn;
use actix_web::{App, test as atest, web};
use meridian_chassis::auth::Authenticator;
use meridian_chassis::db::DbError;
use meridian_chassis::outbox::Waker;
use meridian_chassis::telemetry::{Metrics, observe};
use meridian_chassis::testing::{BACKENDS, Backend, TestDb, dev_auth_config};
use meridian_proto::Message;
use meridian_proto::control::v1::ConfigurationItemChanged;
use serde_json::{Value, json};

use crate::Control;

struct TestApp {
    db: TestDb,
    auth: Authenticator,
    service: Control,
}

fn config() -> crate::ControlConfig {
    #[derive(serde::Deserialize)]
    struct Root {
        control: crate::ControlConfig,
    }
    let root: Root = meridian_chassis::config::load_from(
        &[
            crate::config::DEFAULTS,
            "control:\n  cab_members: [ann, ben, cat]\n  emergency_cab: [eve]\n  freeze_windows:\n    - { name: year-end close, start: '2026-12-20T00:00:00Z', end: '2027-01-03T00:00:00Z' }\n",
        ],
        None,
        vec![],
    )
    .unwrap();
    root.control
}

const CMDB: (&str, &[&str]) = ("cora", &["configuration-manager"]);
const READER: (&str, &[&str]) = ("rob", &["agent"]);

impl TestApp {
    async fn new(backend: Backend) -> Self {
        let db = TestDb::new(backend, crate::store::MIGRATIONS).await;
        let service = Control {
            db: db.db.clone(),
            clock: Arc::new(meridian_chassis::SystemClock),
            config: config(),
            waker: Waker::default(),
        };
        Self {
            db,
            auth: Authenticator::new(&dev_auth_config()).unwrap(),
            service,
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
                .wrap(from_fn(observe))
                .app_data(web::Data::new(Metrics::new().unwrap()))
                .app_data(web::Data::new(self.auth.clone()))
                .configure(|cfg| meridian_chassis::http::configure(cfg, 64 * 1024))
                .configure(crate::configure(self.service.clone()))
                .default_service(web::to(meridian_chassis::problem::not_found)),
        )
        .await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        who: (&str, &[&str]),
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> (StatusCode, Value) {
        let app = self.service().await;
        let roles: Vec<String> = who.1.iter().map(|r| (*r).to_owned()).collect();
        let token = self
            .auth
            .mint_dev(
                who.0,
                &roles,
                meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
                chrono::Duration::minutes(10),
            )
            .unwrap();
        let mut req = atest::TestRequest::default()
            .method(method)
            .uri(path)
            .insert_header(("Authorization", format!("Bearer {token}")));
        if let Some(tag) = if_match {
            req = req.insert_header(("If-Match", tag.to_owned()));
        }
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

    async fn ci(&self, body: Value) -> String {
        let (status, created) = self
            .call(Method::POST, "/v1/cis", CMDB, Some(body), None)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created["id"].as_str().unwrap().to_owned()
    }

    async fn relate(&self, source: &str, kind: &str, target: &str) -> Value {
        let path = format!("/v1/cis/{source}/relations");
        let (status, body) = self
            .call(
                Method::POST,
                &path,
                CMDB,
                Some(json!({"kind": kind, "target": target})),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        // A time with its offset, as documented (a stored time once went out without one).
        let at = body["created_at"].as_str().unwrap_or_default();
        assert!(
            chrono::DateTime::parse_from_rfc3339(at).is_ok(),
            "created_at {at:?} is not RFC 3339"
        );
        body
    }

    async fn outbox(&self) -> Vec<meridian_chassis::bus::Envelope> {
        self.db
            .db
            .run(|conn| meridian_chassis::outbox::pending(conn, 1000).map_err(DbError::from))
            .await
            .unwrap()
            .into_iter()
            .map(|(_, e)| e)
            .collect()
    }

    async fn events(&self) -> Vec<ConfigurationItemChanged> {
        self.outbox()
            .await
            .into_iter()
            .map(|e| {
                assert_eq!(e.event_type, "control.ci.changed");
                ConfigurationItemChanged::decode(e.payload.as_slice()).unwrap()
            })
            .collect()
    }
}

fn server(name: &str) -> Value {
    json!({"ci_type": "server", "name": name, "owner": "olaf", "criticality": "high", "attributes": {"hostname": name, "cores": 8}})
}

fn assert_problem(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], code, "{body}");
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
    a_ci_is_recorded_checked_against_its_type_changed_and_announced,
    |app| {
        let id = app.ci(server("db-host-1")).await;
        let (status, ci) = app
            .call(Method::GET, &format!("/v1/cis/{id}"), READER, None, None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (ci["status"].clone(), ci["environment"].clone()),
            (json!("in_service"), json!("production"))
        );
        assert_eq!(ci["attributes"]["cores"], 8);
        let (status, changed) = app
            .call(
                Method::PATCH,
                &format!("/v1/cis/{id}"),
                CMDB,
                Some(json!({"owner": "ines", "status": "retired"})),
                Some("\"1\""),
            )
            .await;
        assert_eq!(
            (status, changed["version"].clone()),
            (StatusCode::OK, json!(2)),
            "{changed}"
        );
        // A stale version is refused.
        let (status, body) = app
            .call(
                Method::PATCH,
                &format!("/v1/cis/{id}"),
                CMDB,
                Some(json!({"owner": "x"})),
                Some("\"1\""),
            )
            .await;
        assert_problem(
            status,
            &body,
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
        );
        // History: who, when, before, after.
        let (_, ci) = app
            .call(Method::GET, &format!("/v1/cis/{id}"), READER, None, None)
            .await;
        let history = ci["history"].as_array().unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[1]["action"], "ci.updated");
        assert_eq!(history[1]["actor"], "cora");
        assert_eq!(history[1]["before"]["owner"], "olaf");
        assert_eq!(history[1]["after"]["owner"], "ines");
        // Each change is announced with the owner and a growing revision.
        let events = app.events().await;
        let owners: Vec<(String, i64)> = events
            .iter()
            .map(|e| (e.owner.clone(), e.revision))
            .collect();
        assert_eq!(owners, [("olaf".to_owned(), 1), ("ines".to_owned(), 2)]);
        // Listing with filters.
        app.ci(json!({"ci_type": "database", "name": "payroll-db", "owner": "olaf", "attributes": {"engine": "postgresql"}})).await;
        let (_, page) = app
            .call(Method::GET, "/v1/cis?type=database", READER, None, None)
            .await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        let (_, page) = app
            .call(
                Method::GET,
                "/v1/cis?name=host&status=retired",
                READER,
                None,
                None,
            )
            .await;
        assert_eq!(page["items"][0]["id"], id.as_str());
        let (_, page) = app
            .call(Method::GET, "/v1/cis?limit=1", READER, None, None)
            .await;
        assert!(page["next"].is_string());
    }
);

on_both_backends!(bad_input_is_refused_naming_the_field, |app| {
    let cases = [
        (
            json!({"ci_type": "toaster", "name": "t", "owner": "o"}),
            "ci_type",
        ),
        (
            json!({"ci_type": "database", "name": "d", "owner": "o"}),
            "attributes.engine",
        ),
        (
            json!({"ci_type": "database", "name": "d", "owner": "o", "attributes": {"engine": "dbase"}}),
            "attributes.engine",
        ),
        (
            json!({"ci_type": "server", "name": "s", "owner": "o", "attributes": {"hostname": "s", "cores": "eight"}}),
            "attributes.cores",
        ),
        (
            json!({"ci_type": "server", "name": "", "owner": "o", "attributes": {"hostname": "s"}}),
            "name",
        ),
        (
            json!({"ci_type": "server", "name": "s", "owner": "o", "status": "live", "attributes": {"hostname": "s"}}),
            "status",
        ),
    ];
    for (body, field) in cases {
        let (status, problem) = app
            .call(Method::POST, "/v1/cis", CMDB, Some(body.clone()), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        let named = problem["invalid-params"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == field);
        assert!(named, "{field} in {problem}");
    }
    let (status, body) = app
        .call(Method::POST, "/v1/cis", READER, Some(server("x")), None)
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = app
        .call(Method::GET, "/v1/cis/nope", READER, None, None)
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "ci_not_found");
    let id = app.ci(server("h")).await;
    let path = format!("/v1/cis/{id}/relations");
    let (status, body) = app
        .call(
            Method::POST,
            &path,
            CMDB,
            Some(json!({"kind": "runs_on", "target": id})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = app
        .call(
            Method::POST,
            &path,
            CMDB,
            Some(json!({"kind": "runs_on", "target": "ghost"})),
            None,
        )
        .await;
    assert_eq!(
        (status, body["invalid-params"][0]["name"].clone()),
        (StatusCode::BAD_REQUEST, json!("target"))
    );
    let (status, _) = app
        .call(
            Method::POST,
            &path,
            CMDB,
            Some(json!({"kind": "likes", "target": "x"})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/v1/cis/{id}/impact?depth=11"),
            READER,
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, body["invalid-params"][0]["name"].clone()),
        (StatusCode::BAD_REQUEST, json!("depth"))
    );
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/v1/cis/{id}/impact?direction=sideways"),
            READER,
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, body["invalid-params"][0]["name"].clone()),
        (StatusCode::BAD_REQUEST, json!("direction"))
    );
    let (status, body) = app
        .call(Method::DELETE, "/v1/relations/nope", CMDB, None, None)
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "ci_relation_not_found",
    );
});

on_both_backends!(
    impact_analysis_finds_the_affected_cis_and_services_with_their_paths,
    |app| {
        // payroll (service) ← app depends_on; app runs_on vm; vm hosted_by host; db runs_on host;
        // billing (service) depends_on db.
        let host = app.ci(server("host")).await;
        let vm = app.ci(server("vm")).await;
        let application = app
            .ci(json!({"ci_type": "application", "name": "payroll-app", "owner": "o"}))
            .await;
        let db = app.ci(json!({"ci_type": "database", "name": "billing-db", "owner": "o", "attributes": {"engine": "postgresql"}})).await;
        let payroll = app.ci(json!({"ci_type": "service", "name": "Payroll", "owner": "o", "criticality": "critical"})).await;
        let billing = app
            .ci(json!({"ci_type": "service", "name": "Billing", "owner": "o"}))
            .await;
        app.relate(&vm, "hosted_by", &host).await;
        app.relate(&application, "runs_on", &vm).await;
        app.relate(&payroll, "depends_on", &application).await;
        app.relate(&db, "runs_on", &host).await;
        let billing_rel = app.relate(&billing, "depends_on", &db).await;
        let (status, body) = app
            .call(
                Method::POST,
                &format!("/v1/cis/{billing}/relations"),
                CMDB,
                Some(json!({"kind": "depends_on", "target": db})),
                None,
            )
            .await;
        assert_problem(status, &body, StatusCode::CONFLICT, "ci_relation_exists");

        let (status, impact) = app
            .call(
                Method::GET,
                &format!("/v1/cis/{host}/impact"),
                READER,
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{impact}");
        let names: Vec<&str> = impact["affected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), 5, "{names:?}");
        let services: Vec<&str> = impact["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert_eq!(services.len(), 2);
        assert!(services.contains(&"Payroll") && services.contains(&"Billing"));
        let payroll_entry = impact["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "Payroll")
            .unwrap();
        assert_eq!(payroll_entry["depth"], 3);
        let path: Vec<(Value, Value)> = payroll_entry["path"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["id"].clone(), p["kind"].clone()))
            .collect();
        assert_eq!(
            path,
            [
                (json!(host), Value::Null),
                (json!(vm), json!("hosted_by")),
                (json!(application), json!("runs_on")),
                (json!(payroll), json!("depends_on")),
            ]
        );
        // Depth bounds the walk; down walks what a CI needs.
        let (_, shallow) = app
            .call(
                Method::GET,
                &format!("/v1/cis/{host}/impact?depth=1"),
                READER,
                None,
                None,
            )
            .await;
        assert_eq!(shallow["affected"].as_array().unwrap().len(), 2);
        let (_, down) = app
            .call(
                Method::GET,
                &format!("/v1/cis/{payroll}/impact?direction=down"),
                READER,
                None,
                None,
            )
            .await;
        let needs: Vec<&str> = down["affected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert_eq!(needs, ["payroll-app", "vm", "host"]);
        // Removing a relation cuts the path.
        let (status, _) = app
            .call(
                Method::DELETE,
                &format!("/v1/relations/{}", billing_rel["id"].as_str().unwrap()),
                CMDB,
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, after) = app
            .call(
                Method::GET,
                &format!("/v1/cis/{host}/impact"),
                READER,
                None,
                None,
            )
            .await;
        assert_eq!(after["services"].as_array().unwrap().len(), 1);
    }
);

#[test]
fn the_openapi_document_lists_every_route() {
    let doc = serde_json::to_value(crate::api::openapi()).unwrap();
    for (method, path) in crate::api::ROUTES {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
}

const REQUESTER: (&str, &[&str]) = ("rita", &["agent"]);

fn normal_change() -> Value {
    json!({
        "title": "Upgrade PostgreSQL to 17", "reason": "end of support", "category": "normal",
        "window_start": "2026-12-05T01:00:00Z", "window_end": "2026-12-05T03:00:00Z",
        "implementation_plan": "pg_upgrade", "test_plan": "smoke tests", "backout_plan": "restore the snapshot",
    })
}

fn envelope(
    event_type: &str,
    payload: Vec<u8>,
    correlation: Option<&str>,
) -> meridian_chassis::bus::Envelope {
    meridian_chassis::bus::Envelope {
        id: uuid::Uuid::now_v7(),
        event_type: event_type.to_owned(),
        source: "/meridian/workflow".to_owned(),
        subject: "x".to_owned(),
        time: meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
        correlation_id: correlation.map(str::to_owned),
        causation_id: None,
        actor: None,
        payload,
    }
}

on_both_backends!(
    a_change_is_submitted_for_approval_and_the_workflows_decision_comes_back,
    |app| {
        use meridian_proto::control::v1::ChangeSubmitted;
        use meridian_proto::workflow::v1::{Command, CommandReply, InstanceCompleted};
        let db = app.ci(json!({"ci_type": "database", "name": "payroll-db", "owner": "o", "attributes": {"engine": "postgresql"}})).await;
        let mut body = normal_change();
        body["configuration_items"] = json!([db]);
        let (status, change) = app
            .call(Method::POST, "/v1/changes", REQUESTER, Some(body), None)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{change}");
        assert_eq!(
            (change["state"].clone(), change["requester"].clone()),
            (json!("draft"), json!("rita"))
        );
        assert!(change["number"].as_str().unwrap().starts_with("CHG"));
        let id = change["id"].as_str().unwrap().to_owned();
        // Starting a draft is refused, listing what is allowed.
        let (status, problem) = app
            .call(
                Method::POST,
                &format!("/v1/changes/{id}/start"),
                REQUESTER,
                None,
                None,
            )
            .await;
        assert_eq!(
            (status, problem["code"].clone()),
            (StatusCode::CONFLICT, json!("change_transition_not_allowed"))
        );
        assert_eq!(
            problem["allowed-actions"],
            json!(["update", "submit", "cancel"])
        );
        let (status, submitted) = app
            .call(
                Method::POST,
                &format!("/v1/changes/{id}/submit"),
                REQUESTER,
                None,
                None,
            )
            .await;
        assert_eq!(
            (status, submitted["state"].clone()),
            (StatusCode::OK, json!("submitted"))
        );
        let event = app
            .outbox()
            .await
            .into_iter()
            .find(|e| e.event_type == "control.change.submitted")
            .unwrap();
        let event = ChangeSubmitted::decode(event.payload.as_slice()).unwrap();
        assert_eq!(
            (event.kind.as_str(), event.requester.as_str()),
            ("normal", "rita")
        );
        assert_eq!(event.cab_members, ["ann", "ben", "cat"]);
        assert_eq!(event.configuration_items, std::slice::from_ref(&db));
        // The change manager's triage in the CAB workflow assesses it.
        let triage = meridian_proto::workflow::v1::TaskCompleted {
            task_id: "t1".to_owned(),
            instance_id: "wf-1".to_owned(),
            node: "triage".to_owned(),
            completed_by: "max".to_owned(),
            outcome: "assessed".to_owned(),
            comment: "touches payroll".to_owned(),
            business_key: id.clone(),
            definition: "change-advisory-board".to_owned(),
            fields_json: json!({"risk": "high"}).to_string(),
        };
        let message = envelope("workflow.task.completed", triage.encode_to_vec(), None);
        crate::events::apply(&app.service, message).await.unwrap();
        let (_, assessed) = app
            .call(
                Method::GET,
                &format!("/v1/changes/{id}"),
                READER,
                None,
                None,
            )
            .await;
        assert_eq!(assessed["state"], "assessed", "{assessed}");
        assert_eq!(
            assessed["decision"]["assessment"],
            json!({"by": "max", "risk": "high", "comment": "touches payroll"})
        );
        // The CAB workflow approves: its schedule command arrives, the change is scheduled, the
        // reply goes back; the same command again changes nothing and is answered again.
        let command = Command {
            correlation_id: "wf-1:3:1".to_owned(),
            command: "control.change.schedule".to_owned(),
            instance_id: "wf-1".to_owned(),
            business_key: id.clone(),
            input_json: json!({"change_id": id}).to_string(),
            attempt: 1,
        };
        for _ in 0..2 {
            let message = envelope(
                "control.change.schedule",
                command.encode_to_vec(),
                Some("wf-1:3:1"),
            );
            crate::events::apply(&app.service, message).await.unwrap();
        }
        let (_, scheduled) = app
            .call(
                Method::GET,
                &format!("/v1/changes/{id}"),
                READER,
                None,
                None,
            )
            .await;
        assert_eq!(
            (scheduled["state"].clone(), scheduled["version"].clone()),
            (json!("scheduled"), json!(4)),
            "{scheduled}"
        );
        let replies: Vec<CommandReply> = app
            .outbox()
            .await
            .into_iter()
            .filter(|e| e.event_type == "control.change.scheduled")
            .map(|e| CommandReply::decode(e.payload.as_slice()).unwrap())
            .collect();
        assert_eq!(replies.len(), 2);
        assert!(
            replies
                .iter()
                .all(|r| r.ok && r.correlation_id == "wf-1:3:1")
        );
        // The workflow's completion records who decided.
        let done = InstanceCompleted {
        instance_id: "wf-1".to_owned(),
        definition: "change-advisory-board".to_owned(),
        business_key: id.clone(),
        outcome: "approved".to_owned(),
        variables_json: json!({"triage": {"by": "max", "outcome": "assessed", "risk": "high"}, "cab": {"approved": 2, "decisions": [{"by": "ann", "outcome": "approved"}, {"by": "ben", "outcome": "approved"}]}}).to_string(),
    };
        crate::events::apply(
            &app.service,
            envelope("workflow.instance.completed", done.encode_to_vec(), None),
        )
        .await
        .unwrap();
        let (_, decided) = app
            .call(
                Method::GET,
                &format!("/v1/changes/{id}"),
                READER,
                None,
                None,
            )
            .await;
        assert_eq!(decided["decision"]["outcome"], "approved");
        let who: Vec<&str> = decided["decision"]["decided_by"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["by"].as_str().unwrap())
            .collect();
        assert_eq!(who.len(), 3);
        assert!(who.contains(&"max") && who.contains(&"ann") && who.contains(&"ben"));
        // Implementation, review, closure.
        let path = |action: &str| format!("/v1/changes/{id}/{action}");
        assert_eq!(
            app.call(Method::POST, &path("start"), REQUESTER, None, None)
                .await
                .0,
            StatusCode::OK
        );
        let (status, failed) = app
            .call(
                Method::POST,
                &path("complete"),
                REQUESTER,
                Some(json!({"succeeded": false, "notes": "replication lag; backed out"})),
                None,
            )
            .await;
        assert_eq!(
            (status, failed["state"].clone()),
            (StatusCode::OK, json!("failed"))
        );
        let (status, reviewed) = app.call(Method::POST, &path("review"), REQUESTER, Some(json!({"successful": false, "incidents_caused": ["INC0001001"], "lessons": "test replication first"})), None).await;
        assert_eq!(
            (status, reviewed["state"].clone()),
            (StatusCode::OK, json!("reviewed")),
            "{reviewed}"
        );
        assert_eq!(
            reviewed["review"]["post_implementation"]["incidents_caused"],
            json!(["INC0001001"])
        );
        let (status, closed) = app
            .call(Method::POST, &path("close"), REQUESTER, None, None)
            .await;
        assert_eq!(
            (status, closed["state"].clone()),
            (StatusCode::OK, json!("closed"))
        );
    }
);

on_both_backends!(a_rejected_change_is_recorded_with_its_veto, |app| {
    use meridian_proto::workflow::v1::{Command, CommandReply, InstanceCompleted};
    let (_, change) = app
        .call(
            Method::POST,
            "/v1/changes",
            REQUESTER,
            Some(normal_change()),
            None,
        )
        .await;
    let id = change["id"].as_str().unwrap().to_owned();
    app.call(
        Method::POST,
        &format!("/v1/changes/{id}/submit"),
        REQUESTER,
        None,
        None,
    )
    .await;
    let done = InstanceCompleted {
        instance_id: "wf-2".to_owned(),
        definition: "change-advisory-board".to_owned(),
        business_key: id.clone(),
        outcome: "rejected".to_owned(),
        variables_json: json!({"cab": {"decisions": [{"by": "cat", "outcome": "rejected"}]}})
            .to_string(),
    };
    crate::events::apply(
        &app.service,
        envelope("workflow.instance.completed", done.encode_to_vec(), None),
    )
    .await
    .unwrap();
    let (_, rejected) = app
        .call(
            Method::GET,
            &format!("/v1/changes/{id}"),
            READER,
            None,
            None,
        )
        .await;
    assert_eq!(rejected["state"], "rejected");
    assert_eq!(rejected["decision"]["decided_by"][0]["by"], "cat");
    assert_eq!(rejected["allowed_actions"], json!([]));
    // A schedule command for a rejected change is answered with a failure.
    let command = Command {
        correlation_id: "wf-2:3:1".to_owned(),
        command: "control.change.schedule".to_owned(),
        instance_id: "wf-2".to_owned(),
        business_key: id.clone(),
        input_json: json!({"change_id": id}).to_string(),
        attempt: 1,
    };
    crate::events::apply(
        &app.service,
        envelope(
            "control.change.schedule",
            command.encode_to_vec(),
            Some("wf-2:3:1"),
        ),
    )
    .await
    .unwrap();
    let reply = app
        .outbox()
        .await
        .into_iter()
        .find(|e| e.event_type == "control.change.scheduled")
        .unwrap();
    let reply = CommandReply::decode(reply.payload.as_slice()).unwrap();
    assert!(!reply.ok && reply.error.contains("rejected"), "{reply:?}");
});

on_both_backends!(bad_changes_are_refused_naming_the_field, |app| {
    let cases = [
        (
            json!({"title": "", "reason": "r", "category": "normal"}),
            "title",
        ),
        (
            json!({"title": "t", "reason": "r", "category": "standard"}),
            "template",
        ),
        (
            json!({"title": "t", "reason": "r", "category": "normal", "template": "x"}),
            "template",
        ),
        (
            json!({"title": "t", "reason": "r", "category": "urgent"}),
            "category",
        ),
        (
            json!({"title": "t", "reason": "r", "category": "normal", "window_start": "2026-12-05T03:00:00Z", "window_end": "2026-12-05T01:00:00Z"}),
            "window_end",
        ),
        (
            json!({"title": "t", "reason": "r", "category": "normal", "configuration_items": ["ghost"]}),
            "configuration_items[0]",
        ),
    ];
    for (body, field) in cases {
        let (status, problem) = app
            .call(
                Method::POST,
                "/v1/changes",
                REQUESTER,
                Some(body.clone()),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        let named = problem["invalid-params"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == field);
        assert!(named, "{field} in {problem}");
    }
    let (status, problem) = app
        .call(
            Method::POST,
            "/v1/changes",
            ("x", &["requester"]),
            Some(normal_change()),
            None,
        )
        .await;
    assert_eq!(
        (status, problem["code"].clone()),
        (StatusCode::FORBIDDEN, json!("forbidden"))
    );
    let (status, problem) = app
        .call(Method::GET, "/v1/changes/nope", READER, None, None)
        .await;
    assert_eq!(
        (status, problem["code"].clone()),
        (StatusCode::NOT_FOUND, json!("change_not_found"))
    );
});

fn windowed(start: &str, end: &str, cis: &[&str], category: &str) -> Value {
    json!({
        "title": "Patch", "reason": "security", "category": category,
        "window_start": start, "window_end": end, "configuration_items": cis,
    })
}

on_both_backends!(submitting_scores_the_risk_factor_by_factor, |app| {
    let db = app.ci(json!({"ci_type": "database", "name": "pay-db", "owner": "o", "criticality": "high", "attributes": {"engine": "postgresql"}})).await;
    let payroll = app.ci(json!({"ci_type": "service", "name": "Payroll", "owner": "o", "criticality": "critical"})).await;
    app.relate(&payroll, "depends_on", &db).await;
    // Wednesday 10:00–12:00 UTC: inside business hours.
    let (_, change) = app
        .call(
            Method::POST,
            "/v1/changes",
            REQUESTER,
            Some(windowed(
                "2026-12-02T10:00:00Z",
                "2026-12-02T12:00:00Z",
                &[&db],
                "normal",
            )),
            None,
        )
        .await;
    let id = change["id"].as_str().unwrap();
    let (status, submitted) = app
        .call(
            Method::POST,
            &format!("/v1/changes/{id}/submit"),
            REQUESTER,
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{submitted}");
    let risk = &submitted["risk"];
    let points: Vec<u64> = risk["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["points"].as_u64().unwrap())
        .collect();
    // high CI (6), one CI affected (2), one service (2), no failures (0), business hours (4).
    assert_eq!(points, [6, 2, 2, 0, 4], "{risk}");
    assert_eq!(
        (risk["score"].clone(), risk["level"].clone()),
        (json!(14), json!("medium"))
    );
    // At night, with a failed change on the same CI before: no business hours, one failure.
    let (_, failed) = app
        .call(
            Method::POST,
            "/v1/changes",
            REQUESTER,
            Some(windowed(
                "2026-11-01T01:00:00Z",
                "2026-11-01T02:00:00Z",
                &[&db],
                "emergency",
            )),
            None,
        )
        .await;
    let failed_id = failed["id"].as_str().unwrap().to_owned();
    app.call(
        Method::POST,
        &format!("/v1/changes/{failed_id}/submit"),
        REQUESTER,
        None,
        None,
    )
    .await;
    app.db
        .db
        .transaction(move |conn| -> Result<(), DbError> {
            use crate::store::schema::changes;
            use diesel::prelude::*;
            diesel::update(changes::table.find(&failed_id))
                .set(changes::state.eq("failed"))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    let (_, night) = app
        .call(
            Method::POST,
            "/v1/changes",
            REQUESTER,
            Some(windowed(
                "2026-12-05T01:00:00Z",
                "2026-12-05T02:00:00Z",
                &[&db],
                "normal",
            )),
            None,
        )
        .await;
    let (_, night) = app
        .call(
            Method::POST,
            &format!("/v1/changes/{}/submit", night["id"].as_str().unwrap()),
            REQUESTER,
            None,
            None,
        )
        .await;
    let points: Vec<u64> = night["risk"]["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["points"].as_u64().unwrap())
        .collect();
    assert_eq!(points, [6, 2, 2, 4, 0], "{}", night["risk"]);
});

on_both_backends!(
    freeze_windows_refuse_changes_unless_emergency_or_justified,
    |app| {
        let frozen = windowed(
            "2026-12-24T01:00:00Z",
            "2026-12-24T02:00:00Z",
            &[],
            "normal",
        );
        let (_, change) = app
            .call(
                Method::POST,
                "/v1/changes",
                REQUESTER,
                Some(frozen.clone()),
                None,
            )
            .await;
        let id = change["id"].as_str().unwrap();
        let path = format!("/v1/changes/{id}/submit");
        let (status, problem) = app.call(Method::POST, &path, REQUESTER, None, None).await;
        assert_eq!(
            (status, problem["code"].clone()),
            (StatusCode::CONFLICT, json!("change_in_freeze_window")),
            "{problem}"
        );
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("year-end close")
        );
        let (status, problem) = app
            .call(
                Method::POST,
                &path,
                REQUESTER,
                Some(json!({"freeze_override": ""})),
                None,
            )
            .await;
        assert_eq!(
            (status, problem["invalid-params"][0]["name"].clone()),
            (StatusCode::BAD_REQUEST, json!("freeze_override"))
        );
        let (status, submitted) = app
            .call(
                Method::POST,
                &path,
                REQUESTER,
                Some(json!({"freeze_override": "regulator deadline"})),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{submitted}");
        assert_eq!(
            submitted["decision"]["freeze_override"]["justification"],
            "regulator deadline"
        );
        let mut emergency = frozen;
        emergency["category"] = json!("emergency");
        let (_, change) = app
            .call(
                Method::POST,
                "/v1/changes",
                REQUESTER,
                Some(emergency),
                None,
            )
            .await;
        let (status, _) = app
            .call(
                Method::POST,
                &format!("/v1/changes/{}/submit", change["id"].as_str().unwrap()),
                REQUESTER,
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
);

on_both_backends!(
    overlapping_changes_on_related_cis_are_conflicts_on_the_calendar,
    |app| {
        let db = app.ci(json!({"ci_type": "database", "name": "pay-db", "owner": "o", "attributes": {"engine": "postgresql"}})).await;
        let application = app
            .ci(json!({"ci_type": "application", "name": "pay-app", "owner": "o"}))
            .await;
        let elsewhere = app
            .ci(json!({"ci_type": "application", "name": "wiki", "owner": "o"}))
            .await;
        app.relate(&application, "depends_on", &db).await;
        let create = |start: &str, end: &str, ci: &str| windowed(start, end, &[ci], "normal");
        let (_, a) = app
            .call(
                Method::POST,
                "/v1/changes",
                REQUESTER,
                Some(create("2026-12-05T01:00:00Z", "2026-12-05T03:00:00Z", &db)),
                None,
            )
            .await;
        let (_, b) = app
            .call(
                Method::POST,
                "/v1/changes",
                REQUESTER,
                Some(create("2026-12-05T02:00:00Z", "2026-12-05T04:00:00Z", &db)),
                None,
            )
            .await;
        let (_, c) = app
            .call(
                Method::POST,
                "/v1/changes",
                REQUESTER,
                Some(create(
                    "2026-12-05T02:30:00Z",
                    "2026-12-05T05:00:00Z",
                    &application,
                )),
                None,
            )
            .await;
        let (_, d) = app
            .call(
                Method::POST,
                "/v1/changes",
                REQUESTER,
                Some(create(
                    "2026-12-05T01:00:00Z",
                    "2026-12-05T05:00:00Z",
                    &elsewhere,
                )),
                None,
            )
            .await;
        let (_, later) = app
            .call(
                Method::POST,
                "/v1/changes",
                REQUESTER,
                Some(create("2026-12-06T01:00:00Z", "2026-12-06T02:00:00Z", &db)),
                None,
            )
            .await;
        let (_, view) = app
            .call(
                Method::GET,
                &format!("/v1/changes/{}", a["id"].as_str().unwrap()),
                READER,
                None,
                None,
            )
            .await;
        let conflicts: Vec<(Value, String)> = view["conflicts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["change"].clone(),
                    c["reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(conflicts.len(), 2, "{conflicts:?}");
        assert!(
            conflicts
                .iter()
                .any(|(id, why)| *id == b["id"] && why.starts_with("both change"))
        );
        assert!(
            conflicts
                .iter()
                .any(|(id, why)| *id == c["id"] && why.contains("impact path"))
        );
        assert!(
            !conflicts
                .iter()
                .any(|(id, _)| *id == d["id"] || *id == later["id"])
        );
        let (status, calendar) = app
            .call(
                Method::GET,
                "/v1/changes/calendar?from=2026-12-05T00:00:00Z&to=2027-01-01T00:00:00Z",
                READER,
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{calendar}");
        assert_eq!(calendar["changes"].as_array().unwrap().len(), 5);
        assert_eq!(calendar["freeze_windows"][0]["name"], "year-end close");
        assert_eq!(
            calendar["changes"][0]["conflicts"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let (status, _) = app
            .call(
                Method::GET,
                "/v1/changes/calendar?from=2026-12-05T00:00:00Z&to=2026-12-04T00:00:00Z",
                READER,
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
);

on_both_backends!(
    a_release_deploys_only_approved_changes_and_takes_a_baseline,
    |app| {
        use meridian_proto::control::v1::DeploymentRecorded;
        use meridian_proto::workflow::v1::Command;
        let db = app.ci(json!({"ci_type": "database", "name": "pay-db", "owner": "olaf", "attributes": {"engine": "postgresql", "version": "16"}})).await;
        let (_, change) = app
            .call(
                Method::POST,
                "/v1/changes",
                REQUESTER,
                Some(windowed(
                    "2026-12-05T01:00:00Z",
                    "2026-12-05T02:00:00Z",
                    &[&db],
                    "normal",
                )),
                None,
            )
            .await;
        let change_id = change["id"].as_str().unwrap().to_owned();
        let (status, release) = app
        .call(Method::POST, "/v1/releases", REQUESTER, Some(json!({"name": "Payroll", "version": "17.1", "changes": [change_id], "acceptance_criteria": "payroll runs end to end"})), None)
        .await;
        assert_eq!(status, StatusCode::CREATED, "{release}");
        let release_id = release["id"].as_str().unwrap().to_owned();
        let deploy = format!("/v1/releases/{release_id}/deployments");
        let (status, problem) = app
            .call(
                Method::POST,
                &deploy,
                REQUESTER,
                Some(json!({"environment": "production", "outcome": "succeeded", "notes": ""})),
                None,
            )
            .await;
        assert_eq!(
            (status, problem["code"].clone()),
            (StatusCode::CONFLICT, json!("release_not_approved")),
            "{problem}"
        );
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains(change["number"].as_str().unwrap())
        );
        // Approved by its workflow.
        app.call(
            Method::POST,
            &format!("/v1/changes/{change_id}/submit"),
            REQUESTER,
            None,
            None,
        )
        .await;
        let command = Command {
            correlation_id: "wf:1:1".to_owned(),
            command: "control.change.schedule".to_owned(),
            instance_id: "wf".to_owned(),
            business_key: change_id.clone(),
            input_json: json!({"change_id": change_id}).to_string(),
            attempt: 1,
        };
        crate::events::apply(
            &app.service,
            envelope(
                "control.change.schedule",
                command.encode_to_vec(),
                Some("wf:1:1"),
            ),
        )
        .await
        .unwrap();
        let (status, _) = app
            .call(
                Method::POST,
                &format!("/v1/releases/{release_id}/test-results"),
                REQUESTER,
                Some(json!({"passed": true, "summary": "all green"})),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, deployment) = app.call(Method::POST, &deploy, REQUESTER, Some(json!({"environment": "production", "outcome": "failed", "notes": "migration timed out"})), None).await;
        assert_eq!(status, StatusCode::CREATED, "{deployment}");
        // The failure is announced for the resolution service.
        let failed = app
            .outbox()
            .await
            .into_iter()
            .find(|e| e.event_type == "control.deployment.failed")
            .unwrap();
        let failed = DeploymentRecorded::decode(failed.payload.as_slice()).unwrap();
        assert_eq!(
            (failed.environment.as_str(), failed.outcome.as_str()),
            ("production", "failed")
        );
        assert_eq!(failed.configuration_items, std::slice::from_ref(&db));
        // The baseline holds the CI as it was; a later edit shows as a difference.
        let baseline = deployment["baseline_id"].as_str().unwrap().to_owned();
        app.call(
            Method::PATCH,
            &format!("/v1/cis/{db}"),
            CMDB,
            Some(json!({"attributes": {"engine": "postgresql", "version": "17"}})),
            None,
        )
        .await;
        let (status, view) = app
            .call(
                Method::GET,
                &format!("/v1/baselines/{baseline}"),
                READER,
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{view}");
        assert_eq!(view["cis"][0]["id"], db.as_str());
        assert_eq!(view["differences"][0]["ci"], db.as_str());
        assert!(
            view["differences"][0]["changed"]["attributes"]["then"]
                .as_str()
                .unwrap()
                .contains("\"16\"")
        );
        let (_, release) = app
            .call(
                Method::GET,
                &format!("/v1/releases/{release_id}"),
                READER,
                None,
                None,
            )
            .await;
        assert_eq!(release["deployments"].as_array().unwrap().len(), 1);
        let at = release["deployments"][0]["deployed_at"]
            .as_str()
            .unwrap_or_default();
        assert!(
            chrono::DateTime::parse_from_rfc3339(at).is_ok(),
            "deployed_at {at:?} is not RFC 3339"
        );
        assert_eq!(release["test_results"]["passed"], true);
        assert_eq!(release["changes"][0]["approved"], true);
        let (status, problem) = app.call(Method::POST, "/v1/releases", REQUESTER, Some(json!({"name": "x", "version": "1", "changes": ["ghost"], "acceptance_criteria": "a"})), None).await;
        assert_eq!(
            (status, problem["invalid-params"][0]["name"].clone()),
            (StatusCode::BAD_REQUEST, json!("changes[0]"))
        );
    }
);

on_both_backends!(trends_count_changes_by_state_category_ci_and_month, |app| {
    let db = app.ci(json!({"ci_type": "database", "name": "pay-db", "owner": "o", "attributes": {"engine": "postgresql"}})).await;
    let mut ids = Vec::new();
    for category in ["normal", "normal", "emergency"] {
        let (_, change) = app
            .call(
                Method::POST,
                "/v1/changes",
                REQUESTER,
                Some(windowed(
                    "2026-12-05T01:00:00Z",
                    "2026-12-05T02:00:00Z",
                    &[&db],
                    category,
                )),
                None,
            )
            .await;
        ids.push(change["id"].as_str().unwrap().to_owned());
    }
    let failed = ids[0].clone();
    app.db
        .db
        .transaction(move |conn| -> Result<(), DbError> {
            use crate::store::schema::changes;
            use diesel::prelude::*;
            diesel::update(changes::table.find(&failed))
                .set(changes::state.eq("failed"))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    let now = meridian_chassis::Clock::now(&meridian_chassis::SystemClock);
    let from = (now - chrono::Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let to = (now + chrono::Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (status, trends) = app
        .call(
            Method::GET,
            &format!("/v1/changes/trends?from={from}&to={to}"),
            READER,
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{trends}");
    assert_eq!(trends["total"], 3);
    let count = |list: &str, key: &str| {
        trends[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"] == key)
            .map(|c| {
                (
                    c["changes"].as_u64().unwrap(),
                    c["failed"].as_u64().unwrap(),
                )
            })
    };
    assert_eq!(count("by_state", "failed"), Some((1, 1)));
    assert_eq!(count("by_state", "draft"), Some((2, 0)));
    assert_eq!(count("by_category", "normal"), Some((2, 1)));
    assert_eq!(count("by_category", "emergency"), Some((1, 0)));
    assert_eq!(count("by_ci", &db), Some((3, 1)));
    assert_eq!(trends["by_month"].as_array().unwrap().len(), 1);
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/v1/changes/trends?from={to}&to={from}"),
            READER,
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
});

#[actix_web::test]
async fn impact_analysis_on_a_generated_graph_matches_an_independent_walk() {
    use std::collections::{BTreeSet, HashMap, VecDeque};
    let app = TestApp::new(Backend::Postgres).await;
    // 300 CIs in three layers; each CI depends on two of the next layer (a deterministic spread).
    let n = 300_usize;
    let edges: Vec<(usize, usize)> = (0..200)
        .flat_map(|i| {
            let base = if i < 100 { 100 } else { 200 };
            [(i, base + (i * 7) % 100), (i, base + (i * 13 + 5) % 100)]
        })
        .collect();
    let ids: Vec<String> = (0..n).map(|i| format!("g-{i:03}")).collect();
    let rows = ids.clone();
    let pairs = edges.clone();
    app.db
        .db
        .transaction(move |conn| -> Result<(), DbError> {
            use crate::store::schema::{ci_relations, cis};
            use diesel::prelude::*;
            let now = meridian_chassis::Clock::now(&meridian_chassis::SystemClock).naive_utc();
            for id in &rows {
                diesel::insert_into(cis::table)
                    .values((
                        cis::id.eq(id),
                        cis::ci_type.eq("application"),
                        cis::name.eq(id),
                        cis::owner.eq("o"),
                        cis::status.eq("in_service"),
                        cis::environment.eq("production"),
                        cis::criticality.eq("low"),
                        cis::attributes.eq("{}"),
                        cis::created_at.eq(now),
                        cis::updated_at.eq(now),
                        cis::version.eq(1_i64),
                    ))
                    .execute(conn)?;
            }
            for (k, (from, to)) in pairs.iter().enumerate() {
                diesel::insert_into(ci_relations::table)
                    .values((
                        ci_relations::id.eq(format!("r-{k}")),
                        ci_relations::source.eq(&rows[*from]),
                        ci_relations::kind.eq("depends_on"),
                        ci_relations::target.eq(&rows[*to]),
                        ci_relations::created_by.eq("t"),
                        ci_relations::created_at.eq(now),
                    ))
                    .execute(conn)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    // The expected answer: a plain breadth-first walk over the edge list.
    let walk = |start: usize, up: bool, depth: usize| -> HashMap<usize, usize> {
        let mut seen = HashMap::from([(start, 0)]);
        let mut queue = VecDeque::from([start]);
        while let Some(at) = queue.pop_front() {
            let d = seen[&at];
            if d == depth {
                continue;
            }
            for &(from, to) in &edges {
                let next = if up && to == at {
                    from
                } else if !up && from == at {
                    to
                } else {
                    continue;
                };
                if let std::collections::hash_map::Entry::Vacant(slot) = seen.entry(next) {
                    slot.insert(d + 1);
                    queue.push_back(next);
                }
            }
        }
        seen.remove(&start);
        seen
    };
    for (start, up, depth) in [
        (250, true, 2),
        (205, true, 1),
        (3, false, 2),
        (150, false, 1),
        (299, true, 5),
    ] {
        let direction = if up { "up" } else { "down" };
        let path = format!(
            "/v1/cis/{}/impact?direction={direction}&depth={depth}",
            ids[start]
        );
        let (status, impact) = app.call(Method::GET, &path, READER, None, None).await;
        assert_eq!(status, StatusCode::OK, "{impact}");
        let got: BTreeSet<(String, u64)> = impact["affected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["id"].as_str().unwrap().to_owned(),
                    a["depth"].as_u64().unwrap(),
                )
            })
            .collect();
        let expected: BTreeSet<(String, u64)> = walk(start, up, depth)
            .into_iter()
            .map(|(i, d)| (ids[i].clone(), d as u64))
            .collect();
        assert_eq!(got, expected, "{path}");
        // Every path starts at the CI, ends at the affected one, and is as long as its depth.
        for a in impact["affected"].as_array().unwrap() {
            let steps = a["path"].as_array().unwrap();
            assert_eq!(steps.first().unwrap()["id"], ids[start].as_str());
            assert_eq!(steps.last().unwrap()["id"], a["id"]);
            assert_eq!(steps.len() as u64, a["depth"].as_u64().unwrap() + 1);
        }
    }
}

on_both_backends!(a_baseline_taken_on_demand_shows_what_changed_since, |app| {
    let host = app.ci(server("host-1")).await;
    let untouched = app.ci(server("host-2")).await;
    let (status, baseline) = app
        .call(
            Method::POST,
            "/v1/baselines",
            CMDB,
            Some(json!({"name": "before patching", "configuration_items": [host, untouched]})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{baseline}");
    assert_eq!(baseline["cis"].as_array().unwrap().len(), 2);
    app.call(
        Method::PATCH,
        &format!("/v1/cis/{host}"),
        CMDB,
        Some(json!({"owner": "ines", "criticality": "critical"})),
        None,
    )
    .await;
    let id = baseline["id"].as_str().unwrap();
    let (_, view) = app
        .call(
            Method::GET,
            &format!("/v1/baselines/{id}"),
            READER,
            None,
            None,
        )
        .await;
    let differences = view["differences"].as_array().unwrap();
    assert_eq!(differences.len(), 1, "{view}");
    assert_eq!(
        differences[0]["changed"]["owner"],
        json!({"then": "olaf", "now": "ines"})
    );
    assert_eq!(
        differences[0]["changed"]["criticality"],
        json!({"then": "high", "now": "critical"})
    );
    let (status, problem) = app
        .call(
            Method::POST,
            "/v1/baselines",
            CMDB,
            Some(json!({"name": "x", "configuration_items": ["ghost"]})),
            None,
        )
        .await;
    assert_eq!(
        (status, problem["invalid-params"][0]["name"].clone()),
        (StatusCode::BAD_REQUEST, json!("configuration_items[0]"))
    );
    let (status, problem) = app
        .call(Method::GET, "/v1/baselines/nope", READER, None, None)
        .await;
    assert_eq!(
        (status, problem["code"].clone()),
        (StatusCode::NOT_FOUND, json!("baseline_not_found"))
    );
});

on_both_backends!(
    a_change_under_design_and_transition_needs_its_acceptance_before_implementation,
    |app| {
        use meridian_proto::workflow::v1::Command;
        let payroll = app.ci(json!({"ci_type": "service", "name": "Payroll", "owner": "o", "criticality": "critical"})).await;
        let mut body = windowed(
            "2026-12-05T01:00:00Z",
            "2026-12-05T02:00:00Z",
            &[&payroll],
            "normal",
        );
        body["new_service"] = json!(true);
        let (_, change) = app
            .call(Method::POST, "/v1/changes", REQUESTER, Some(body), None)
            .await;
        assert_eq!(
            change["design"],
            json!({"required": true, "reasons": ["it brings a new service"]})
        );
        let id = change["id"].as_str().unwrap().to_owned();
        let (_, submitted) = app
            .call(
                Method::POST,
                &format!("/v1/changes/{id}/submit"),
                REQUESTER,
                None,
                None,
            )
            .await;
        assert_eq!(
            submitted["design"]["reasons"],
            json!(["it brings a new service", "it touches a critical service"])
        );
        let command = Command {
            correlation_id: "wf:1:1".to_owned(),
            command: "control.change.schedule".to_owned(),
            instance_id: "wf".to_owned(),
            business_key: id.clone(),
            input_json: json!({"change_id": id}).to_string(),
            attempt: 1,
        };
        crate::events::apply(
            &app.service,
            envelope(
                "control.change.schedule",
                command.encode_to_vec(),
                Some("wf:1:1"),
            ),
        )
        .await
        .unwrap();
        let path = |action: &str| format!("/v1/changes/{id}/{action}");
        let (status, problem) = app
            .call(Method::POST, &path("start"), REQUESTER, None, None)
            .await;
        assert_eq!(
            (status, problem["code"].clone()),
            (StatusCode::CONFLICT, json!("design_not_accepted"))
        );
        let (status, problem) = app
            .call(
                Method::POST,
                &path("acceptance"),
                REQUESTER,
                Some(json!({"accepted": true, "notes": "ok"})),
                None,
            )
            .await;
        assert_eq!(
            (status, problem["code"].clone()),
            (StatusCode::CONFLICT, json!("design_not_accepted"))
        );
        let (status, problem) = app
            .call(
                Method::PUT,
                &path("design"),
                REQUESTER,
                Some(json!({"plan": "", "acceptance_criteria": "x"})),
                None,
            )
            .await;
        assert_eq!(
            (status, problem["invalid-params"][0]["name"].clone()),
            (StatusCode::BAD_REQUEST, json!("plan"))
        );
        let (status, designed) = app.call(Method::PUT, &path("design"), REQUESTER, Some(json!({"plan": "pilot with finance, then all", "acceptance_criteria": "pilot payroll run matches"})), None).await;
        assert_eq!(status, StatusCode::OK, "{designed}");
        let (status, rejected) = app
            .call(
                Method::POST,
                &path("acceptance"),
                REQUESTER,
                Some(json!({"accepted": false, "notes": "pilot run differs"})),
                None,
            )
            .await;
        assert_eq!(
            (status, rejected["design"]["acceptance"]["accepted"].clone()),
            (StatusCode::OK, json!(false))
        );
        assert_eq!(
            app.call(Method::POST, &path("start"), REQUESTER, None, None)
                .await
                .0,
            StatusCode::CONFLICT
        );
        app.call(
            Method::POST,
            &path("acceptance"),
            REQUESTER,
            Some(json!({"accepted": true, "notes": "second pilot matches"})),
            None,
        )
        .await;
        let (status, started) = app
            .call(Method::POST, &path("start"), REQUESTER, None, None)
            .await;
        assert_eq!(
            (status, started["state"].clone()),
            (StatusCode::OK, json!("implementing")),
            "{started}"
        );
    }
);

impl TestApp {
    /// Sends a raw body of `content_type`; returns the status and the body's text.
    async fn send_raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> (StatusCode, String) {
        let app = self.service().await;
        let token = self
            .auth
            .mint_dev(
                CMDB.0,
                &["configuration-manager".to_owned()],
                meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
                chrono::Duration::minutes(10),
            )
            .unwrap();
        let req = atest::TestRequest::default()
            .method(method)
            .uri(path)
            .insert_header(("Authorization", format!("Bearer {token}")))
            .insert_header(("Content-Type", content_type.to_owned()))
            .set_payload(body.to_owned())
            .to_request();
        let response = app.call(req).await.unwrap();
        let status = response.status();
        let bytes = atest::read_body(response).await;
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn count(&self) -> usize {
        let (_, page) = self
            .call(Method::GET, "/v1/cis?limit=500", READER, None, None)
            .await;
        page["items"].as_array().unwrap().len()
    }
}

on_both_backends!(bulk_import_is_all_or_nothing_and_export_reads_back, |app| {
    let good = json!([
        {"ci_type": "database", "name": "db-a", "owner": "o", "attributes": {"engine": "mysql"}},
        {"ci_type": "server", "name": "srv-a", "owner": "o", "criticality": "high", "attributes": {"hostname": "srv-a"}},
    ]);
    let (status, body) = app
        .send_raw(
            Method::POST,
            "/v1/cis/import",
            "application/json",
            &good.to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["imported"], 2);
    // One good row and two bad ones: nothing is recorded, each bad field is named.
    let bad = json!([
        {"ci_type": "server", "name": "srv-b", "owner": "o", "attributes": {"hostname": "srv-b"}},
        {"ci_type": "database", "name": "db-b", "owner": "o", "attributes": {"engine": "dbase"}},
        {"ci_type": "toaster", "name": "t", "owner": "o"},
    ]);
    let (status, body) = app
        .send_raw(
            Method::POST,
            "/v1/cis/import",
            "application/json",
            &bad.to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let problem: Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = problem["invalid-params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["rows[1].attributes.engine", "rows[2].ci_type"]);
    assert_eq!(app.count().await, 2);
    // CSV in, with a row that cannot be read.
    let csv = "ci_type,name,owner,criticality,attributes\nnetwork,lan-1,o,low,\"{\"\"cidr\"\": \"\"10.0.0.0/8\"\"}\"\nserver,srv-c,o,high,not json\n";
    let (status, body) = app
        .send_raw(Method::POST, "/v1/cis/import", "text/csv", csv)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("rows[1].attributes"), "{body}");
    assert_eq!(app.count().await, 2);
    let csv = "ci_type,name,owner,criticality,attributes\nnetwork,lan-1,o,low,\"{\"\"cidr\"\": \"\"10.0.0.0/8\"\"}\"\n";
    let (status, body) = app
        .send_raw(Method::POST, "/v1/cis/import", "text/csv", csv)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Export as CSV, and import it again: the same CIs once more.
    let (status, exported) = app
        .send_raw(Method::GET, "/v1/cis/export?format=csv", "text/plain", "")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        exported.starts_with("ci_type,name,owner,status,environment,criticality,attributes\n"),
        "{exported}"
    );
    assert_eq!(exported.lines().count(), 4);
    let (status, body) = app
        .send_raw(Method::POST, "/v1/cis/import", "text/csv", &exported)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(app.count().await, 6);
    let (status, json_export) = app
        .send_raw(Method::GET, "/v1/cis/export?type=network", "text/plain", "")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&json_export)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (status, _) = app
        .send_raw(Method::POST, "/v1/cis/import", "application/xml", "<cis/>")
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
});

on_both_backends!(
    a_configuration_audit_lists_discrepancies_until_each_is_resolved,
    |app| {
        let host = app.ci(server("host-1")).await;
        let db = app.ci(json!({"ci_type": "database", "name": "db-1", "owner": "o", "attributes": {"engine": "mysql"}})).await;
        let (_, baseline) = app
            .call(
                Method::POST,
                "/v1/baselines",
                CMDB,
                Some(json!({"name": "agreed", "configuration_items": [host, db]})),
                None,
            )
            .await;
        let baseline = baseline["id"].as_str().unwrap().to_owned();
        // Nothing changed: the audit closes at once.
        let (status, clean) = app
            .call(
                Method::POST,
                "/v1/config-audits",
                CMDB,
                Some(json!({"name": "clean", "baseline_id": baseline})),
                None,
            )
            .await;
        assert_eq!(
            (status, clean["status"].clone()),
            (StatusCode::CREATED, json!("closed")),
            "{clean}"
        );
        app.call(
            Method::PATCH,
            &format!("/v1/cis/{host}"),
            CMDB,
            Some(json!({"owner": "ines"})),
            None,
        )
        .await;
        app.call(
            Method::PATCH,
            &format!("/v1/cis/{db}"),
            CMDB,
            Some(json!({"status": "retired"})),
            None,
        )
        .await;
        let (_, audit) = app
            .call(
                Method::POST,
                "/v1/config-audits",
                CMDB,
                Some(json!({"name": "Q4", "baseline_id": baseline})),
                None,
            )
            .await;
        assert_eq!(audit["status"], "open");
        assert_eq!(audit["discrepancies"].as_array().unwrap().len(), 2);
        let id = audit["id"].as_str().unwrap().to_owned();
        let resolve =
            |index: usize| format!("/v1/config-audits/{id}/discrepancies/{index}/resolve");
        let (status, partly) = app
            .call(
                Method::POST,
                &resolve(0),
                CMDB,
                Some(json!({"resolution": "accepted", "notes": "owner changed by CHG0001001"})),
                None,
            )
            .await;
        assert_eq!(
            (status, partly["status"].clone()),
            (StatusCode::OK, json!("open")),
            "{partly}"
        );
        let (_, done) = app
            .call(
                Method::POST,
                &resolve(1),
                CMDB,
                Some(json!({"resolution": "corrected", "notes": "retired in error; restored"})),
                None,
            )
            .await;
        assert_eq!(done["status"], "closed");
        assert_eq!(
            done["discrepancies"][1]["resolution"]["resolution"],
            "corrected"
        );
        assert_eq!(done["discrepancies"][1]["resolution"]["by"], "cora");
        let (status, problem) = app
            .call(
                Method::POST,
                &resolve(7),
                CMDB,
                Some(json!({"resolution": "accepted", "notes": "x"})),
                None,
            )
            .await;
        assert_eq!(
            (status, problem["code"].clone()),
            (StatusCode::NOT_FOUND, json!("config_audit_not_found"))
        );
        let (status, problem) = app
            .call(
                Method::POST,
                "/v1/config-audits",
                CMDB,
                Some(json!({"name": "x", "baseline_id": "ghost"})),
                None,
            )
            .await;
        assert_eq!(
            (status, problem["invalid-params"][0]["name"].clone()),
            (StatusCode::BAD_REQUEST, json!("baseline_id"))
        );
        let (status, fetched) = app
            .call(
                Method::GET,
                &format!("/v1/config-audits/{id}"),
                READER,
                None,
                None,
            )
            .await;
        assert_eq!(
            (status, fetched["status"].clone()),
            (StatusCode::OK, json!("closed"))
        );
    }
);

on_both_backends!(licences_and_contracts_show_their_use_and_expiry, |app| {
    let a = app.ci(server("a")).await;
    let b = app.ci(server("b")).await;
    let c = app.ci(server("c")).await;
    let (status, licence) = app
        .call(Method::POST, "/v1/assets", CMDB, Some(json!({"kind": "licence", "name": "DB Enterprise", "vendor": "Acme", "quantity": 2, "expires_on": "2020-01-31", "configuration_items": [a, b, c]})), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{licence}");
    assert_eq!(
        (
            licence["used"].clone(),
            licence["over_used"].clone(),
            licence["expired"].clone()
        ),
        (json!(3), json!(true), json!(true))
    );
    let (_, contract) = app
        .call(Method::POST, "/v1/assets", CMDB, Some(json!({"kind": "contract", "name": "Support", "vendor": "Acme", "quantity": 10, "expires_on": "2999-12-31", "configuration_items": [a]})), None)
        .await;
    assert_eq!(
        (contract["over_used"].clone(), contract["expired"].clone()),
        (json!(false), json!(false))
    );
    let (_, due) = app
        .call(
            Method::GET,
            "/v1/assets?expiring_by=2030-01-01",
            READER,
            None,
            None,
        )
        .await;
    assert_eq!(due.as_array().unwrap().len(), 1);
    let (_, covering) = app
        .call(
            Method::GET,
            &format!("/v1/assets?ci={b}"),
            READER,
            None,
            None,
        )
        .await;
    assert_eq!(covering[0]["name"], "DB Enterprise");
    let (_, contracts) = app
        .call(Method::GET, "/v1/assets?kind=contract", READER, None, None)
        .await;
    assert_eq!(contracts.as_array().unwrap().len(), 1);
    let (status, problem) = app
        .call(
            Method::POST,
            "/v1/assets",
            CMDB,
            Some(json!({"kind": "licence", "name": "x", "vendor": "y", "quantity": 0})),
            None,
        )
        .await;
    assert_eq!(
        (status, problem["invalid-params"][0]["name"].clone()),
        (StatusCode::BAD_REQUEST, json!("quantity"))
    );
    let (status, problem) = app.call(Method::POST, "/v1/assets", CMDB, Some(json!({"kind": "licence", "name": "x", "vendor": "y", "quantity": 1, "configuration_items": ["ghost"]})), None).await;
    assert_eq!(
        (status, problem["invalid-params"][0]["name"].clone()),
        (StatusCode::BAD_REQUEST, json!("configuration_items[0]"))
    );
});

on_both_backends!(
    a_standard_change_comes_from_the_catalogue_of_templates,
    |app| {
        let (_, templates) = app
            .call(Method::GET, "/v1/change-templates", READER, None, None)
            .await;
        assert!(
            templates["restart-workload"]["description"].is_string(),
            "{templates}"
        );
        let (status, change) = app
        .call(Method::POST, "/v1/changes", REQUESTER, Some(json!({"title": "Restart payroll", "reason": "memory leak", "category": "standard", "template": "restart-workload"})), None)
        .await;
        assert_eq!(status, StatusCode::CREATED, "{change}");
        assert_eq!(
            change["implementation_plan"],
            "kubectl rollout restart, then watch the rollout"
        );
        let (status, problem) = app
        .call(Method::POST, "/v1/changes", REQUESTER, Some(json!({"title": "t", "reason": "r", "category": "standard", "template": "format-disk"})), None)
        .await;
        assert_eq!(
            (status, problem["invalid-params"][0]["name"].clone()),
            (StatusCode::BAD_REQUEST, json!("template"))
        );
    }
);

/// The change gate on AdmissionReview fixtures (testdata/admission): the answer and the record.
mod change_gate {
    use super::*;
    use actix_web::body::MessageBody as _;

    fn fixture(name: &str, change: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/api/testdata/admission")
            .join(name);
        std::fs::read_to_string(path)
            .unwrap()
            .replace("__CHANGE__", change)
            .into_bytes()
    }

    /// The control service with the gate configured: break-glass group `sre-oncall`, and a
    /// freeze window around now when `frozen`.
    fn gate(app: &TestApp, frozen: bool) -> web::Data<Control> {
        let mut control = app.service.clone();
        control.config.change_gate.break_glass_groups = vec!["sre-oncall".to_owned()];
        let now = meridian_chassis::Clock::now(&meridian_chassis::SystemClock);
        control.config.freeze_windows = if frozen {
            vec![crate::config::FreezeWindow {
                name: "peak season".to_owned(),
                start: now - chrono::Duration::hours(1),
                end: now + chrono::Duration::hours(1),
            }]
        } else {
            Vec::new()
        };
        web::Data::new(control)
    }

    async fn review(control: &web::Data<Control>, body: Vec<u8>) -> (StatusCode, Value) {
        let result = crate::api::gate::admission(web::Bytes::from(body), control.clone()).await;
        let response = match result {
            Ok(response) => response,
            Err(problem) => actix_web::ResponseError::error_response(&problem),
        };
        let status = response.status();
        let bytes = response.into_body().try_into_bytes().unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    /// A change in `state` whose window is open now, covering `cis`; its number.
    async fn open_change(app: &TestApp, state: &str, cis: &[String]) -> (String, String) {
        let now = meridian_chassis::Clock::now(&meridian_chassis::SystemClock);
        let mut body = normal_change();
        body["window_start"] = json!((now - chrono::Duration::hours(1)).to_rfc3339());
        body["window_end"] = json!((now + chrono::Duration::hours(2)).to_rfc3339());
        body["configuration_items"] = json!(cis);
        let (status, change) = app
            .call(Method::POST, "/v1/changes", REQUESTER, Some(body), None)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{change}");
        let id = change["id"].as_str().unwrap().to_owned();
        let state = state.to_owned();
        let target = id.clone();
        app.db
            .db
            .run(move |conn| -> Result<usize, DbError> {
                use crate::store::schema::changes;
                use diesel::prelude::*;
                Ok(diesel::update(changes::table.find(target))
                    .set(changes::state.eq(state))
                    .execute(conn)?)
            })
            .await
            .unwrap();
        (id, change["number"].as_str().unwrap().to_owned())
    }

    async fn decisions(app: &TestApp, query: &str) -> Vec<Value> {
        let (status, page) = app
            .call(
                Method::GET,
                &format!("/v1/change-gate/decisions{query}"),
                ("cora", &["change-manager"]),
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["items"].as_array().unwrap().clone()
    }

    on_both_backends!(
        an_approved_change_with_an_open_window_lets_its_workload_through_and_is_recorded_as_deployed,
        |app| {
            let control = gate(&app, false);
            let (id, number) = open_change(&app, "scheduled", &[]).await;
            let (status, answer) = review(&control, fixture("annotated-update.json", &number)).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            assert_eq!(answer["kind"], "AdmissionReview");
            assert_eq!(answer["response"]["uid"], "7d2a5a4e-0001-4b8e-9b0e-000000000001");
            assert_eq!(answer["response"]["allowed"], true, "{answer}");
            // Asked again with the same uid: the same answer, recorded once.
            let (_, again) = review(&control, fixture("annotated-update.json", &number)).await;
            assert_eq!(again["response"]["allowed"], true);
            let recorded = decisions(&app, "?allowed=true").await;
            assert_eq!(recorded.len(), 1, "{recorded:?}");
            assert_eq!(recorded[0]["change_id"], id.as_str());
            assert_eq!((recorded[0]["namespace"].as_str(), recorded[0]["name"].as_str()), (Some("payments"), Some("api")));
            let deployed: Vec<_> = app.outbox().await.into_iter().filter(|e| e.event_type == "control.change.deployed").collect();
            assert_eq!(deployed.len(), 1);
            let event = meridian_proto::control::v1::ChangeDeployed::decode(deployed[0].payload.as_slice()).unwrap();
            assert_eq!((event.number.as_str(), event.operation.as_str(), event.username.as_str()), (number.as_str(), "UPDATE", "ci-bot"));
            // The change's record holds the deployment: its decisions, and its audit trail.
            let under = decisions(&app, &format!("?change={id}")).await;
            assert_eq!(under.len(), 1);
            let change_id = id.clone();
            let trail = app
                .db
                .db
                .run(move |conn| meridian_chassis::audit::list_for(conn, "change", &change_id).map_err(DbError::from))
                .await
                .unwrap();
            assert!(trail.iter().any(|a| a.action == "change.deployed" && a.actor == "ci-bot"), "{trail:?}");
            // A dry run is judged and recorded, but deploys nothing.
            let (_, dry) = review(&control, fixture("annotated-dry-run.json", &number)).await;
            assert_eq!(dry["response"]["allowed"], true);
            let deployed = app.outbox().await.into_iter().filter(|e| e.event_type == "control.change.deployed").count();
            assert_eq!(deployed, 1);
        }
    );

    on_both_backends!(
        without_a_covering_change_or_with_an_unapproved_one_the_gate_refuses_and_says_why,
        |app| {
            let control = gate(&app, false);
            let (status, answer) = review(&control, fixture("unannotated-update.json", "")).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(answer["response"]["allowed"], false);
            assert_eq!(answer["response"]["status"]["code"], 403);
            assert!(
                answer["response"]["status"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("annotate the workload"),
                "{answer}"
            );
            let (_, unknown) = review(&control, fixture("unknown-change-create.json", "")).await;
            assert!(
                unknown["response"]["status"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("CHG9999999 does not exist")
            );
            let (_, number) = open_change(&app, "assessed", &[]).await;
            let mut body: Value =
                serde_json::from_slice(&fixture("annotated-update.json", &number)).unwrap();
            body["request"]["uid"] = json!("another-uid");
            let (_, pending) = review(&control, serde_json::to_vec(&body).unwrap()).await;
            assert!(
                pending["response"]["status"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("is assessed, not approved"),
                "{pending}"
            );
            // The workload's CI (as discovery names it) listed on an approved change covers it.
            let ci = app.ci(json!({"ci_type": "kubernetes_workload", "name": "payments/api", "owner": "payments-team", "attributes": {"cluster": "prod", "namespace": "payments", "kind": "Deployment"}})).await;
            open_change(&app, "approved", std::slice::from_ref(&ci)).await;
            body["request"]["uid"] = json!("third-uid");
            body["request"]["object"]["metadata"]["annotations"] = json!({});
            let (_, covered) = review(&control, serde_json::to_vec(&body).unwrap()).await;
            assert_eq!(covered["response"]["allowed"], true, "{covered}");
            assert_eq!(decisions(&app, "?allowed=false").await.len(), 3);
            // Not a workload: let through, recorded.
            let (_, other) = review(&control, fixture("configmap-update.json", "")).await;
            assert_eq!(other["response"]["allowed"], true);
            let deployed = app
                .outbox()
                .await
                .into_iter()
                .filter(|e| e.event_type == "control.change.deployed")
                .count();
            assert_eq!(deployed, 1, "only the covered update is a deployment");
        }
    );

    on_both_backends!(
        a_freeze_refuses_even_an_approved_change_and_break_glass_passes_with_a_record,
        |app| {
            let control = gate(&app, true);
            let (_, number) = open_change(&app, "scheduled", &[]).await;
            let (_, frozen) = review(&control, fixture("annotated-update.json", &number)).await;
            assert_eq!(frozen["response"]["allowed"], false);
            assert!(
                frozen["response"]["status"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("peak season"),
                "{frozen}"
            );
            let (_, glass) = review(&control, fixture("break-glass-delete.json", "")).await;
            assert_eq!(glass["response"]["allowed"], true, "{glass}");
            assert!(
                glass["response"]["warnings"][0]
                    .as_str()
                    .unwrap()
                    .contains("break-glass")
            );
            let passes: Vec<_> = app
                .outbox()
                .await
                .into_iter()
                .filter(|e| e.event_type == "control.gate.break_glass")
                .collect();
            assert_eq!(passes.len(), 1);
            let recorded = decisions(&app, "?namespace=payments").await;
            assert!(recorded.iter().any(|d| d["break_glass"] == true
                && d["username"] == "oncall@example.com"
                && d["operation"] == "DELETE"));
        }
    );

    on_both_backends!(a_malformed_review_is_a_clear_error_never_an_allow, |app| {
        let control = gate(&app, false);
        for (file, field) in [
            ("malformed-api-version.json", "apiVersion"),
            ("malformed-no-request.json", "request"),
            ("malformed-no-uid.json", "request.uid"),
            ("malformed-no-object.json", "request.object"),
            ("malformed-operation.json", "request.operation"),
            ("malformed-not-json.json", "request"),
        ] {
            let (status, problem) = review(&control, fixture(file, "")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{file}: {problem}");
            assert!(
                problem.get("response").is_none(),
                "{file}: never an AdmissionReview answer"
            );
            let names: Vec<&str> = problem["invalid-params"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|p| p["name"].as_str())
                .collect();
            assert!(
                names.iter().any(|n| n.starts_with(field)),
                "{file}: {problem}"
            );
        }
        assert!(decisions(&app, "").await.is_empty());
        let (status, _) = app
            .call(Method::GET, "/v1/change-gate/decisions", READER, None, None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    });

    /// A self-signed certificate for `localhost` and its key, as PEM files in a temporary folder.
    fn self_signed(
        dir: &std::path::Path,
    ) -> (std::path::PathBuf, std::path::PathBuf, openssl::x509::X509) {
        use openssl::asn1::Asn1Time;
        use openssl::ec::{EcGroup, EcKey};
        use openssl::hash::MessageDigest;
        use openssl::nid::Nid;
        use openssl::pkey::PKey;
        use openssl::x509::extension::SubjectAlternativeName;
        use openssl::x509::{X509Builder, X509NameBuilder};
        let key = PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
        )
        .unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "localhost").unwrap();
        let name = name.build();
        let mut cert = X509Builder::new().unwrap();
        cert.set_version(2).unwrap();
        cert.set_subject_name(&name).unwrap();
        cert.set_issuer_name(&name).unwrap();
        cert.set_pubkey(&key).unwrap();
        cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        cert.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        let san = SubjectAlternativeName::new()
            .dns("localhost")
            .build(&cert.x509v3_context(None, None))
            .unwrap();
        cert.append_extension(san).unwrap();
        cert.sign(&key, MessageDigest::sha256()).unwrap();
        let cert = cert.build();
        let (cert_file, key_file) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&cert_file, cert.to_pem().unwrap()).unwrap();
        std::fs::write(&key_file, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        (cert_file, key_file, cert)
    }

    #[actix_web::test]
    async fn the_gate_answers_the_api_server_over_tls_on_its_own_listener() {
        let app = TestApp::new(Backend::Sqlite).await;
        let dir = std::env::temp_dir().join(format!("meridian-gate-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert_file, key_file, cert) = self_signed(&dir);
        let mut control = app.service.clone();
        control.config.change_gate.enabled = true;
        control.config.change_gate.bind = "127.0.0.1:0".to_owned();
        control.config.change_gate.tls_cert_file = cert_file.display().to_string();
        control.config.change_gate.tls_key_file = key_file.display().to_string();
        let (address, server) = crate::api::gate::server(control).unwrap();
        let handle = server.handle();
        tokio::spawn(server);
        let body = fixture("unannotated-update.json", "");
        let answer = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            use openssl::ssl::{SslConnector, SslMethod};
            let mut connector = SslConnector::builder(SslMethod::tls_client()).unwrap();
            connector.cert_store_mut().add_cert(cert).unwrap();
            let tcp = std::net::TcpStream::connect(address).unwrap();
            let mut tls = connector.build().connect("localhost", tcp).unwrap();
            write!(
                tls,
                "POST /v1/admission/change-gate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            )
            .unwrap();
            tls.write_all(&body).unwrap();
            let mut response = String::new();
            let _ = tls.read_to_string(&mut response);
            response
        })
        .await
        .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("\"allowed\":false"), "{answer}");
        // The API listener does not serve admission reviews.
        let (status, _) = app
            .call(
                Method::POST,
                "/v1/admission/change-gate",
                READER,
                Some(json!({})),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        handle.stop(false).await;
        let _ = std::fs::remove_dir_all(dir);
    }
}

on_both_backends!(
    a_problems_fix_becomes_a_draft_change_raised_once_with_its_origin,
    |app| {
        use meridian_proto::control::v1::ChangeRaised;
        use meridian_proto::resolution::v1::ProblemChangeRequested;
        let db = app
            .ci(json!({"ci_type": "database", "name": "mail-db", "owner": "olaf", "attributes": {"engine": "postgresql"}}))
            .await;
        let fix = ProblemChangeRequested {
            problem_id: "p-1".to_owned(),
            problem_number: "PRB0001000".to_owned(),
            title: "Drain the mail queue before certificate rotation".to_owned(),
            reason: "Root cause: the rotation restarts the queue runner".to_owned(),
            configuration_items: vec![db.clone(), "printer-7".to_owned()],
            implementation_plan: "Add a drain step to the rotation job".to_owned(),
            requested_by: "pat".to_owned(),
        };
        let message = envelope(crate::events::PROBLEM_FIX, fix.encode_to_vec(), None);
        for _ in 0..2 {
            crate::events::apply(&app.service, message.clone())
                .await
                .unwrap();
        }
        let raised: Vec<ChangeRaised> = app
            .outbox()
            .await
            .into_iter()
            .filter(|e| e.event_type == crate::events::RAISED)
            .map(|e| ChangeRaised::decode(e.payload.as_slice()).unwrap())
            .collect();
        assert_eq!(raised.len(), 1, "once, however often the request comes");
        assert_eq!(raised[0].origin, "problem:PRB0001000");
        let (status, change) = app
            .call(
                Method::GET,
                &format!("/v1/changes/{}", raised[0].change_id),
                READER,
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{change}");
        assert_eq!(
            (
                change["state"].as_str(),
                change["category"].as_str(),
                change["requester"].as_str(),
                change["origin"].as_str(),
                change["number"].as_str()
            ),
            (
                Some("draft"),
                Some("normal"),
                Some("pat"),
                Some("problem:PRB0001000"),
                Some(raised[0].number.as_str())
            )
        );
        assert_eq!(change["configuration_items"], json!([db]));
        let reason = change["reason"].as_str().unwrap();
        assert!(
            reason.contains("PRB0001000") && reason.contains("printer-7"),
            "{reason}"
        );
        // A request naming no problem is refused as malformed.
        let bad = envelope(
            crate::events::PROBLEM_FIX,
            ProblemChangeRequested::default().encode_to_vec(),
            None,
        );
        assert!(matches!(
            crate::events::apply(&app.service, bad).await,
            Err(meridian_chassis::bus::HandleError::Malformed(_))
        ));
    }
);
