//! A supplier review end to end over the real RabbitMQ: the relationship service's scheduler
//! finds the contract's review due and assembles the scorecard from its measurements; the
//! supplier-review workflow starts from `relationship.supplier.review_due`; the service owner
//! rates, the supplier manager reviews, the contract owner sends it back once and then signs
//! off, follow-up actions are agreed; the workflow's completion comes back to relationship as
//! the review's record, with its follow-up actions open until closed.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServiceResponse;
use actix_web::http::{Method, StatusCode};
use actix_web::{App, test as atest, web};
use meridian_chassis::auth::Authenticator;
use meridian_chassis::bus::Bus;
use meridian_chassis::clock::ManualClock;
use meridian_chassis::outbox::Waker;
use meridian_chassis::testing::{Backend, TestDb, amqp_url, dev_auth_config, test_bus_config};
use meridian_chassis::{Clock, SystemClock};
use serde_json::{Value, json};

use crate::support::{declare, eventually, rabbit, relay};

struct Desk {
    _dbs: (TestDb, TestDb),
    auth: Authenticator,
    relationship: meridian_relationship::Relationship,
    workflow: meridian_workflow::Workflow,
    /// Relationship's clock: reviews fall due when it is moved.
    clock: ManualClock,
}

impl Desk {
    async fn start(bus: &Bus, prefix: &str) -> Self {
        if let Bus::Rabbit(rabbit) = bus {
            let due = ["relationship.supplier.review_due"];
            declare(rabbit, &amqp_url(), &format!("{prefix}workflow"), &due).await;
            let bindings = meridian_relationship::events::BINDINGS;
            declare(
                rabbit,
                &amqp_url(),
                &format!("{prefix}relationship"),
                &bindings,
            )
            .await;
        }
        let relationship_db =
            TestDb::new(Backend::Postgres, meridian_relationship::store::MIGRATIONS).await;
        let workflow_db =
            TestDb::new(Backend::Postgres, meridian_workflow::store::MIGRATIONS).await;
        #[derive(serde::Deserialize)]
        struct Root {
            relationship: meridian_relationship::RelationshipConfig,
            workflow: meridian_workflow::WorkflowConfig,
        }
        let root: Root = meridian_chassis::config::load_from(
            &[
                meridian_relationship::config::DEFAULTS,
                meridian_workflow::config::DEFAULTS,
                "relationship:\n  surveys:\n    link_secret: \"scenario-secret-scenario-secret-0123\"\n",
            ],
            None,
            vec![],
        )
        .unwrap();
        let (relationship_waker, workflow_waker) = (Waker::default(), Waker::default());
        relay("relationship", &relationship_db, bus, &relationship_waker);
        relay("workflow", &workflow_db, bus, &workflow_waker);
        let clock = ManualClock::at(SystemClock.now());
        let relationship = meridian_relationship::Relationship::new(
            relationship_db.db.clone(),
            Arc::new(clock.clone()),
            root.relationship,
            relationship_waker,
        )
        .unwrap();
        relationship.start_consumers(bus, prefix);
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
            _dbs: (relationship_db, workflow_db),
            auth: Authenticator::new(&dev_auth_config()).unwrap(),
            relationship,
            workflow,
            clock,
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
                .configure(meridian_relationship::configure(self.relationship.clone()))
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

    /// Waits for an open task at `node` of review `key` that `who` may work.
    async fn task(&self, key: &str, node: &str, who: (&str, &[&str])) -> Value {
        let get = |path: String| async move { self.call(Method::GET, &path, who, None).await };
        crate::support::wait_for_task(get, key, node, who.0).await
    }

    async fn complete(&self, task: &Value, who: (&str, &[&str]), body: Value) {
        let path = format!("/v1/tasks/{}/complete", task["id"].as_str().unwrap());
        let (status, body) = self.call(Method::POST, &path, who, Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

const SAM: (&str, &[&str]) = ("sam", &["supplier-manager"]);
const OLIVIA: (&str, &[&str]) = ("olivia", &["service-owner"]);
const OLGA: (&str, &[&str]) = ("olga", &["agent"]);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supplier_review_runs_from_its_due_date_to_its_signed_record() {
    let (config, mut names) = test_bus_config(&amqp_url());
    for queue in ["relationship", "workflow"] {
        names.queue(&format!("{}{queue}", config.queue_prefix));
    }
    let (bus, _) = rabbit(&config);
    let desk = Desk::start(&bus, &config.queue_prefix).await;

    // A supplier under contract with two targets, measured this month.
    let (status, body) = desk
        .call(
            Method::POST,
            "/v1/suppliers",
            SAM,
            Some(json!({"id": "cloudco", "name": "CloudCo", "kind": "external", "manager": "sam"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let today = desk.clock.now().date_naive();
    let (status, contract) = desk
        .call(Method::POST, "/v1/contracts", SAM, Some(json!({"supplier": "cloudco", "kind": "contract", "title": "Mail hosting", "scope": "Hosted mailboxes",
            "targets": [{"metric": "availability", "target": 99.9, "unit": "%", "comparison": "at_least"}, {"metric": "response_hours", "target": 4, "comparison": "at_most"}],
            "starts_on": today.to_string(), "owner": "olga", "review_interval_days": 30})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{contract}");
    let id = contract["id"].as_str().unwrap().to_owned();
    for (metric, value) in [("availability", 99.95), ("response_hours", 6.5)] {
        let (status, body) = desk
            .call(Method::POST, &format!("/v1/contracts/{id}/measurements"), SAM,
                Some(json!({"metric": metric, "value": value, "period_from": today.to_string(), "period_to": (today + chrono::Duration::days(20)).to_string()})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    // The review falls due: the scheduler starts it (as the system, so nobody is excluded).
    desk.clock.advance(chrono::Duration::days(31));
    let tick = meridian_relationship::scheduler::tick(&desk.relationship)
        .await
        .unwrap();
    assert_eq!(tick.reviews, 1);
    let (_, reviews) = desk
        .call(
            Method::GET,
            "/v1/supplier-reviews?state=in_progress",
            OLGA,
            None,
        )
        .await;
    let review = reviews[0]["id"].as_str().unwrap().to_owned();

    // The service owner sees the scorecard on the task and rates the supplier.
    let scorecard = desk.task(&review, "scorecard", OLIVIA).await;
    let (_, detail) = desk
        .call(
            Method::GET,
            &format!("/v1/tasks/{}", scorecard["id"].as_str().unwrap()),
            OLIVIA,
            None,
        )
        .await;
    let lines = detail["summary"]["scorecard"]
        .as_array()
        .unwrap_or_else(|| panic!("{detail}"));
    assert_eq!(
        (lines[0]["metric"].as_str(), lines[0]["met"].as_i64()),
        (Some("availability"), Some(1))
    );
    assert_eq!(lines[1]["met"].as_i64().unwrap_or(0), 0, "{detail}");
    desk.complete(&scorecard, OLIVIA, json!({"outcome": "submitted", "fields": {"quality": 4, "delivery": 4, "responsiveness": 2, "notes": "Slow on tickets"}})).await;

    // The supplier manager finds it wanting; the contract owner sends it back once, then signs.
    let assess = desk.task(&review, "review", SAM).await;
    desk.complete(&assess, SAM, json!({"outcome": "needs_improvement", "fields": {"assessment": "Responses took 6.5 h against 4 h."}})).await;
    let sign = desk.task(&review, "sign_off", OLGA).await;
    desk.complete(
        &sign,
        OLGA,
        json!({"outcome": "returned", "comment": "Say which tickets"}),
    )
    .await;
    let assess = desk.task(&review, "review", SAM).await;
    desk.complete(&assess, SAM, json!({"outcome": "needs_improvement", "fields": {"assessment": "Responses took 6.5 h against 4 h (tickets 41, 57, 63)."}})).await;
    let sign = desk.task(&review, "sign_off", OLGA).await;
    desk.complete(&sign, OLGA, json!({"outcome": "signed_off"}))
        .await;
    let follow = desk.task(&review, "follow_up", SAM).await;
    desk.complete(&follow, SAM, json!({"outcome": "agreed", "fields": {"actions": "Weekly response report\nNamed escalation contact", "due_date": "2027-01-31"}})).await;

    // Relationship keeps the record: ratings, assessment, sign-off, outcome, follow-up actions.
    let record = eventually(Duration::from_secs(20), || async {
        let (_, record) = desk
            .call(
                Method::GET,
                &format!("/v1/supplier-reviews/{review}"),
                OLGA,
                None,
            )
            .await;
        (record["state"] == "completed").then_some(record)
    })
    .await
    .expect("the review's completion reaches relationship");
    assert_eq!(record["outcome"], "improvement_planned", "{record}");
    assert_eq!(record["signed_off_by"], "olga");
    assert_eq!(
        record["assessment"],
        "Responses took 6.5 h against 4 h (tickets 41, 57, 63)."
    );
    assert_eq!(
        (
            record["ratings"]["responsiveness"].as_i64(),
            record["ratings"]["by"].as_str()
        ),
        (Some(2), Some("olivia"))
    );
    assert!(record["instance_id"].is_string(), "{record}");
    let actions = record["follow_up_actions"].as_array().unwrap();
    assert_eq!(actions.len(), 2);
    assert!(
        actions
            .iter()
            .all(|a| a["state"] == "open" && a["owner"] == "sam" && a["due_on"] == "2027-01-31")
    );
    let (_, open) = desk
        .call(
            Method::GET,
            "/v1/follow-up-actions?owner=me&state=open",
            SAM,
            None,
        )
        .await;
    assert_eq!(open.as_array().unwrap().len(), 2);
}
