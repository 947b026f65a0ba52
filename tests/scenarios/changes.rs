//! Change approval across the control and workflow services over the real RabbitMQ: a change is
//! submitted over HTTP, the CAB workflow starts from `control.change.submitted`, the change
//! manager triages and the board votes through the task API, and the change ends scheduled with
//! who decided on its record; a rejection vetoes; an emergency change goes to the emergency CAB;
//! the requester can never approve their own change; and the whole CAB approval decided from
//! the e-mailed one-click links (notifier, a real SMTP exchange with a test server).

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Service as _, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::{App, test as atest, web};
use meridian_chassis::auth::Authenticator;
use meridian_chassis::bus::Bus;
use meridian_chassis::outbox::Waker;
use meridian_chassis::testing::{Backend, TestDb, amqp_url, dev_auth_config, test_bus_config};
use meridian_chassis::{Clock, SystemClock};
use serde_json::{Value, json};

use crate::support::{declare, eventually, rabbit, relay};

pub(crate) struct Cluster {
    _dbs: (TestDb, TestDb, Option<TestDb>),
    pub(crate) auth: Authenticator,
    pub(crate) control: meridian_control::Control,
    pub(crate) workflow: meridian_workflow::Workflow,
    pub(crate) notifier: Option<meridian_notifier::Notifier>,
}

impl Cluster {
    /// Control and workflow; with `smtp`, the notifier too, sending e-mail to that port.
    pub(crate) async fn start(bus: &Bus, prefix: &str, smtp: Option<u16>) -> Self {
        // The consumers declare their queues when they connect; declare them first so that
        // nothing published before then is lost (on a broker that has them, as in production).
        if let Bus::Rabbit(rabbit) = bus {
            let url = amqp_url();
            let workflow_keys = [
                "control.change.submitted",
                "control.change.scheduled",
                "control.ci.changed",
            ];
            declare(rabbit, &url, &format!("{prefix}workflow"), &workflow_keys).await;
            let control_keys = ["control.change.schedule", "workflow.instance.completed"];
            declare(rabbit, &url, &format!("{prefix}control"), &control_keys).await;
            if smtp.is_some() {
                declare(rabbit, &url, &format!("{prefix}notifier"), &["#"]).await;
            }
        }
        let control_db = TestDb::new(Backend::Postgres, meridian_control::store::MIGRATIONS).await;
        let workflow_db =
            TestDb::new(Backend::Postgres, meridian_workflow::store::MIGRATIONS).await;
        #[derive(serde::Deserialize)]
        struct Root {
            control: meridian_control::ControlConfig,
            workflow: meridian_workflow::WorkflowConfig,
            notifier: meridian_notifier::NotifierConfig,
        }
        let notifier_layer = format!(
            "notifier:\n  public_url: \"https://meridian.test\"\n  email:\n    transport: smtp\n    host: 127.0.0.1\n    port: {}\n    tls: none\n  delivery:\n    poll_ms: 100\n",
            smtp.unwrap_or(25)
        );
        let root: Root = meridian_chassis::config::load_from(
            &[
                meridian_control::config::DEFAULTS,
                meridian_workflow::config::DEFAULTS,
                meridian_notifier::config::DEFAULTS,
                "control:\n  cab_members: [ann, ben, cat]\n  emergency_cab: [eve]\nworkflow:\n  timer_poll_ms: 200\n",
                &notifier_layer,
            ],
            None,
            vec![],
        )
        .unwrap();
        let (control_waker, workflow_waker) = (Waker::default(), Waker::default());
        relay("control", &control_db, bus, &control_waker);
        relay("workflow", &workflow_db, bus, &workflow_waker);
        let control = meridian_control::Control {
            db: control_db.db.clone(),
            clock: Arc::new(SystemClock),
            config: root.control,
            waker: control_waker,
        };
        control.start_consumers(bus, prefix);
        let workflow = crate::support::workflow(
            bus,
            prefix,
            &workflow_db,
            root.workflow,
            Arc::new(SystemClock),
            workflow_waker,
        )
        .await;
        tokio::spawn(meridian_workflow::scheduler::run(workflow.clone()));
        let (notifier_db, notifier) = if smtp.is_some() {
            let db = TestDb::new(Backend::Postgres, meridian_notifier::store::MIGRATIONS).await;
            let waker = Waker::default();
            relay("notifier", &db, bus, &waker);
            let notifier = meridian_notifier::Notifier::new(
                db.db.clone(),
                Arc::new(SystemClock),
                root.notifier,
                waker,
            )
            .unwrap();
            directory(&notifier).await;
            notifier.start(bus, prefix);
            (Some(db), Some(notifier))
        } else {
            (None, None)
        };
        Self {
            _dbs: (control_db, workflow_db, notifier_db),
            auth: Authenticator::new(&dev_auth_config()).unwrap(),
            control,
            workflow,
            notifier,
        }
    }

