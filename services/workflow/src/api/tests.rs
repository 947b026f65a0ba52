//! The workflow API in process, on both storage backends: definitions, instances, tasks,
//! segregation of duties, quorum, timers on an injected clock, replies and messages from the bus,
//! incidents and retries.

use std::sync::Arc;

use actix_web::dev::{Service as _, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::from_fn;
use actix_web::{App, test as atest, web};
use chrono::{Duration, TimeZone, Utc};
use meridian_chassis::auth::Authenticator;
use meridian_chassis::bus::Envelope;
use meridian_chassis::clock::ManualClock;
use meridian_chassis::db::DbError;
use meridian_chassis::outbox::Waker;
use meridian_chassis::telemetry::{Metrics, observe};
use meridian_chassis::testing::{BACKENDS, Backend, TestDb, dev_auth_config};
use meridian_proto::Message;
use meridian_proto::workflow::v1::{Command, CommandReply};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Workflow;

struct TestApp {
    db: TestDb,
    auth: Authenticator,
    clock: ManualClock,
    service: Workflow,
}

fn config() -> crate::WorkflowConfig {
    #[derive(serde::Deserialize)]
    struct Root {
        workflow: crate::WorkflowConfig,
    }
    let root: Root =
        meridian_chassis::config::load_from(&[crate::config::DEFAULTS], None, vec![]).unwrap();
    root.workflow
}

fn workflows_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows")
}

