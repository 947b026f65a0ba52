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
    let root: Root =
        meridian_chassis::config::load_from(&[crate::config::DEFAULTS], None, vec![]).unwrap();
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
        body
    }

    async fn events(&self) -> Vec<ConfigurationItemChanged> {
        self.db
            .db
            .run(|conn| meridian_chassis::outbox::pending(conn, 1000).map_err(DbError::from))
            .await
            .unwrap()
            .into_iter()
            .map(|(_, e)| {
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
