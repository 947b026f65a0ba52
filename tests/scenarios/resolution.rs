//! The resolution and workflow services over the real RabbitMQ.
//!
//! - The major incident procedure: an incident declared major over HTTP starts
//!   `major-incident.yaml` from `resolution.incident.major_declared`; top management
//!   acknowledges; the manager's status updates come back every 30 minutes (the workflow's clock
//!   is moved by hand) until the final one; the incident resolved over HTTP reaches the workflow
//!   as `resolution.incident.resolved`; the manager's review completes the procedure.
//! - Service request fulfilment: a request for an item naming `request-fulfilment.yaml` starts
//!   it; the approval and the fulfilment are its tasks, and each step reaches the request as a
//!   `resolution.request.transition` command answered by `resolution.request.transitioned`.
//! - A problem's fix: control raises a draft change for it, and the problem shows the change.

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
    _dbs: (TestDb, TestDb, TestDb),
    auth: Authenticator,
    resolution: meridian_resolution::Resolution,
    workflow: meridian_workflow::Workflow,
    control: meridian_control::Control,
    /// The workflow's clock: timers fire when it is moved.
    clock: ManualClock,
}

impl Desk {
    async fn start(bus: &Bus, prefix: &str) -> Self {
        if let Bus::Rabbit(rabbit) = bus {
            let keys = [
                "resolution.incident.major_declared",
                "resolution.incident.resolved",
                "resolution.incident.cancelled",
                "resolution.request.submitted",
                "resolution.request.transitioned",
            ];
            declare(rabbit, &amqp_url(), &format!("{prefix}workflow"), &keys).await;
            let commands = [meridian_resolution::events::commands::TRANSITION];
            let queue = format!("{prefix}resolution.commands");
            declare(rabbit, &amqp_url(), &queue, &commands).await;
            let raised = ["control.change.raised", "workflow.instance.completed"];
            declare(rabbit, &amqp_url(), &format!("{prefix}resolution"), &raised).await;
            let fixes = ["resolution.problem.change_requested"];
            declare(rabbit, &amqp_url(), &format!("{prefix}control"), &fixes).await;
        }
        let resolution_db =
            TestDb::new(Backend::Postgres, meridian_resolution::store::MIGRATIONS).await;
        let workflow_db =
            TestDb::new(Backend::Postgres, meridian_workflow::store::MIGRATIONS).await;
        let control_db = TestDb::new(Backend::Postgres, meridian_control::store::MIGRATIONS).await;
        #[derive(serde::Deserialize)]
        struct Root {
            resolution: meridian_resolution::ResolutionConfig,
            workflow: meridian_workflow::WorkflowConfig,
            control: meridian_control::ControlConfig,
        }
        let root: Root = meridian_chassis::config::load_from(
            &[
                meridian_resolution::config::DEFAULTS,
                meridian_workflow::config::DEFAULTS,
                meridian_control::config::DEFAULTS,
                "workflow:\n  timer_poll_ms: 100\n",
            ],
            None,
            vec![],
        )
        .unwrap();
        let (resolution_waker, workflow_waker) = (Waker::default(), Waker::default());
        relay("resolution", &resolution_db, bus, &resolution_waker);
        relay("workflow", &workflow_db, bus, &workflow_waker);
        let control_waker = Waker::default();
        relay("control", &control_db, bus, &control_waker);
        let control = meridian_control::Control {
            db: control_db.db.clone(),
            clock: Arc::new(SystemClock),
            config: root.control,
            waker: control_waker,
        };
        control.start_consumers(bus, prefix);
        let resolution = meridian_resolution::Resolution::new(
            resolution_db.db.clone(),
            Arc::new(SystemClock),
            root.resolution,
            resolution_waker,
        );
        resolution.start_consumers(bus, prefix);
        let clock = ManualClock::at(SystemClock.now());
        let workflow = crate::support::workflow(
            bus,
            prefix,
            &workflow_db,
            root.workflow,
            Arc::new(clock.clone()),
            workflow_waker,
        )
        .await;
        tokio::spawn(meridian_workflow::scheduler::run(workflow.clone()));
        Self {
            _dbs: (resolution_db, workflow_db, control_db),
            auth: Authenticator::new(&dev_auth_config()).unwrap(),
            resolution,
            workflow,
            control,
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
                .configure(meridian_resolution::configure(self.resolution.clone()))
                .configure(meridian_workflow::configure(self.workflow.clone()))
                .configure(meridian_control::configure(self.control.clone())),
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

    /// The open tasks at `node` of the procedure of incident `id` that `who` may work.
    async fn open(&self, id: &str, node: &str, who: (&str, &[&str])) -> Vec<Value> {
        let get = |path: String| async move { self.call(Method::GET, &path, who, None).await };
        crate::support::open_tasks(get, id, node).await
    }

    /// Waits for an open task at `node` for `who`.
    async fn task(&self, id: &str, node: &str, who: (&str, &[&str])) -> Value {
        let get = |path: String| async move { self.call(Method::GET, &path, who, None).await };
        crate::support::wait_for_task(get, id, node, who.0).await
    }

    async fn complete(&self, task: &Value, who: (&str, &[&str]), body: Value) {
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/v1/tasks/{}/complete", task["id"].as_str().unwrap()),
                who,
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

fn setup() -> (
    meridian_chassis::config::BusConfig,
    meridian_chassis::testing::RabbitNames,
) {
    let (config, mut names) = test_bus_config(&amqp_url());
    for queue in ["resolution", "resolution.commands", "workflow", "control"] {
        names.queue(&format!("{}{queue}", config.queue_prefix));
    }
    (config, names)
}

const AGENT: (&str, &[&str]) = ("ada", &["agent"]);
const IMOGEN: (&str, &[&str]) = ("imogen", &["incident-manager"]);
const MONA: (&str, &[&str]) = ("mona", &["agent"]);
const TESS: (&str, &[&str]) = ("tess", &["top-management"]);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_major_incident_runs_its_procedure_from_declaration_to_review() {
    let (config, _names) = setup();
    let (bus, _) = rabbit(&config);
    let desk = Desk::start(&bus, &config.queue_prefix).await;
    let (status, incident) = desk
        .call(
            Method::POST,
            "/v1/incidents",
            AGENT,
            Some(json!({"title": "Mail down for everyone", "impact": "high", "urgency": "high", "assignment_group": "messaging"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{incident}");
    let id = incident["id"].as_str().unwrap().to_owned();
    let (status, body) = desk
        .call(
            Method::POST,
            &format!("/v1/incidents/{id}/major"),
            IMOGEN,
            Some(json!({"manager": "mona", "reason": "no mail in or out"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Top management is told, and acknowledges; the manager may not do it for them.
    let notice = desk.task(&id, "inform_management", TESS).await;
    let (_, detail) = desk
        .call(
            Method::GET,
            &format!("/v1/tasks/{}", notice["id"].as_str().unwrap()),
            TESS,
            None,
        )
        .await;
    assert_eq!(
        detail["summary"]["title"], "Mail down for everyone",
        "{detail}"
    );
    assert!(desk.open(&id, "inform_management", MONA).await.is_empty());
    desk.complete(&notice, TESS, json!({"outcome": "acknowledged"}))
        .await;

    // The first status update at once; the next only after the interval.
    let update = desk.task(&id, "communicate", MONA).await;
    desk.complete(
        &update,
        MONA,
        json!({"outcome": "sent", "fields": {"update": "Mail is down; next update in 30 minutes"}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        desk.open(&id, "communicate", MONA).await.is_empty(),
        "no update is due before the interval"
    );
    desk.clock.advance(chrono::Duration::minutes(30));
    let update = desk.task(&id, "communicate", MONA).await;

    // Resolved over HTTP; the event reaches the procedure over RabbitMQ.
    let (status, body) = desk
        .call(
            Method::POST,
            &format!("/v1/incidents/{id}/resolve"),
            AGENT,
            Some(json!({"code": "solved_permanently", "notes": "certificate renewed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    desk.complete(
        &update,
        MONA,
        json!({"outcome": "final", "fields": {"update": "Mail is back"}}),
    )
    .await;

    // The review, and the procedure's record.
    let review = desk.task(&id, "review", MONA).await;
    desk.complete(
        &review,
        MONA,
        json!({"outcome": "reviewed", "fields": {"cause": "expired certificate", "lessons": "alert on expiry", "problem_needed": true}}),
    )
    .await;
    let instance = review["instance_id"].as_str().unwrap().to_owned();
    let done = eventually(Duration::from_secs(20), || async {
        let (_, state) = desk
            .call(
                Method::GET,
                &format!("/v1/instances/{instance}"),
                ("admin", &["admin"]),
                None,
            )
            .await;
        (state["status"] == "completed").then_some(state)
    })
    .await
    .expect("the procedure completes");
    assert_eq!(done["definition"], "major-incident");
    assert_eq!(done["outcome"], "reviewed");
    assert_eq!(done["variables"]["review"]["cause"], "expired certificate");
    // The review's record is on the incident too, as a work note.
    let noted = eventually(Duration::from_secs(20), || async {
        let (_, incident) = desk
            .call(Method::GET, &format!("/v1/incidents/{id}"), AGENT, None)
            .await;
        incident["history"].as_array().and_then(|h| {
            h.iter()
                .find(|e| e["kind"] == "work_note")
                .map(|e| e.to_string())
        })
    })
    .await
    .expect("the review is noted on the incident");
    assert!(
        noted.contains("review by mona") && noted.contains("expired certificate"),
        "{noted}"
    );
    let resolved = &done["variables"]["resolution"]["data"];
    assert_eq!(
        (
            resolved["incident"]["id"].as_str(),
            resolved["incident"]["state"].as_str(),
            resolved["resolution_notes"].as_str()
        ),
        (
            Some(id.as_str()),
            Some("INCIDENT_STATE_RESOLVED"),
            Some("certificate renewed")
        ),
        "{done}"
    );
}

/// The email service in the resolution's catalogue read model, offering a shared mailbox
/// fulfilled by the request-fulfilment workflow.
async fn catalogue(desk: &Desk) {
    use meridian_proto::Message;
    let items = json!([{"id": "shared-mailbox", "name": "A shared mailbox", "needs_approval": true,
        "workflow": "request-fulfilment", "fields": {"members": {"type": "string_list", "required": true}}}]);
    let envelope = meridian_chassis::bus::Envelope {
        id: uuid::Uuid::now_v7(),
        event_type: "service_level.service.published".to_owned(),
        source: "/meridian/service-level".to_owned(),
        subject: "email".to_owned(),
        time: SystemClock.now(),
        correlation_id: None,
        causation_id: None,
        actor: Some("sam".to_owned()),
        payload: meridian_proto::service_level::v1::ServicePublished {
            id: "email".to_owned(),
            name: "E-mail".to_owned(),
            status: meridian_proto::service_level::v1::ServiceStatus::Live.into(),
            revision: 1,
            request_items_json: items.to_string(),
            ..Default::default()
        }
        .encode_to_vec(),
    };
    meridian_resolution::events::consume::apply(&desk.resolution.db, &SystemClock, envelope)
        .await
        .unwrap();
}

const RITA: (&str, &[&str]) = ("rita", &["requester", "request-approver"]);
const AMY: (&str, &[&str]) = ("amy", &["request-approver"]);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_request_is_approved_and_fulfilled_through_its_workflow() {
    let (config, _names) = setup();
    let (bus, _) = rabbit(&config);
    let desk = Desk::start(&bus, &config.queue_prefix).await;
    catalogue(&desk).await;
    let (status, request) = desk
        .call(
            Method::POST,
            "/v1/requests",
            RITA,
            Some(json!({"service": "email", "item": "shared-mailbox", "fields": {"members": ["rita", "otto"]}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    let id = request["id"].as_str().unwrap().to_owned();

    // The approval is the workflow's task; whoever ordered the request cannot take it.
    let approval = desk.task(&id, "approve", AMY).await;
    assert!(
        desk.open(&id, "approve", RITA).await.is_empty(),
        "not in the requester's inbox"
    );
    let (status, body) = desk
        .call(
            Method::POST,
            &format!("/v1/tasks/{}/complete", approval["id"].as_str().unwrap()),
            RITA,
            Some(json!({"outcome": "approved", "fields": {"reason": "mine"}})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    desk.complete(
        &approval,
        AMY,
        json!({"outcome": "approved", "fields": {"reason": "team mailbox agreed"}}),
    )
    .await;

    // Approved and started on the request by the workflow's commands; then the desk fulfils.
    let fulfil = desk.task(&id, "fulfil", AGENT).await;
    let (_, started) = desk
        .call(Method::GET, &format!("/v1/requests/{id}"), RITA, None)
        .await;
    assert_eq!(
        (started["state"].as_str(), started["approved_by"].as_str()),
        (Some("in_fulfilment"), Some("amy")),
        "{started}"
    );
    desk.complete(
        &fulfil,
        AGENT,
        json!({"outcome": "fulfilled", "fields": {"notes": "shared@ created for rita and otto"}}),
    )
    .await;
    let fulfilled = eventually(Duration::from_secs(20), || async {
        let (_, request) = desk
            .call(Method::GET, &format!("/v1/requests/{id}"), RITA, None)
            .await;
        (request["state"] == "fulfilled").then_some(request)
    })
    .await
    .expect("the request is fulfilled");
    assert_eq!(fulfilled["notes"], "shared@ created for rita and otto");
    let steps: Vec<(String, String)> = fulfilled["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_owned(),
                e["actor"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("submitted", "rita"),
        ("approved", "amy"),
        ("fulfilment_started", "system:workflow"),
        ("fulfilled", "ada"),
    ];
    assert_eq!(
        steps,
        expected.map(|(k, a)| (k.to_owned(), a.to_owned())),
        "{fulfilled}"
    );
    // The requester confirms the delivery.
    let (status, closed) = desk
        .call(
            Method::POST,
            &format!("/v1/requests/{id}/close"),
            RITA,
            None,
        )
        .await;
    assert_eq!(
        (status, closed["state"].as_str()),
        (StatusCode::OK, Some("closed")),
        "{closed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_problems_fix_raises_a_change_in_control_that_the_problem_shows() {
    let (config, _names) = setup();
    let (bus, _) = rabbit(&config);
    let desk = Desk::start(&bus, &config.queue_prefix).await;
    let (status, problem) = desk
        .call(
            Method::POST,
            "/v1/problems",
            AGENT,
            Some(json!({"title": "Mail queue stalls after certificate rotation"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{problem}");
    let id = problem["id"].as_str().unwrap().to_owned();
    let (status, body) = desk
        .call(
            Method::POST,
            &format!("/v1/problems/{id}/change"),
            AGENT,
            Some(json!({"reason": "the runner restarts without draining", "implementation_plan": "drain first"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let shown = eventually(Duration::from_secs(20), || async {
        let (_, problem) = desk
            .call(Method::GET, &format!("/v1/problems/{id}"), AGENT, None)
            .await;
        (problem["changes"].as_array().is_some_and(|c| !c.is_empty())).then_some(problem)
    })
    .await
    .expect("the change raised shows on the problem");
    let change_id = shown["changes"][0]["change_id"].as_str().unwrap();
    let (status, change) = desk
        .call(
            Method::GET,
            &format!("/v1/changes/{change_id}"),
            AGENT,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{change}");
    let number = problem["number"].as_str().unwrap();
    assert_eq!(
        (
            change["state"].as_str(),
            change["requester"].as_str(),
            change["origin"].clone(),
            change["implementation_plan"].as_str()
        ),
        (
            Some("draft"),
            Some("ada"),
            json!(format!("problem:{number}")),
            Some("drain first")
        )
    );
    assert_eq!(shown["changes"][0]["change"], change["number"]);
}