    pub(crate) async fn app(
        &self,
    ) -> impl actix_web::dev::Service<
        actix_http::Request,
        Response = ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
    > {
        atest::init_service(
            App::new()
                .app_data(web::Data::new(self.auth.clone()))
                .configure(meridian_control::configure(self.control.clone()))
                .configure(meridian_workflow::configure(self.workflow.clone()))
                .configure(|cfg| {
                    if let Some(notifier) = &self.notifier {
                        meridian_notifier::configure(notifier.clone())(cfg);
                    }
                }),
        )
        .await
    }

    /// Opens the action link `path` as a browser would, then confirms `outcome` with `fields`;
    /// the confirmation's status.
    pub(crate) async fn confirm_link(
        &self,
        path: &str,
        outcome: &str,
        fields: &[(&str, &str)],
    ) -> StatusCode {
        let app = self.app().await;
        let page = app
            .call(atest::TestRequest::get().uri(path).to_request())
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{path}");
        let csrf = page
            .response()
            .cookies()
            .find(|c| c.name() == "meridian_csrf")
            .map(|c| c.value().to_owned())
            .unwrap();
        let mut form = vec![("outcome", outcome), ("csrf", csrf.as_str())];
        let named: Vec<(String, &str)> = fields
            .iter()
            .map(|(n, v)| (format!("field.{n}"), *v))
            .collect();
        form.extend(named.iter().map(|(n, v)| (n.as_str(), *v)));
        let confirmed = app
            .call(
                atest::TestRequest::post()
                    .uri(path)
                    .cookie(actix_web::cookie::Cookie::new(
                        "meridian_csrf",
                        csrf.clone(),
                    ))
                    .insert_header(("content-type", "application/x-www-form-urlencoded"))
                    .set_payload(serde_urlencoded::to_string(&form).unwrap())
                    .to_request(),
            )
            .await
            .unwrap();
        confirmed.status()
    }

    /// The page of the action link `path` (status and HTML).
    pub(crate) async fn link_page(&self, path: &str) -> (StatusCode, String) {
        let app = self.app().await;
        let page = app
            .call(atest::TestRequest::get().uri(path).to_request())
            .await
            .unwrap();
        let status = page.status();
        let body = atest::read_body(page).await;
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        who: (&str, &[&str]),
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let app = self.app().await;
        crate::support::call(&app, &self.auth, who, method, path, body).await
    }

    /// Records and submits a change as rita.
    pub(crate) async fn submit(&self, category: &str) -> String {
        let (status, change) = self
            .call(
                Method::POST,
                "/v1/changes",
                RITA,
                Some(json!({"title": "Upgrade the mail gateway", "reason": "security fix", "category": category})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{change}");
        let id = change["id"].as_str().unwrap().to_owned();
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/v1/changes/{id}/submit"),
                RITA,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        id
    }

    /// Waits for an open task at `node` that `who` may work, on the instance of change `id`.
    pub(crate) async fn task(
        &self,
        id: &str,
        node: &str,
        who: (&str, &[&str]),
        mine: bool,
    ) -> Value {
        let query = if mine { "assignee=me" } else { "candidate=me" };
        eventually(Duration::from_secs(20), || async {
            let (_, page) = self
                .call(Method::GET, &format!("/v1/tasks?{query}"), who, None)
                .await;
            page["items"].as_array().and_then(|items| {
                items
                    .iter()
                    .find(|t| t["node"] == node && t["business_key"] == id)
                    .cloned()
            })
        })
        .await
        .unwrap_or_else(|| panic!("{} gets a {node} task for {id}", who.0))
    }

    pub(crate) async fn complete(
        &self,
        task: &Value,
        who: (&str, &[&str]),
        body: Value,
    ) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            &format!("/v1/tasks/{}/complete", task["id"].as_str().unwrap()),
            who,
            Some(body),
        )
        .await
    }

