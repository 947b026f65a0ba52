//! A controlled document approved end to end over the real RabbitMQ: governance publishes the
//! submitted version, the document-approval workflow has both reviewers accept and the approver
//! approve, its service task asks governance to issue the version and waits for the reply; every
//! event of both services lands in the audit ledger, which verifies intact.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServiceResponse;
use actix_web::http::{Method, StatusCode};
use actix_web::{App, test as atest, web};
use meridian_chassis::SystemClock;
use meridian_chassis::auth::Authenticator;
use meridian_chassis::bus::Bus;
use meridian_chassis::outbox::Waker;
use meridian_chassis::testing::{Backend, TestDb, amqp_url, dev_auth_config, test_bus_config};
use serde_json::{Value, json};

use crate::support::{declare, eventually, rabbit, relay};

struct Office {
    _dbs: (TestDb, TestDb),
    auth: Authenticator,
    governance: meridian_governance::Governance,
    workflow: meridian_workflow::Workflow,
}

impl Office {
    async fn start(bus: &Bus, prefix: &str) -> Self {
        if let Bus::Rabbit(rabbit) = bus {
            let keys = [
                "governance.document.submitted",
                "governance.document.issued",
            ];
            declare(rabbit, &amqp_url(), &format!("{prefix}workflow"), &keys).await;
            declare(rabbit, &amqp_url(), &format!("{prefix}governance"), &["#"]).await;
        }
        let governance_db =
            TestDb::new(Backend::Postgres, meridian_governance::store::MIGRATIONS).await;
        let workflow_db =
            TestDb::new(Backend::Postgres, meridian_workflow::store::MIGRATIONS).await;
        #[derive(serde::Deserialize)]
        struct Root {
            governance: meridian_governance::GovernanceConfig,
            workflow: meridian_workflow::WorkflowConfig,
        }
        let root: Root = meridian_chassis::config::load_from(
            &[
                meridian_governance::config::DEFAULTS,
                meridian_workflow::config::DEFAULTS,
                "governance:\n  ledger:\n    signing_key: \"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\"\n",
            ],
            None,
            vec![],
        )
        .unwrap();
        let (governance_waker, workflow_waker) = (Waker::default(), Waker::default());
        relay("governance", &governance_db, bus, &governance_waker);
        relay("workflow", &workflow_db, bus, &workflow_waker);
        let governance = meridian_governance::Governance::new(
            governance_db.db.clone(),
            Arc::new(SystemClock),
            root.governance,
            governance_waker,
        )
        .unwrap();
        governance.start_consumers(bus, prefix);
        let workflow = crate::support::workflow(
            bus,
            prefix,
            &workflow_db,
            root.workflow,
            Arc::new(SystemClock),
            workflow_waker,
        )
        .await;
        Self {
            _dbs: (governance_db, workflow_db),
            auth: Authenticator::new(&dev_auth_config()).unwrap(),
            governance,
            workflow,
        }
    }

    async fn app(
        &self,
    ) -> impl actix_web::dev::Service<
        actix_http::Request,
        Response = ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
    > {
        atest::init_service(
            App::new()
                .app_data(web::Data::new(self.auth.clone()))
                .configure(meridian_governance::configure(self.governance.clone()))
                .configure(meridian_workflow::configure(self.workflow.clone())),
        )
        .await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        who: (&str, &[&str]),
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let app = self.app().await;
        crate::support::call(&app, &self.auth, who, method, path, body).await
    }

    async fn decide(&self, key: &str, node: &str, who: (&str, &[&str]), body: Value) {
        let get = |path: String| async move { self.call(Method::GET, &path, who, None).await };
        let task = crate::support::wait_for_task(get, key, node, who.0).await;
        let path = format!("/v1/tasks/{}/complete", task["id"].as_str().unwrap());
        let (status, body) = self.call(Method::POST, &path, who, Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

const DORA: (&str, &[&str]) = ("dora", &["document-controller"]);
const REX: (&str, &[&str]) = ("rex", &["agent"]);
const SUE: (&str, &[&str]) = ("sue", &["agent"]);
const TOM: (&str, &[&str]) = ("tom", &["top-management"]);
const IAN: (&str, &[&str]) = ("ian", &["auditor"]);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_is_reviewed_approved_and_issued_and_the_ledger_holds_it_all() {
    let (config, mut names) = test_bus_config(&amqp_url());
    for queue in ["governance", "workflow"] {
        names.queue(&format!("{}{queue}", config.queue_prefix));
    }
    let (bus, _) = rabbit(&config);
    let office = Office::start(&bus, &config.queue_prefix).await;

    let (status, doc) = office
        .call(Method::POST, "/v1/documents", DORA, Some(json!({"reference": "POL-007", "title": "Information security policy",
            "kind": "policy", "clauses": ["8.7.3"], "owner": "tom", "body": "We protect the information of our services…"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{doc}");
    let (status, version) = office
        .call(
            Method::POST,
            "/v1/documents/POL-007/versions/1/submit",
            DORA,
            Some(json!({"reviewers": ["rex", "sue"], "approver": "tom"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{version}");
    let key = version["id"].as_str().unwrap().to_owned();

    office
        .decide(
            &key,
            "review",
            REX,
            json!({"outcome": "accepted", "fields": {"remarks": "Clear"}}),
        )
        .await;
    office
        .decide(&key, "review", SUE, json!({"outcome": "accepted"}))
        .await;
    office
        .decide(&key, "approve", TOM, json!({"outcome": "approved"}))
        .await;

    let issued = eventually(Duration::from_secs(20), || async {
        let (_, doc) = office
            .call(Method::GET, "/v1/documents/POL-007", DORA, None)
            .await;
        (doc["status"] == "approved").then_some(doc)
    })
    .await
    .expect("the workflow's service task issues the approved version");
    assert_eq!(issued["current_version"], 1);
    assert_eq!(issued["versions"][0]["status"], "approved");

    // The ledger holds both services' events, in one signed chain.
    let ledger = eventually(Duration::from_secs(20), || async {
        let (_, page) = office
            .call(Method::GET, "/v1/ledger?limit=1000", IAN, None)
            .await;
        let types: Vec<String> = page["items"]
            .as_array()?
            .iter()
            .map(|e| e["event_type"].as_str().unwrap_or("").to_owned())
            .collect();
        let done = types.iter().any(|t| t == "workflow.instance.completed");
        done.then_some(types)
    })
    .await
    .expect("the workflow's completion reaches the ledger");
    for expected in [
        "governance.document.submitted",
        "workflow.instance.started",
        "workflow.task.completed",
        "governance.document.issue",
        "governance.document.issued",
    ] {
        assert!(
            ledger.iter().any(|t| t == expected),
            "{expected} in {ledger:?}"
        );
    }
    let (_, verdict) = office
        .call(Method::GET, "/v1/ledger/verify", IAN, None)
        .await;
    assert_eq!(verdict["first_bad_seq"], Value::Null, "{verdict}");
    assert!(verdict["entries"].as_i64().unwrap() >= 8, "{verdict}");
}