impl TestApp {
    async fn new(backend: Backend) -> Self {
        let db = TestDb::new(backend, crate::store::MIGRATIONS).await;
        let clock = ManualClock::at(Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap());
        let service = Workflow::new(
            db.db.clone(),
            Arc::new(clock.clone()),
            config(),
            Waker::default(),
        );
        crate::deploy_folder(&service, &workflows_dir())
            .await
            .unwrap();
        Self {
            db,
            auth: Authenticator::new(&dev_auth_config()).unwrap(),
            clock,
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

    /// Sends a request as `who` (user, roles); returns the status and the JSON body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        who: (&str, &[&str]),
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let app = self.service().await;
        let token = self.token(who.0, who.1);
        let mut req = atest::TestRequest::default()
            .method(method)
            .uri(path)
            .insert_header(("Authorization", format!("Bearer {token}")));
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

    async fn get(&self, path: &str, who: (&str, &[&str])) -> Value {
        let (status, body) = self.call(Method::GET, path, who, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    async fn post(&self, path: &str, who: (&str, &[&str]), body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, who, Some(body)).await
    }

    /// Starts a CAB instance raised by rita with this board.
    async fn start_cab(&self, members: &[&str]) -> Value {
        let (status, body) = self
            .post(
                "/v1/instances",
                RITA,
                json!({
                    "definition": "change-advisory-board",
                    "business_key": "CHG0001234",
                    "variables": {"change": {"title": "Upgrade PostgreSQL", "risk_hint": "high"}, "requester": "rita", "cab_members": members},
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// The open tasks of an instance at a node.
    async fn open_tasks(&self, instance: &Value, node: &str) -> Vec<Value> {
        let path = format!("/v1/tasks?instance={}", instance["id"].as_str().unwrap());
        let page = self.get(&path, ADMIN).await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["node"] == node)
            .cloned()
            .collect()
    }

    async fn complete(
        &self,
        task: &Value,
        who: (&str, &[&str]),
        body: Value,
    ) -> (StatusCode, Value) {
        let path = format!("/v1/tasks/{}/complete", task["id"].as_str().unwrap());
        self.post(&path, who, body).await
    }

    async fn instance(&self, instance: &Value) -> Value {
        let path = format!("/v1/instances/{}", instance["id"].as_str().unwrap());
        self.get(&path, ADMIN).await
    }

    async fn outbox(&self) -> Vec<Envelope> {
        self.db
            .db
            .run(|conn| meridian_chassis::outbox::pending(conn, 10_000).map_err(DbError::from))
            .await
            .unwrap()
            .into_iter()
            .map(|(_, envelope)| envelope)
            .collect()
    }

    async fn outbox_types(&self) -> Vec<String> {
        self.outbox()
            .await
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }

    /// The command the outbox holds last, decoded.
    async fn last_command(&self, command: &str) -> Command {
        let envelope = self
            .outbox()
            .await
            .into_iter()
            .rev()
            .find(|e| e.event_type == command)
            .unwrap();
        Command::decode(envelope.payload.as_slice()).unwrap()
    }

    /// Delivers a reply from the bus, as the consumer does.
    async fn reply(&self, command: &Command, reply_type: &str, ok: bool, id: Uuid) {
        let envelope = Envelope {
            id,
            event_type: reply_type.to_owned(),
            source: "/meridian/control".to_owned(),
            subject: command.business_key.clone(),
            time: meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
            correlation_id: Some(command.correlation_id.clone()),
            causation_id: None,
            actor: Some("system:control".to_owned()),
            payload: CommandReply {
                correlation_id: command.correlation_id.clone(),
                ok,
                error: if ok {
                    String::new()
                } else {
                    "window full".to_owned()
                },
                output_json: if ok {
                    r#"{"window":"sat 02:00"}"#.to_owned()
                } else {
                    String::new()
                },
            }
            .encode_to_vec(),
        };
        crate::events::apply(&self.service, envelope).await.unwrap();
    }

    async fn history_kinds(&self, instance: &Value) -> Vec<String> {
        self.instance(instance).await["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["kind"].as_str().unwrap().to_owned())
            .collect()
    }
}

const ADMIN: (&str, &[&str]) = ("olga", &["workflow-admin"]);
const RITA: (&str, &[&str]) = ("rita", &["change-manager", "agent"]);
const MAX: (&str, &[&str]) = ("max", &["change-manager"]);

fn assert_problem(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], code, "{body}");
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

impl TestApp {
    /// The inbox rows (kind, name) of `task`.
    async fn inbox_of(&self, task: &Value) -> Vec<(String, String)> {
        use crate::store::schema::wf_inbox;
        use diesel::prelude::*;
        let id = task["id"].as_str().unwrap().to_owned();
        self.db
            .db
            .run(move |conn| {
                wf_inbox::table
                    .filter(wf_inbox::task_id.eq(id))
                    .order((wf_inbox::kind.asc(), wf_inbox::name.asc()))
                    .select((wf_inbox::kind, wf_inbox::name))
                    .load(conn)
                    .map_err(DbError::from)
            })
            .await
            .unwrap()
    }
}

on_both_backends!(
    the_inbox_holds_a_task_while_it_is_open_and_unassigned,
    |app| {
        let instances = [app.start_cab(&["ann"]).await, app.start_cab(&["ann"]).await];
        let triage: Vec<Value> = {
            let mut all = Vec::new();
            for instance in &instances {
                all.extend(app.open_tasks(instance, "triage").await);
            }
            all
        };
        assert_eq!(triage.len(), 2);
        assert_eq!(
            app.inbox_of(&triage[0]).await,
            [("role".to_owned(), "change-manager".to_owned())]
        );
        // Paged one at a time, oldest first, through the cursor.
        let first = app.get("/v1/tasks?candidate=me&limit=1", MAX).await;
        assert_eq!(first["items"][0]["id"], triage[0]["id"], "{first}");
        let cursor = first["next"].as_str().unwrap();
        let second = app
            .get(
                &format!("/v1/tasks?candidate=me&limit=1&after={cursor}"),
                MAX,
            )
            .await;
        assert_eq!(second["items"][0]["id"], triage[1]["id"], "{second}");
        assert!(second["next"].is_null(), "{second}");
        // Someone without the role sees neither.
        let other = app.get("/v1/tasks?candidate=me", ("zoe", &["agent"])).await;
        assert_eq!(other["items"], json!([]), "{other}");
        // Claimed: out of the inbox, into the claimer's own list.
        let path = format!("/v1/tasks/{}/claim", triage[0]["id"].as_str().unwrap());
        let (status, body) = app.post(&path, MAX, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(app.inbox_of(&triage[0]).await.is_empty());
        let page = app.get("/v1/tasks?candidate=me", MAX).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
        assert_eq!(page["items"][0]["id"], triage[1]["id"]);
        let mine = app.get("/v1/tasks?assignee=me", MAX).await;
        assert_eq!(mine["items"][0]["id"], triage[0]["id"], "{mine}");
        // Completed: gone too; the closed task is still found by its state.
        let (status, body) = app
            .complete(
                &triage[1],
                MAX,
                json!({"outcome": "assessed", "fields": {"risk": "low"}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(app.inbox_of(&triage[1]).await.is_empty());
        // What is claimable now is the low-risk change's approval, which that decision opened.
        let page = app.get("/v1/tasks?candidate=me", MAX).await;
        let nodes: Vec<&Value> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| &t["node"])
            .collect();
        assert_eq!(nodes, [&json!("manager_approval")], "{page}");
        let done = app.get("/v1/tasks?candidate=me&state=completed", MAX).await;
        assert_eq!(done["items"][0]["id"], triage[1]["id"], "{done}");
    }
);

on_both_backends!(
    a_cab_change_runs_from_start_to_schedule_over_http_and_the_bus,
    |app| {
        let instance = app.start_cab(&["ann", "ben", "cat"]).await;
        assert_eq!(instance["status"], "running");
        assert_eq!(instance["initiator"], "rita");
        // The change manager sees the triage task among what they may claim, with its form.
        let page = app.get("/v1/tasks?candidate=me", MAX).await;
        let triage = page["items"][0].clone();
        assert_eq!(triage["node"], "triage");
        let detail = app
            .get(
                &format!("/v1/tasks/{}", triage["id"].as_str().unwrap()),
                MAX,
            )
            .await;
        assert_eq!(detail["outcomes"], json!(["assessed"]));
        assert_eq!(
            detail["form"]["risk"]["enum"],
            json!(["low", "medium", "high"])
        );
        assert_eq!(detail["summary"]["title"], "Upgrade PostgreSQL");
        let (status, body) = app
            .complete(
                &triage,
                MAX,
                json!({"outcome": "assessed", "fields": {"risk": "high"}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["state"], "completed");
        assert_eq!(body["completed_by"], "max");
        // Three board members, each with their own task; two approvals carry it.
        let cab = app.open_tasks(&instance, "cab").await;
        assert_eq!(cab.len(), 3);
        let mine = app.get("/v1/tasks?assignee=me", ("ann", &[])).await;
        assert_eq!(mine["items"].as_array().unwrap().len(), 1);
        for who in ["ann", "cat"] {
            let task = cab.iter().find(|t| t["assignee"] == who).unwrap();
            let (status, body) = app
                .complete(
                    task,
                    (who, &[]),
                    json!({"outcome": "approved", "comment": "fine"}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        assert!(
            app.open_tasks(&instance, "cab").await.is_empty(),
            "ben's vote is withdrawn"
        );
        // The schedule command went out through the outbox; the reply completes the instance.
        let command = app.last_command("control.change.schedule").await;
        assert_eq!(
            serde_json::from_str::<Value>(&command.input_json).unwrap(),
            json!({"change_id": "CHG0001234"})
        );
        app.reply(&command, "control.change.scheduled", true, Uuid::now_v7())
            .await;
        let done = app.instance(&instance).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(done["outcome"], "approved");
        assert_eq!(done["variables"]["schedule"]["window"], "sat 02:00");
        assert_eq!(done["variables"]["cab"]["approved"], 2);
        let history = done["history"].as_array().unwrap();
        assert!(
            history
                .iter()
                .any(|h| h["kind"] == "task_completed" && h["actor"] == "max")
        );
        assert!(
            history
                .iter()
                .any(|h| h["kind"] == "command_sent" && h["node"] == "schedule")
        );
        let types = app.outbox_types().await;
        assert_eq!(
            types.first().map(String::as_str),
            Some("workflow.instance.started")
        );
        assert_eq!(
            types.last().map(String::as_str),
            Some("workflow.instance.completed")
        );
        assert_eq!(
            types
                .iter()
                .filter(|t| *t == "workflow.task.created")
                .count(),
            4
        );
        assert_eq!(
            types
                .iter()
                .filter(|t| *t == "workflow.task.completed")
                .count(),
            3
        );
    }
);

on_both_backends!(
    segregation_of_duties_and_task_permissions_are_enforced,
    |app| {
        let instance = app.start_cab(&["rita", "ann", "ben"]).await;
        let triage = app.open_tasks(&instance, "triage").await.remove(0);
        // Rita raised the change: never hers, though she is a change manager, nor as an admin.
        let (status, body) = app
            .complete(
                &triage,
                RITA,
                json!({"outcome": "assessed", "fields": {"risk": "high"}}),
            )
            .await;
        assert_problem(
            status,
            &body,
            StatusCode::FORBIDDEN,
            "segregation_of_duties",
        );
        let (status, body) = app
            .complete(
                &triage,
                ("rita", &["admin"]),
                json!({"outcome": "assessed", "fields": {"risk": "high"}}),
            )
            .await;
        assert_problem(
            status,
            &body,
            StatusCode::FORBIDDEN,
            "segregation_of_duties",
        );
        let path = format!("/v1/tasks/{}/delegate", triage["id"].as_str().unwrap());
        let (status, body) = app.post(&path, MAX, json!({"to": "rita"})).await;
        assert_problem(
            status,
            &body,
            StatusCode::FORBIDDEN,
            "segregation_of_duties",
        );
        // Someone without the role may not.
        let (status, body) = app
            .complete(
                &triage,
                ("otto", &["agent"]),
                json!({"outcome": "assessed", "fields": {"risk": "high"}}),
            )
            .await;
        assert_problem(status, &body, StatusCode::FORBIDDEN, "task_not_allowed");
        // Bad outcome and form field, named.
        let (status, body) = app
            .complete(
                &triage,
                MAX,
                json!({"outcome": "assessed", "fields": {"risk": "huge"}}),
            )
            .await;
        assert_problem(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
        assert_eq!(body["invalid-params"][0]["name"], "fields.risk");
        let (status, body) = app
            .complete(&triage, MAX, json!({"outcome": "maybe"}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["invalid-params"][0]["name"], "outcome");
        let (status, body) = app
            .complete(&triage, MAX, json!({"outcom": "assessed"}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        // Claimed by max, then not by mia; completed, then 409.
        let claim = format!("/v1/tasks/{}/claim", triage["id"].as_str().unwrap());
        let (status, body) = app.post(&claim, MAX, json!({})).await;
        assert_eq!(
            (status, body["assignee"].clone()),
            (StatusCode::OK, json!("max")),
            "{body}"
        );
        let (status, body) = app
            .post(&claim, ("mia", &["change-manager"]), json!({}))
            .await;
        assert_problem(status, &body, StatusCode::FORBIDDEN, "task_not_allowed");
        let (status, _) = app
            .complete(
                &triage,
                MAX,
                json!({"outcome": "assessed", "fields": {"risk": "high"}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = app
            .complete(
                &triage,
                MAX,
                json!({"outcome": "assessed", "fields": {"risk": "high"}}),
            )
            .await;
        assert_problem(status, &body, StatusCode::CONFLICT, "task_closed");
        // The board gets no task for rita.
        let cab: Vec<Value> = app
            .open_tasks(&instance, "cab")
            .await
            .iter()
            .map(|t| t["assignee"].clone())
            .collect();
        assert_eq!(cab, [json!("ann"), json!("ben")]);
        let (status, body) = app
            .post(
                &format!("/v1/tasks/{}/complete", Uuid::now_v7()),
                MAX,
                json!({"outcome": "x"}),
            )
            .await;
        assert_problem(status, &body, StatusCode::NOT_FOUND, "task_not_found");
        // Listing someone else's tasks needs the admin role.
        let (status, body) = app
            .call(Method::GET, "/v1/tasks?assignee=ann", MAX, None)
            .await;
        assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
    }
);

on_both_backends!(
    the_database_counts_one_person_once_per_decision_round,
    |app| {
        let instance = app.start_cab(&["ann", "ben", "cat"]).await;
        let triage = app.open_tasks(&instance, "triage").await.remove(0);
        app.complete(
            &triage,
            MAX,
            json!({"outcome": "assessed", "fields": {"risk": "high"}}),
        )
        .await;
        let cab = app.open_tasks(&instance, "cab").await;
        let ann = cab.iter().find(|t| t["assignee"] == "ann").unwrap();
        let (status, _) = app
            .complete(ann, ("ann", &[]), json!({"outcome": "approved"}))
            .await;
        assert_eq!(status, StatusCode::OK);
        // Ben's task delegated to ann: she may hold it, not vote twice.
        let ben = cab.iter().find(|t| t["assignee"] == "ben").unwrap();
        let (status, _) = app
            .post(
                &format!("/v1/tasks/{}/delegate", ben["id"].as_str().unwrap()),
                ("ben", &[]),
                json!({"to": "ann"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = app
            .complete(ben, ("ann", &[]), json!({"outcome": "approved"}))
            .await;
        assert_problem(status, &body, StatusCode::FORBIDDEN, "task_not_allowed");
        // And a second decision row for ann in this round is refused by the unique constraint.
        let id = instance["id"].as_str().unwrap().to_owned();
        let duplicate = app
            .db
            .db
            .run(move |conn| {
                use crate::store::schema::wf_decisions;
                use diesel::prelude::*;
                let round: i32 = wf_decisions::table
                    .filter(wf_decisions::instance_id.eq(&id))
                    .select(wf_decisions::round)
                    .first(conn)?;
                diesel::insert_into(wf_decisions::table)
                    .values((
                        wf_decisions::instance_id.eq(&id),
                        wf_decisions::node.eq("cab"),
                        wf_decisions::round.eq(round),
                        wf_decisions::decided_by.eq("ann"),
                        wf_decisions::task_id.eq("another"),
                    ))
                    .execute(conn)
                    .map_err(DbError::from)
            })
            .await;
        assert!(duplicate.is_err(), "{duplicate:?}");
    }
);

on_both_backends!(
    timers_remind_then_escalate_on_the_injected_clock_and_fire_once,
    |app| {
        let instance = app.start_cab(&["ann", "ben"]).await;
        let triage = app.open_tasks(&instance, "triage").await.remove(0);
        app.complete(
            &triage,
            MAX,
            json!({"outcome": "assessed", "fields": {"risk": "high"}}),
        )
        .await;
        assert_eq!(crate::scheduler::fire_due(&app.service).await.unwrap(), 0);
        app.clock.advance(Duration::days(1));
        // Two schedulers at once (two replicas): each timer fires once.
        let (a, b) = tokio::join!(
            crate::scheduler::fire_due(&app.service),
            crate::scheduler::fire_due(&app.service)
        );
        assert_eq!(a.unwrap() + b.unwrap(), 1, "one reminder timer");
        let reminded = app
            .outbox_types()
            .await
            .iter()
            .filter(|t| *t == "workflow.task.reminded")
            .count();
        assert_eq!(reminded, 2);
        assert_eq!(crate::scheduler::fire_due(&app.service).await.unwrap(), 0);
        app.clock.advance(Duration::days(1));
        assert_eq!(crate::scheduler::fire_due(&app.service).await.unwrap(), 1);
        let escalated = app
            .outbox_types()
            .await
            .iter()
            .filter(|t| *t == "workflow.task.escalated")
            .count();
        assert_eq!(escalated, 2);
        // The change manager now sees the board's tasks among those they may claim, and decides.
        let page = app
            .get("/v1/tasks?candidate=me", ("mia", &["change-manager"]))
            .await;
        assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
        let task = page["items"][0].clone();
        let (status, body) = app
            .complete(
                &task,
                ("mia", &["change-manager"]),
                json!({"outcome": "rejected"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(app.instance(&instance).await["outcome"], "rejected");
    }
);

on_both_backends!(
    definitions_are_versioned_by_content_and_instances_keep_theirs,
    |app| {
        let source = std::fs::read_to_string(workflows_dir().join("standard-change.yaml")).unwrap();
        let (status, body) = app
            .post("/v1/definitions", ADMIN, json!({"source": source}))
            .await;
        assert_eq!(
            (status, body["created"].clone()),
            (StatusCode::OK, json!(false)),
            "{body}"
        );
        let first = app
        .post("/v1/instances", RITA, json!({"definition": "standard-change", "business_key": "CHG1", "variables": {"change": {}, "template": "t"}}))
        .await
        .1;
        let changed = source.replace(
            "Standard change\ndescription",
            "Standard change (v2)\ndescription",
        );
        let (status, body) = app
            .post("/v1/definitions", ADMIN, json!({"source": changed}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let second = app
        .post("/v1/instances", RITA, json!({"definition": "standard-change", "business_key": "CHG2", "variables": {"change": {}, "template": "t"}}))
        .await
        .1;
        assert_ne!(first["version"], second["version"]);
        assert_eq!(second["version"], body["version"]);
        let versions = app.get("/v1/definitions?id=standard-change", RITA).await;
        assert_eq!(versions.as_array().unwrap().len(), 2);
        assert_eq!(versions[0]["version"], body["version"], "newest first");
        // The first instance goes on with its own version.
        let command = app.last_command("control.change.schedule").await;
        assert_eq!(command.business_key, "CHG2");
        let first_command = app
            .outbox()
            .await
            .into_iter()
            .find(|e| e.event_type == "control.change.schedule")
            .unwrap();
        app.reply(
            &Command::decode(first_command.payload.as_slice()).unwrap(),
            "control.change.scheduled",
            true,
            Uuid::now_v7(),
        )
        .await;
        let original = first["version"].clone();
        let first = app.instance(&first).await;
        assert_eq!(first["status"], "completed");
        assert_eq!(first["version"], original);
        assert_ne!(first["version"], second["version"]);
        // Only workflow admins deploy; bad definitions list every problem with its position.
        let (status, body) = app
            .post("/v1/definitions", RITA, json!({"source": source}))
            .await;
        assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
        let broken = source.replace("next: approved", "next: aproved");
        let (status, body) = app
            .post("/v1/definitions", ADMIN, json!({"source": broken}))
            .await;
        assert_problem(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "workflow_definition_invalid",
        );
        assert_eq!(body["invalid-params"][0]["name"], "source");
        let reason = body["invalid-params"][0]["reason"].as_str().unwrap();
        assert!(
            reason.ends_with("nodes[1].next: unknown node `aproved`"),
            "{reason}"
        );
        let (status, body) = app
            .post(
                "/v1/instances",
                RITA,
                json!({"definition": "nope", "business_key": "x"}),
            )
            .await;
        assert_problem(
            status,
            &body,
            StatusCode::NOT_FOUND,
            "workflow_definition_not_found",
        );
        let (status, body) = app.post("/v1/instances", RITA, json!({"definition": "standard-change", "business_key": "x", "variables": {"change": {}}})).await;
        assert_problem(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
        assert_eq!(body["invalid-params"][0]["name"], "variables.template");
    }
);

on_both_backends!(
    failed_replies_become_an_incident_that_an_operator_retries,
    |app| {
        let (_, instance) = app
        .post("/v1/instances", RITA, json!({"definition": "standard-change", "business_key": "CHG9", "variables": {"change": {}, "template": "t"}}))
        .await;
        let retry_path = format!("/v1/instances/{}/retry", instance["id"].as_str().unwrap());
        let (status, body) = app.post(&retry_path, ADMIN, json!({})).await;
        assert_problem(
            status,
            &body,
            StatusCode::CONFLICT,
            "workflow_nothing_to_retry",
        );
        // Three failed attempts (the default), with backoff timers between them.
        for _ in 0..3 {
            let command = app.last_command("control.change.schedule").await;
            app.reply(&command, "control.change.scheduled", false, Uuid::now_v7())
                .await;
            app.clock.advance(Duration::minutes(1));
            crate::scheduler::fire_due(&app.service).await.unwrap();
        }
        let incidents = app.get("/v1/workflow-incidents", ADMIN).await;
        assert_eq!(incidents.as_array().unwrap().len(), 1, "{incidents}");
        assert!(
            incidents[0]["incident"]
                .as_str()
                .unwrap()
                .contains("failed after 3 attempts: window full")
        );
        let (status, body) = app.post(&retry_path, ADMIN, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            app.get("/v1/workflow-incidents", ADMIN)
                .await
                .as_array()
                .unwrap()
                .is_empty()
        );
        let command = app.last_command("control.change.schedule").await;
        assert_eq!(command.attempt, 1);
        // The reply is delivered twice: one effect.
        let id = Uuid::now_v7();
        app.reply(&command, "control.change.scheduled", true, id)
            .await;
        app.reply(&command, "control.change.scheduled", true, id)
            .await;
        let done = app.instance(&instance).await;
        assert_eq!(done["status"], "completed");
        let kinds = app.history_kinds(&instance).await;
        assert_eq!(kinds.iter().filter(|k| *k == "completed").count(), 1);
        assert!(kinds.contains(&"incident".to_owned()) && kinds.contains(&"retried".to_owned()));
    }
);

on_both_backends!(
    cancelling_withdraws_the_tasks_and_ends_the_instance,
    |app| {
        let instance = app.start_cab(&["ann", "ben"]).await;
        let path = format!("/v1/instances/{}/cancel", instance["id"].as_str().unwrap());
        let (status, body) = app.post(&path, RITA, json!({"reason": "withdrawn"})).await;
        assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
        let (status, body) = app.post(&path, ADMIN, json!({"reason": ""})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, body) = app
            .post(
                &path,
                ADMIN,
                json!({"reason": "withdrawn by the requester"}),
            )
            .await;
        assert_eq!(
            (status, body["status"].clone()),
            (StatusCode::OK, json!("cancelled")),
            "{body}"
        );
        assert!(app.open_tasks(&instance, "triage").await.is_empty());
        let (status, body) = app.post(&path, ADMIN, json!({"reason": "again"})).await;
        assert_problem(
            status,
            &body,
            StatusCode::CONFLICT,
            "workflow_instance_not_running",
        );
        assert!(
            app.outbox_types()
                .await
                .contains(&"workflow.instance.cancelled".to_owned())
        );
        let (status, body) = app
            .call(
                Method::GET,
                &format!("/v1/instances/{}", Uuid::now_v7()),
                ADMIN,
                None,
            )
            .await;
        assert_problem(
            status,
            &body,
            StatusCode::NOT_FOUND,
            "workflow_instance_not_found",
        );
    }
);

const WAITS: &str = "\
id: waits-for-closure
name: Waits for closure
nodes:
  - id: start
    type: start
    next: closed
  - id: closed
    type: message
    event: control.change.closed
    next: done
  - id: done
    type: end
    outcome: closed
";

on_both_backends!(
    a_message_node_moves_on_when_its_event_arrives_for_its_subject,
    |app| {
        let (status, _) = app
            .call(
                Method::POST,
                "/v1/definitions",
                ADMIN,
                Some(json!({"source": WAITS})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (_, instance) = app
            .post(
                "/v1/instances",
                RITA,
                json!({"definition": "waits-for-closure", "business_key": "CHG77"}),
            )
            .await;
        let event = |subject: &str| Envelope {
            id: Uuid::now_v7(),
            event_type: "control.change.closed".to_owned(),
            source: "/meridian/control".to_owned(),
            subject: subject.to_owned(),
            time: meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
            correlation_id: None,
            causation_id: None,
            actor: None,
            payload: Vec::new(),
        };
        crate::events::apply(&app.service, event("CHG78"))
            .await
            .unwrap();
        assert_eq!(app.instance(&instance).await["status"], "running");
        crate::events::apply(&app.service, event("CHG77"))
            .await
            .unwrap();
        let done = app.instance(&instance).await;
        assert_eq!(
            (done["status"].clone(), done["outcome"].clone()),
            (json!("completed"), json!("closed"))
        );
        assert_eq!(done["variables"]["closed"]["subject"], "CHG77");
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

fn incident_event(event_type: &str, incident: &str, payload: Vec<u8>) -> Envelope {
    Envelope {
        id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        source: "/meridian/resolution".to_owned(),
        subject: incident.to_owned(),
        time: meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
        correlation_id: None,
        causation_id: None,
        actor: Some("ivy".to_owned()),
        payload,
    }
}

on_both_backends!(
    a_bus_event_starts_the_definition_it_triggers_when_its_condition_holds,
    |app| {
        use meridian_proto::resolution::v1 as res;
        let declared = |manager: &str| {
            res::IncidentMajorDeclared {
                incident: Some(res::Incident {
                    id: "inc-1".to_owned(),
                    number: "INC0001001".to_owned(),
                    title: "Mail down".to_owned(),
                    priority: 1,
                    ..Default::default()
                }),
                manager: manager.to_owned(),
                reason: "all mail".to_owned(),
            }
            .encode_to_vec()
        };
        // No manager: the condition does not hold, nothing starts.
        crate::events::apply(
            &app.service,
            incident_event("resolution.incident.major_declared", "inc-1", declared("")),
        )
        .await
        .unwrap();
        let started = || async {
            app.db
                .db
                .run(|conn| {
                    use crate::store::schema::wf_instances;
                    use diesel::prelude::*;
                    wf_instances::table
                        .filter(wf_instances::definition.eq("major-incident"))
                        .select(wf_instances::id)
                        .load::<String>(conn)
                        .map_err(DbError::from)
                })
                .await
                .unwrap()
        };
        assert!(started().await.is_empty());
        let event = incident_event(
            "resolution.incident.major_declared",
            "inc-1",
            declared("mona"),
        );
        crate::events::apply(&app.service, event.clone())
            .await
            .unwrap();
        crate::events::apply(&app.service, event).await.unwrap();
        let ids = started().await;
        assert_eq!(ids.len(), 1, "one instance, however often the event comes");
        let instance = json!({"id": ids[0]});
        let state = app.instance(&instance).await;
        assert_eq!(state["business_key"], "inc-1");
        assert_eq!(state["initiator"], "ivy");
        assert_eq!(state["variables"]["manager"], "mona");
        assert_eq!(state["variables"]["incident"]["number"], "INC0001001");
        // At once: top management is told, and the manager sends the first status update.
        let notice = app.open_tasks(&instance, "inform_management").await;
        assert_eq!(notice.len(), 1);
        let (status, body) = app
            .complete(
                &notice[0],
                ("mona", &[]),
                json!({"outcome": "acknowledged"}),
            )
            .await;
        assert_ne!(
            status,
            StatusCode::OK,
            "only top management acknowledges: {body}"
        );
        let (status, body) = app
            .complete(
                &notice[0],
                ("tess", &["top-management"]),
                json!({"outcome": "acknowledged"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let update = app.open_tasks(&instance, "communicate").await.remove(0);
        assert_eq!(update["assignee"], "mona");
        let (status, body) = app
            .complete(
                &update,
                ("mona", &[]),
                json!({"outcome": "sent", "fields": {"update": "mail is down, we are on it"}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // The next update is due after the interval, not before.
        assert!(app.open_tasks(&instance, "communicate").await.is_empty());
        app.clock.advance(Duration::minutes(29));
        assert_eq!(crate::scheduler::fire_due(&app.service).await.unwrap(), 0);
        app.clock.advance(Duration::minutes(1));
        assert!(crate::scheduler::fire_due(&app.service).await.unwrap() >= 1);
        let update = app.open_tasks(&instance, "communicate").await.remove(0);
        // The incident is resolved; the manager sends the final update; then the review.
        let resolved = res::IncidentResolved::default().encode_to_vec();
        crate::events::apply(
            &app.service,
            incident_event("resolution.incident.resolved", "inc-1", resolved),
        )
        .await
        .unwrap();
        assert!(app.open_tasks(&instance, "review").await.is_empty());
        let (status, body) = app
            .complete(
                &update,
                ("mona", &[]),
                json!({"outcome": "final", "fields": {"update": "mail is back"}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let review = app.open_tasks(&instance, "review").await.remove(0);
        assert_eq!(review["assignee"], "mona");
        let detail = app
            .get(
                &format!("/v1/tasks/{}", review["id"].as_str().unwrap()),
                ("mona", &[]),
            )
            .await;
        assert_eq!(detail["summary"]["title"], "Mail down");
        let (status, body) = app
        .complete(&review, ("mona", &[]), json!({"outcome": "reviewed", "fields": {"cause": "certificate expired", "lessons": "monitor expiry", "problem_needed": true}}))
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(app.instance(&instance).await["outcome"], "reviewed");
    }
);

const CI_REVIEW: &str = "\
id: ci-owner-check
name: CI owner check
variables:
  ci: { type: string, required: true }
nodes:
  - id: start
    type: start
    next: confirm
  - id: confirm
    type: user_task
    assignee: { ci_owner: ci }
    outcomes: [confirmed]
    next: done
  - id: done
    type: end
";

on_both_backends!(
    a_task_for_the_owner_of_a_ci_goes_to_the_owner_the_cmdb_announced,
    |app| {
        use meridian_proto::control::v1::ConfigurationItemChanged;
        let (status, _) = app
            .post("/v1/definitions", ADMIN, json!({"source": CI_REVIEW}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let changed = |owner: &str, revision: i64| {
            let mut event = incident_event(
                "control.ci.changed",
                "db-01",
                ConfigurationItemChanged {
                    id: "db-01".to_owned(),
                    name: "Payroll database".to_owned(),
                    owner: owner.to_owned(),
                    revision,
                    ..Default::default()
                }
                .encode_to_vec(),
            );
            event.source = "/meridian/control".to_owned();
            event
        };
        // Unknown owner: an incident, until the CMDB says who it is and an operator retries.
        let start = json!({"definition": "ci-owner-check", "business_key": "db-01", "variables": {"ci": "db-01"}});
        let (_, instance) = app.post("/v1/instances", RITA, start.clone()).await;
        let state = app.instance(&instance).await;
        assert_eq!(
            state["incident"], "the CI `db-01` has no known owner",
            "{state}"
        );
        crate::events::apply(&app.service, changed("olaf", 2))
            .await
            .unwrap();
        crate::events::apply(&app.service, changed("stale", 1))
            .await
            .unwrap();
        let (status, body) = app
            .post(
                &format!("/v1/instances/{}/retry", instance["id"].as_str().unwrap()),
                ADMIN,
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            app.open_tasks(&instance, "confirm").await[0]["assignee"],
            "olaf"
        );
        // A new instance goes straight to the owner.
        let (_, second) = app.post("/v1/instances", RITA, start).await;
        assert_eq!(
            app.open_tasks(&second, "confirm").await[0]["assignee"],
            "olaf"
        );
    }
);

const PARENT: &str = "\
id: parent-flow
name: Parent flow
variables:
  doc: { type: string, required: true }
nodes:
  - id: start
    type: start
    next: approval
  - id: approval
    type: call_activity
    definition: standard-change
    variables:
      change: '{\"doc\": doc}'
      template: doc
    next: done
  - id: done
    type: end
    outcome: called
";

on_both_backends!(
    a_call_activity_runs_a_stored_child_and_resumes_its_parent,
    |app| {
        let (status, body) = app
            .post("/v1/definitions", ADMIN, json!({"source": PARENT}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (_, parent) = app
        .post("/v1/instances", RITA, json!({"definition": "parent-flow", "business_key": "DOC-7", "variables": {"doc": "policy"}}))
        .await;
        // The child (a standard change) sends its command; its reply ends it, and the parent.
        let command = app.last_command("control.change.schedule").await;
        assert_eq!(command.business_key, "DOC-7");
        assert_ne!(command.instance_id, parent["id"].as_str().unwrap());
        assert_eq!(app.instance(&parent).await["status"], "running");
        app.reply(&command, "control.change.scheduled", true, Uuid::now_v7())
            .await;
        let done = app.instance(&parent).await;
        assert_eq!(
            (done["status"].clone(), done["outcome"].clone()),
            (json!("completed"), json!("called")),
            "{done}"
        );
        assert_eq!(done["variables"]["approval"]["outcome"], "approved");
        let child = app.instance(&json!({"id": command.instance_id})).await;
        assert_eq!(child["variables"]["template"], "policy");
    }
);

#[actix_web::test]
async fn a_definition_deployed_at_run_time_hears_its_events_on_the_bus() {
    use meridian_chassis::bus::{Bus, MemoryBus};
    let app = TestApp::new(Backend::Sqlite).await;
    let bus = Bus::Memory(MemoryBus::new(3, Metrics::new().unwrap()));
    let all = app.service.deployed().await.unwrap();
    let bindings = crate::events::bindings(all.iter().map(AsRef::as_ref));
    assert!(!bindings.contains(&"control.change.closed".to_owned()));
    crate::events::start(&bus, "t.", app.service.clone(), bindings);
    let (status, _) = app
        .post("/v1/definitions", ADMIN, json!({"source": WAITS}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, instance) = app
        .post(
            "/v1/instances",
            RITA,
            json!({"definition": "waits-for-closure", "business_key": "CHG5"}),
        )
        .await;
    let mut closed = incident_event("control.change.closed", "CHG5", Vec::new());
    closed.source = "/meridian/control".to_owned();
    bus.publish(&[closed]).await.unwrap();
    let mut status = Value::Null;
    for _ in 0..100 {
        status = app.instance(&instance).await["status"].clone();
        if status == "completed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, "completed");
}

on_both_backends!(
    a_submitted_change_starts_the_workflow_of_its_category,
    |app| {
        use meridian_proto::control::v1::ChangeSubmitted;
        for (kind, definition) in [
            ("normal", "change-advisory-board"),
            ("emergency", "emergency-change"),
            ("standard", "standard-change"),
        ] {
            let id = format!("chg-{kind}");
            let submitted = ChangeSubmitted {
                id: id.clone(),
                number: "CHG0001000".to_owned(),
                kind: kind.to_owned(),
                title: "Upgrade".to_owned(),
                requester: "rita".to_owned(),
                cab_members: vec!["ann".to_owned(), "ben".to_owned()],
                template: if kind == "standard" {
                    "restart-pod".to_owned()
                } else {
                    String::new()
                },
                ..Default::default()
            };
            let mut event =
                incident_event("control.change.submitted", &id, submitted.encode_to_vec());
            event.source = "/meridian/control".to_owned();
            crate::events::apply(&app.service, event).await.unwrap();
            let started: Vec<(String, String)> = app
                .db
                .db
                .run(move |conn| {
                    use crate::store::schema::wf_instances;
                    use diesel::prelude::*;
                    wf_instances::table
                        .filter(wf_instances::business_key.eq(&id))
                        .select((wf_instances::definition, wf_instances::status))
                        .load(conn)
                        .map_err(DbError::from)
                })
                .await
                .unwrap();
            assert_eq!(started.len(), 1, "{kind}: {started:?}");
            assert_eq!(started[0].0, definition);
        }
    }
);

/// Decides a task as the notifier does for a confirmed action link; the reply, decoded.
async fn decide(
    app: &TestApp,
    task: &Value,
    actor: &str,
    roles: &[&str],
    outcome: &str,
    fields: Value,
) -> meridian_proto::workflow::v1::TaskDecisionReply {
    let command_id = Uuid::now_v7().to_string();
    let envelope = Envelope {
        id: Uuid::now_v7(),
        event_type: crate::events::DECIDE.to_owned(),
        source: "/meridian/notifier".to_owned(),
        subject: task["id"].as_str().unwrap().to_owned(),
        time: meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
        correlation_id: Some(format!("action-link:{command_id}")),
        causation_id: None,
        actor: Some(actor.to_owned()),
        payload: meridian_proto::workflow::v1::DecideTask {
            command_id: command_id.clone(),
            task_id: task["id"].as_str().unwrap().to_owned(),
            actor: actor.to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            outcome: outcome.to_owned(),
            comment: "from the e-mail".to_owned(),
            via: "action-link".to_owned(),
            fields_json: fields.to_string(),
        }
        .encode_to_vec(),
    };
    crate::events::apply(&app.service, envelope.clone())
        .await
        .unwrap();
    // A redelivery decides nothing more and replies nothing more.
    crate::events::apply(&app.service, envelope).await.unwrap();
    let replies: Vec<_> = app
        .outbox()
        .await
        .into_iter()
        .filter(|e| e.event_type == crate::events::DECIDE_REPLIED)
        .map(|e| {
            meridian_proto::workflow::v1::TaskDecisionReply::decode(e.payload.as_slice()).unwrap()
        })
        .filter(|r| r.command_id == command_id)
        .collect();
    assert_eq!(replies.len(), 1);
    replies.into_iter().next().unwrap()
}

on_both_backends!(
    an_action_link_decision_is_checked_again_by_the_engine_and_answered,
    |app| {
        let instance = app.start_cab(&["ann", "ben", "cat"]).await;
        // The task event carries what the notifier shows the approver.
        let created = app
            .outbox()
            .await
            .into_iter()
            .find(|e| e.event_type == "workflow.task.created")
            .unwrap();
        let created =
            meridian_proto::workflow::v1::TaskCreated::decode(created.payload.as_slice()).unwrap();
        assert_eq!(created.outcomes, ["assessed"]);
        assert_eq!(created.initiator, "rita");
        let summary: Value = serde_json::from_str(&created.summary_json).unwrap();
        assert_eq!(summary["title"], "Upgrade PostgreSQL");
        let form: Value = serde_json::from_str(&created.form_json).unwrap();
        assert_eq!(form["risk"]["enum"], json!(["low", "medium", "high"]));

        let triage = app.open_tasks(&instance, "triage").await.remove(0);
        // The initiator is excluded, whatever their roles; an admin role grants nothing here.
        let reply = decide(
            &app,
            &triage,
            "rita",
            &["change-manager", "admin"],
            "assessed",
            json!({"risk": "low"}),
        )
        .await;
        assert_eq!(
            (reply.ok, reply.code.as_str()),
            (false, "segregation_of_duties"),
            "{reply:?}"
        );
        // Someone who no longer holds the role.
        let reply = decide(
            &app,
            &triage,
            "max",
            &["agent"],
            "assessed",
            json!({"risk": "low"}),
        )
        .await;
        assert_eq!(
            (reply.ok, reply.code.as_str()),
            (false, "task_not_allowed"),
            "{reply:?}"
        );
        // A required form field missing.
        let reply = decide(
            &app,
            &triage,
            "max",
            &["change-manager"],
            "assessed",
            json!({}),
        )
        .await;
        assert_eq!(
            (reply.ok, reply.code.as_str()),
            (false, "invalid_body"),
            "{reply:?}"
        );
        let reply = decide(
            &app,
            &triage,
            "max",
            &["change-manager"],
            "assessed",
            json!({"risk": "high"}),
        )
        .await;
        assert!(reply.ok, "{reply:?}");
        let triage = app
            .get(
                &format!("/v1/tasks/{}", triage["id"].as_str().unwrap()),
                ADMIN,
            )
            .await;
        assert_eq!(
            (triage["state"].as_str(), triage["completed_by"].as_str()),
            (Some("completed"), Some("max"))
        );
        assert_eq!(triage["comment"], "from the e-mail");
        assert_eq!(triage["fields"]["risk"], "high");
        // Too late: the task is closed.
        let reply = decide(
            &app,
            &triage,
            "max",
            &["change-manager"],
            "assessed",
            json!({"risk": "high"}),
        )
        .await;
        assert_eq!(
            (reply.ok, reply.code.as_str()),
            (false, "task_closed"),
            "{reply:?}"
        );
        assert_eq!(app.open_tasks(&instance, "cab").await.len(), 3);
    }
);

on_both_backends!(
    a_request_cancelled_cancels_its_fulfilment_and_withdraws_the_open_task,
    |app| {
        use meridian_proto::resolution::v1 as res;
        let request = |state: &str| {
            res::RequestChanged {
                id: "req-1".to_owned(),
                number: "REQ0001000".to_owned(),
                service: "email".to_owned(),
                item: "shared-mailbox".to_owned(),
                requested_by: "rita".to_owned(),
                requested_for: "rita".to_owned(),
                state: state.to_owned(),
                needs_approval: true,
                workflow: "request-fulfilment".to_owned(),
                ..Default::default()
            }
            .encode_to_vec()
        };
        crate::events::apply(
            &app.service,
            incident_event(
                "resolution.request.submitted",
                "req-1",
                request("submitted"),
            ),
        )
        .await
        .unwrap();
        let id = app
            .db
            .db
            .run(|conn| {
                use crate::store::schema::wf_instances;
                use diesel::prelude::*;
                wf_instances::table
                    .filter(wf_instances::definition.eq("request-fulfilment"))
                    .select(wf_instances::id)
                    .first::<String>(conn)
                    .map_err(DbError::from)
            })
            .await
            .unwrap();
        let instance = json!({"id": id});
        assert_eq!(app.open_tasks(&instance, "approve").await.len(), 1);
        // The approvers see it in their inbox; the requester, an approver too, never does.
        for (who, seen) in [("amy", 1), ("rita", 0)] {
            let page = app
                .get("/v1/tasks?candidate=me", (who, &["request-approver"]))
                .await;
            assert_eq!(
                page["items"].as_array().map(Vec::len),
                Some(seen),
                "{who}: {page}"
            );
        }
        // Another request's cancellation changes nothing here.
        crate::events::apply(
            &app.service,
            incident_event(
                "resolution.request.cancelled",
                "req-2",
                request("cancelled"),
            ),
        )
        .await
        .unwrap();
        assert_eq!(app.instance(&instance).await["status"], "running");
        crate::events::apply(
            &app.service,
            incident_event(
                "resolution.request.cancelled",
                "req-1",
                request("cancelled"),
            ),
        )
        .await
        .unwrap();
        let state = app.instance(&instance).await;
        assert_eq!(state["status"], "cancelled", "{state}");
        assert!(app.open_tasks(&instance, "approve").await.is_empty());
        assert!(
            app.outbox_types()
                .await
                .contains(&"workflow.instance.cancelled".to_owned())
        );
    }
);