    /// Waits for change `id` to reach `state`.
    pub(crate) async fn change_in(&self, id: &str, state: &str) -> Value {
        eventually(Duration::from_secs(20), || async {
            let (_, change) = self
                .call(Method::GET, &format!("/v1/changes/{id}"), RITA, None)
                .await;
            (change["state"] == state && change["decision"]["decided_by"].is_array())
                .then_some(change)
        })
        .await
        .unwrap_or_else(|| panic!("change {id} reaches {state}"))
    }
}

/// The people the notifier reaches, by e-mail.
async fn directory(notifier: &meridian_notifier::Notifier) {
    use meridian_notifier::store::recipients::{self, RecipientRow};
    let now = SystemClock.now().naive_utc();
    notifier
        .db
        .transaction(move |conn| -> Result<(), meridian_chassis::db::DbError> {
            for (user, roles) in [
                ("rita", "[\"agent\", \"change-manager\"]"),
                ("max", "[\"change-manager\"]"),
                ("ann", "[]"),
                ("ben", "[]"),
                ("cat", "[]"),
            ] {
                recipients::upsert(
                    conn,
                    &RecipientRow {
                        user_id: user.to_owned(),
                        display_name: user.to_owned(),
                        email: Some(format!("{user}@example.org")),
                        slack_webhook: None,
                        teams_webhook: None,
                        roles: roles.to_owned(),
                        groups: "[]".to_owned(),
                        channel: "email".to_owned(),
                        quiet_start: None,
                        quiet_end: None,
                        timezone: "UTC".to_owned(),
                        active: true,
                        updated_at: now,
                    },
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

pub(crate) const RITA: (&str, &[&str]) = ("rita", &["agent", "change-manager"]);
pub(crate) const MAX: (&str, &[&str]) = ("max", &["change-manager"]);

pub(crate) fn setup() -> (
    meridian_chassis::config::BusConfig,
    meridian_chassis::testing::RabbitNames,
) {
    let (config, mut names) = test_bus_config(&amqp_url());
    for service in ["control", "workflow", "notifier"] {
        names.queue(&format!("{}{service}", config.queue_prefix));
    }
    (config, names)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_change_is_approved_by_the_cab_through_the_task_api_and_scheduled() {
    let (config, _names) = setup();
    let (bus, _) = rabbit(&config);
    let cluster = Cluster::start(&bus, &config.queue_prefix, None).await;
    let id = cluster.submit("normal").await;
    // Triage: rita is a change manager too, but she raised the change.
    let triage = cluster.task(&id, "triage", MAX, false).await;
    let (status, body) = cluster
        .complete(
            &triage,
            RITA,
            json!({"outcome": "assessed", "fields": {"risk": "high"}}),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::FORBIDDEN, json!("segregation_of_duties"))
    );
    let (status, body) = cluster
        .complete(
            &triage,
            MAX,
            json!({"outcome": "assessed", "fields": {"risk": "high"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for member in ["ann", "ben"] {
        let vote = cluster.task(&id, "cab", (member, &[]), true).await;
        let (status, body) = cluster
            .complete(
                &vote,
                (member, &[]),
                json!({"outcome": "approved", "comment": "fine"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let change = cluster.change_in(&id, "scheduled").await;
    assert_eq!(change["decision"]["outcome"], "approved");
    assert_eq!(change["decision"]["workflow"], "change-advisory-board");
    let who: Vec<&str> = change["decision"]["decided_by"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["by"].as_str())
        .collect();
    for person in ["max", "ann", "ben"] {
        assert!(who.contains(&person), "{person} in {who:?}");
    }
    assert!(!who.contains(&"rita"));
    let comments: Vec<&str> = change["decision"]["decided_by"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["comment"].as_str())
        .collect();
    assert_eq!(
        comments,
        ["fine", "fine"],
        "the CAB members' comments are on the record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cab_rejection_vetoes_and_an_emergency_change_goes_to_the_emergency_cab() {
    let (config, _names) = setup();
    let (bus, _) = rabbit(&config);
    let cluster = Cluster::start(&bus, &config.queue_prefix, None).await;
    let vetoed = cluster.submit("normal").await;
    let triage = cluster.task(&vetoed, "triage", MAX, false).await;
    cluster
        .complete(
            &triage,
            MAX,
            json!({"outcome": "assessed", "fields": {"risk": "medium"}}),
        )
        .await;
    let ann = cluster.task(&vetoed, "cab", ("ann", &[]), true).await;
    cluster
        .complete(&ann, ("ann", &[]), json!({"outcome": "approved"}))
        .await;
    let cat = cluster.task(&vetoed, "cab", ("cat", &[]), true).await;
    cluster
        .complete(
            &cat,
            ("cat", &[]),
            json!({"outcome": "rejected", "comment": "no back-out tested"}),
        )
        .await;
    let change = cluster.change_in(&vetoed, "rejected").await;
    assert_eq!(change["decision"]["outcome"], "rejected");

    let emergency = cluster.submit("emergency").await;
    let decision = cluster.task(&emergency, "ecab", ("eve", &[]), true).await;
    let (status, body) = cluster
        .complete(&decision, ("eve", &[]), json!({"outcome": "approved"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Scheduled at once; the retrospective review waits for the change manager.
    let review = cluster.task(&emergency, "retrospective", MAX, false).await;
    assert_eq!(review["state"], "open");
    let (_, change) = cluster
        .call(Method::GET, &format!("/v1/changes/{emergency}"), RITA, None)
        .await;
    assert_eq!(change["state"], "scheduled", "{change}");
}

/// The action link of the newest e-mail to `to` about `change`, as a path.
pub(crate) async fn emailed_link(
    smtp: &meridian_chassis::sinks::SmtpSink,
    to: &str,
    change: &str,
) -> String {
    eventually(Duration::from_secs(20), || async {
        smtp.received()
            .into_iter()
            .rev()
            .filter(|m| m.to.iter().any(|t| t == to) && m.text().contains(change))
            .find_map(|m| {
                m.links("https://meridian.test/v1/actions/")
                    .into_iter()
                    .next()
            })
    })
    .await
    .map(|link| {
        link.trim_start_matches("https://meridian.test")
            .split('?')
            .next()
            .unwrap()
            .to_owned()
    })
    .unwrap_or_else(|| panic!("an e-mail with an action link to {to} about {change}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cab_approval_is_decided_end_to_end_from_the_emailed_links() {
    let (config, _names) = setup();
    let (bus, _) = rabbit(&config);
    let smtp = meridian_chassis::sinks::SmtpSink::start().await;
    let cluster = Cluster::start(&bus, &config.queue_prefix, Some(smtp.port)).await;
    let id = cluster.submit("normal").await;
    // Triage by e-mail to max, the other change manager; never to rita, who raised it.
    let triage = emailed_link(&smtp, "max@example.org", &id).await;
    assert_eq!(
        cluster
            .confirm_link(&triage, "assessed", &[("risk", "high")])
            .await,
        StatusCode::ACCEPTED
    );
    // The board votes from its e-mails.
    for member in ["ann", "ben"] {
        let vote = emailed_link(&smtp, &format!("{member}@example.org"), &id).await;
        assert_eq!(
            cluster.confirm_link(&vote, "approved", &[]).await,
            StatusCode::ACCEPTED,
            "{member}"
        );
    }
    let change = cluster.change_in(&id, "scheduled").await;
    assert_eq!(change["decision"]["outcome"], "approved", "{change}");
    let who: Vec<&str> = change["decision"]["decided_by"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["by"].as_str())
        .collect();
    for person in ["max", "ann", "ben"] {
        assert!(who.contains(&person), "{person} in {who:?}");
    }
    assert!(
        smtp.received()
            .iter()
            .all(|m| !m.to.iter().any(|t| t == "rita@example.org")),
        "the requester is never asked to approve her own change"
    );
    // The engine's answer shows on the used link; cat's link died with the vote.
    let answered = eventually(Duration::from_secs(20), || async {
        let (_, html) = cluster.link_page(&triage).await;
        html.contains("was recorded as the decision").then_some(())
    })
    .await;
    assert!(
        answered.is_some(),
        "the triage link shows the recorded decision"
    );
    let cat = emailed_link(&smtp, "cat@example.org", &id).await;
    let void = eventually(Duration::from_secs(20), || async {
        let (status, _) = cluster.link_page(&cat).await;
        (status == StatusCode::CONFLICT).then_some(())
    })
    .await;
    assert!(
        void.is_some(),
        "cat's link stops working once the board has decided"
    );
}
