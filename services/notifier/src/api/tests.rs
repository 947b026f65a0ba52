//! The notifier in process, on both storage backends, with a real SMTP exchange (a test SMTP
//! server on loopback) and a local HTTP receiver: tasks reach their approvers with action
//! links, every abuse of a link decides nothing, failed deliveries are retried then marked
//! failed, webhooks carry signed CloudEvents and never reach internal addresses, routing rules
//! and quiet hours, and refused inputs named.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Service as _, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::{App, test as atest, web};
use chrono::{DateTime, Utc};
use meridian_chassis::Clock as _;
use meridian_chassis::auth::Authenticator;
use meridian_chassis::bus::Envelope;
use meridian_chassis::clock::ManualClock;
use meridian_chassis::outbox::Waker;
use meridian_chassis::sinks::{HttpSink, SmtpSink};
use meridian_chassis::testing::{BACKENDS, Backend, TestDb, dev_auth_config};
use meridian_proto::Message;
use meridian_proto::workflow::v1::{DecideTask, TaskCompleted, TaskCreated, TaskDecisionReply};
use serde_json::{Value, json};

use crate::Notifier;
use crate::domain::signature;

const ADMIN: (&str, &[&str]) = ("nadia", &["notifier-admin"]);
const INTEGRATOR: (&str, &[&str]) = ("ian", &["integrator"]);
const TASK: &str = "0193f0a0-0000-7000-8000-000000000001";

struct TestApp {
    _db: TestDb,
    auth: Authenticator,
    svc: Notifier,
    clock: ManualClock,
    smtp: SmtpSink,
    sink: HttpSink,
}

fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-26T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

impl TestApp {
    async fn new(backend: Backend, extra: &str) -> Self {
        let smtp = SmtpSink::start().await;
        let sink = HttpSink::start().await;
        let db = TestDb::new(backend, crate::store::MIGRATIONS).await;
        #[derive(serde::Deserialize)]
        struct Root {
            notifier: crate::NotifierConfig,
        }
        let layer = format!(
            "notifier:\n  public_url: \"https://meridian.test\"\n  email:\n    transport: smtp\n    host: 127.0.0.1\n    port: {port}\n    tls: none\n    from: \"Meridian <meridian@example.org>\"\n    timeout_seconds: 5\n  delivery:\n    max_attempts: 3\n  chat:\n    ops: {{ kind: slack, url: \"{slack}\" }}\n    bridge: {{ kind: teams, url: \"{teams}\" }}\n",
            port = smtp.port,
            slack = sink.url("/slack"),
            teams = sink.url("/teams"),
        );
        let root: Root = meridian_chassis::config::load_from(
            &[crate::config::DEFAULTS, &layer, extra],
            None,
            vec![],
        )
        .unwrap();
        root.notifier.validate().unwrap();
        let clock = ManualClock::at(start_time());
        let svc = Notifier::new(
            db.db.clone(),
            Arc::new(clock.clone()),
            root.notifier,
            Waker::default(),
        )
        .unwrap();
        let app = Self {
            _db: db,
            auth: Authenticator::new(&dev_auth_config()).unwrap(),
            svc,
            clock,
            smtp,
            sink,
        };
        for (user, roles) in [
            ("bob", json!(["cab"])),
            ("carol", json!(["cab", "requester"])),
            ("dave", json!(["cab", "incident-manager"])),
        ] {
            let (status, body) = app
                .call(
                    Method::PUT,
                    &format!("/v1/recipients/{user}"),
                    ADMIN,
                    Some(json!({"display_name": user, "email": format!("{user}@example.org"), "roles": roles})),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        app
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

    fn token(&self, who: (&str, &[&str])) -> String {
        let roles: Vec<String> = who.1.iter().map(|r| (*r).to_owned()).collect();
        self.auth
            .mint_dev(
                who.0,
                &roles,
                meridian_chassis::SystemClock.now(),
                chrono::Duration::minutes(10),
            )
            .unwrap()
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        who: (&str, &[&str]),
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let app = self.service().await;
        let mut req = atest::TestRequest::default()
            .method(method)
            .uri(path)
            .insert_header(("Authorization", format!("Bearer {}", self.token(who))));
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

    /// A link page: GET, or POST with a form; the status, the HTML and the CSRF cookie set.
    async fn page(
        &self,
        path: &str,
        form: Option<&[(&str, &str)]>,
        cookie: Option<&str>,
        bearer: Option<(&str, &[&str])>,
    ) -> (StatusCode, String, Option<String>) {
        let app = self.service().await;
        let mut req = match form {
            None => atest::TestRequest::get(),
            Some(fields) => atest::TestRequest::post()
                .insert_header(("content-type", "application/x-www-form-urlencoded"))
                .set_payload(serde_urlencoded::to_string(fields).unwrap()),
        }
        .uri(path)
        .peer_addr(std::net::SocketAddr::from(([127, 0, 0, 1], 40_000)));
        if let Some(csrf) = cookie {
            req = req.cookie(actix_web::cookie::Cookie::new(
                "meridian_csrf",
                csrf.to_owned(),
            ));
        }
        if let Some(who) = bearer {
            req = req.insert_header(("Authorization", format!("Bearer {}", self.token(who))));
        }
        let response = app.call(req.to_request()).await.unwrap();
        let status = response.status();
        let csrf = response
            .response()
            .cookies()
            .find(|c| c.name() == "meridian_csrf")
            .map(|c| c.value().to_owned());
        let bytes = atest::read_body(response).await;
        (status, String::from_utf8_lossy(&bytes).into_owned(), csrf)
    }

    async fn event(&self, event_type: &str, subject: &str, payload: Vec<u8>) {
        let envelope = Envelope {
            id: uuid::Uuid::now_v7(),
            event_type: event_type.to_owned(),
            source: "/meridian/test".to_owned(),
            subject: subject.to_owned(),
            time: self.clock.now(),
            correlation_id: None,
            causation_id: None,
            actor: Some("system:test".to_owned()),
            payload,
        };
        crate::events::apply(&self.svc, envelope.clone())
            .await
            .unwrap();
        // A redelivery adds nothing.
        crate::events::apply(&self.svc, envelope).await.unwrap();
    }

    async fn task_created(&self, roles: &[&str]) {
        let form = json!({"reason": {"type": "string", "required": true}});
        self.event(
            "workflow.task.created",
            "instance-1",
            TaskCreated {
                task_id: TASK.to_owned(),
                instance_id: "instance-1".to_owned(),
                definition: "change-advisory-board".to_owned(),
                business_key: "CHG0000042".to_owned(),
                node: "cab".to_owned(),
                name: "CAB vote".to_owned(),
                candidate_users: vec!["bob".to_owned()],
                candidate_roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                outcomes: vec!["approved".to_owned(), "rejected".to_owned()],
                summary_json:
                    json!({"change": {"title": "Upgrade <the> mail gateway", "risk": "high"}})
                        .to_string(),
                initiator: "carol".to_owned(),
                form_json: form.to_string(),
                ..TaskCreated::default()
            }
            .encode_to_vec(),
        )
        .await;
    }

    async fn send(&self) -> usize {
        crate::delivery::tick(&self.svc).await.unwrap()
    }

    /// The action link in the e-mail to `to`, as a path.
    async fn link_for(&self, to: &str) -> String {
        let mails = self.smtp.wait_for(1, Duration::from_secs(5)).await;
        let mail = mails
            .iter()
            .rev()
            .find(|m| m.to.iter().any(|t| t == to))
            .unwrap_or_else(|| panic!("a mail to {to} in {mails:?}"));
        let link = mail
            .links("https://meridian.test/v1/actions/")
            .into_iter()
            .next()
            .expect("an action link");
        let path = link.trim_start_matches("https://meridian.test");
        path.split('?').next().unwrap().to_owned()
    }

    async fn decisions(&self) -> Vec<DecideTask> {
        self.svc
            .db
            .run(|conn| -> Result<_, meridian_chassis::db::DbError> {
                Ok(meridian_chassis::outbox::pending(conn, 100)?)
            })
            .await
            .unwrap()
            .into_iter()
            .filter(|(_, e)| e.event_type == "workflow.task.decide")
            .map(|(_, e)| DecideTask::decode(e.payload.as_slice()).unwrap())
            .collect()
    }

    async fn notifications(&self) -> Vec<Value> {
        let (status, page) = self
            .call(
                Method::GET,
                "/v1/notifications?recipient=all&limit=200",
                ADMIN,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["items"].as_array().unwrap().clone()
    }
}

macro_rules! on_both_backends {
    ($name:ident, $extra:expr, |$app:ident| $body:block) => {
        #[actix_web::test]
        async fn $name() {
            for backend in BACKENDS {
                let $app = TestApp::new(backend, $extra).await;
                async { $body }.await;
                drop($app);
            }
        }
    };
}

on_both_backends!(
    a_task_reaches_its_approvers_by_email_and_only_the_confirmed_link_decides,
    "",
    |app| {
        app.task_created(&["cab"]).await;
        assert_eq!(
            app.send().await,
            2,
            "bob (named and by role) and dave (by role); never carol, the initiator"
        );
        let mails = app.smtp.wait_for(2, Duration::from_secs(5)).await;
        let mut to: Vec<&str> = mails
            .iter()
            .flat_map(|m| m.to.iter().map(String::as_str))
            .collect();
        to.sort_unstable();
        assert_eq!(to, ["bob@example.org", "dave@example.org"]);
        assert!(mails.iter().all(|m| m.from == "meridian@example.org"));
        let text = mails[0].text();
        assert!(text.contains("Subject: Your decision: CAB vote"), "{text}");
        assert!(text.contains("change.risk: high"), "{text}");
        assert!(
            text.contains("Approve: https://meridian.test/v1/actions/"),
            "{text}"
        );
        assert!(text.contains("Content-Type: text/html"), "{text}");
        let notes = app.notifications().await;
        assert_eq!(notes.len(), 2);
        assert!(
            notes
                .iter()
                .all(|n| n["state"] == "delivered" && n["channel"] == "email")
        );

        let link = app.link_for("bob@example.org").await;
        // Fetching the link (a mail scanner, the approver) shows; it never decides.
        for _ in 0..2 {
            let (status, html, csrf) = app.page(&link, None, None, None).await;
            assert_eq!(status, StatusCode::OK, "{html}");
            assert!(
                html.contains("CHG0000042") && html.contains("Upgrade &lt;the&gt; mail gateway"),
                "{html}"
            );
            assert!(html.contains("name=\"field.reason\""), "{html}");
            assert!(csrf.is_some());
        }
        assert!(app.decisions().await.is_empty());
        let (_, _, csrf) = app.page(&link, None, None, None).await;
        let csrf = csrf.unwrap();
        let form = |outcome: &'static str| -> Vec<(&str, &str)> {
            vec![
                ("outcome", outcome),
                ("field.reason", "low blast radius"),
                ("comment", "go ahead"),
            ]
        };
        // No CSRF cookie, or one that does not match the form: refused.
        let mut bad = form("approved");
        bad.push(("csrf", csrf.as_str()));
        let (status, html, _) = app.page(&link, Some(&bad), None, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
        let (status, _, _) = app
            .page(&link, Some(&bad), Some("another-value"), None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // An outcome the task does not offer, or a required field left empty.
        let mut wrong = form("maybe");
        wrong.push(("csrf", csrf.as_str()));
        let (status, html, _) = app.page(&link, Some(&wrong), Some(&csrf), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
        assert!(html.contains("outcome must be one of"));
        let empty = vec![("outcome", "approved"), ("csrf", csrf.as_str())];
        let (status, html, _) = app.page(&link, Some(&empty), Some(&csrf), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
        assert!(html.contains("reason is required"), "{html}");
        // Someone else, signed in, with bob's link: refused.
        let mut good = form("approved");
        good.push(("csrf", csrf.as_str()));
        let (status, html, _) = app
            .page(&link, Some(&good), Some(&csrf), Some(("dave", &["cab"])))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
        assert!(html.contains("sent to someone else"));
        assert!(
            app.decisions().await.is_empty(),
            "nothing decided by any refused request"
        );

        // Bob confirms: the decision goes to the workflow engine, with his roles now.
        let (status, html, _) = app.page(&link, Some(&good), Some(&csrf), None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{html}");
        let decisions = app.decisions().await;
        assert_eq!(decisions.len(), 1);
        let d = &decisions[0];
        assert_eq!(
            (d.task_id.as_str(), d.actor.as_str(), d.outcome.as_str()),
            (TASK, "bob", "approved")
        );
        assert_eq!(d.roles, ["cab"]);
        assert_eq!(d.comment, "go ahead");
        assert_eq!(
            serde_json::from_str::<Value>(&d.fields_json).unwrap(),
            json!({"reason": "low blast radius"})
        );

        // Replay: refused, nothing more decided; the page tells what happened.
        let (status, html, _) = app.page(&link, Some(&good), Some(&csrf), None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{html}");
        let (status, html, _) = app.page(&link, None, None, None).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(
            html.contains("already been used") && html.contains("being recorded"),
            "{html}"
        );
        assert_eq!(app.decisions().await.len(), 1);

        // The engine's answer shows on the link's page.
        app.event(
            "workflow.task.decide.replied",
            TASK,
            TaskDecisionReply {
                command_id: d.command_id.clone(),
                task_id: TASK.to_owned(),
                ok: true,
                ..Default::default()
            }
            .encode_to_vec(),
        )
        .await;
        let (_, html, _) = app.page(&link, None, None, None).await;
        assert!(html.contains("was recorded as the decision"), "{html}");

        // Dave's link dies with the task.
        let dave = app.link_for("dave@example.org").await;
        app.event(
            "workflow.task.completed",
            "instance-1",
            TaskCompleted {
                task_id: TASK.to_owned(),
                completed_by: "bob".to_owned(),
                outcome: "approved".to_owned(),
                ..Default::default()
            }
            .encode_to_vec(),
        )
        .await;
        let (status, html, _) = app.page(&dave, None, None, None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{html}");
        assert!(
            html.contains("no longer waits for you") && html.contains("bob decided the task"),
            "{html}"
        );
    }
);

on_both_backends!(
    expired_unknown_stolen_and_revoked_links_decide_nothing,
    "",
    |app| {
        app.task_created(&[]).await;
        app.send().await;
        let link = app.link_for("bob@example.org").await;
        let (status, _, csrf) = app.page(&link, None, None, None).await;
        assert_eq!(status, StatusCode::OK);
        let csrf = csrf.unwrap();
        let form = [
            ("outcome", "rejected"),
            ("field.reason", "no"),
            ("csrf", csrf.as_str()),
        ];
        // Unknown and malformed tokens.
        let forged = format!("/v1/actions/{}", crate::domain::token::generate().unwrap());
        for path in [
            forged.as_str(),
            "/v1/actions/abc",
            "/v1/actions/%3Cscript%3E",
        ] {
            let (status, html, _) = app.page(path, Some(&form), Some(&csrf), None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {html}");
        }
        // A refused engine answer shows as refused.
        // Bob is removed from the directory: his link stops working.
        let (status, _) = app
            .call(Method::DELETE, "/v1/recipients/bob", ADMIN, None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, html, _) = app.page(&link, Some(&form), Some(&csrf), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
        assert!(html.contains("no longer in Meridian"), "{html}");
        // Back in the directory, but the link has expired meanwhile.
        let (status, body) = app
            .call(
                Method::PUT,
                "/v1/recipients/bob",
                ADMIN,
                Some(json!({"display_name": "Bob", "email": "bob@example.org", "roles": ["cab"]})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        app.clock.advance(chrono::Duration::hours(73));
        let (status, html, _) = app.page(&link, Some(&form), Some(&csrf), None).await;
        assert_eq!(status, StatusCode::GONE, "{html}");
        assert!(html.contains("expired"));
        assert!(app.decisions().await.is_empty());
    }
);

on_both_backends!(
    with_require_login_a_link_works_only_for_its_signed_in_approver,
    "notifier:\n  require_login: true\n",
    |app| {
        app.task_created(&[]).await;
        app.send().await;
        let link = app.link_for("bob@example.org").await;
        let (status, html, _) = app.page(&link, None, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{html}");
        let (status, _, csrf) = app.page(&link, None, None, Some(("bob", &[]))).await;
        assert_eq!(status, StatusCode::OK);
        let csrf = csrf.unwrap();
        let form = [
            ("outcome", "approved"),
            ("field.reason", "ok"),
            ("csrf", csrf.as_str()),
        ];
        let (status, _, _) = app.page(&link, Some(&form), Some(&csrf), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, _) = app
            .page(&link, Some(&form), Some(&csrf), Some(("bob", &[])))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(app.decisions().await.len(), 1);
    }
);

on_both_backends!(
    failed_sends_are_retried_with_backoff_then_marked_failed_and_can_be_sent_again,
    "",
    |app| {
        app.smtp.fail_with(Some("451 4.3.0 try again later"));
        app.task_created(&[]).await;
        assert_eq!(app.send().await, 1);
        let note = app.notifications().await.remove(0);
        assert_eq!(
            (note["state"].as_str(), note["attempts"].as_i64()),
            (Some("pending"), Some(1)),
            "{note}"
        );
        assert!(
            note["last_error"].as_str().unwrap().contains("451"),
            "{note}"
        );
        let due: DateTime<Utc> = serde_json::from_value(note["next_attempt_at"].clone()).unwrap();
        let wait = (due - app.clock.now()).num_seconds();
        assert!(
            (24..=30).contains(&wait),
            "first retry after about 30 s, not {wait}"
        );
        // Not due yet: nothing is taken.
        assert_eq!(app.send().await, 0);
        for _ in 0..2 {
            app.clock.advance(chrono::Duration::hours(1));
            assert_eq!(app.send().await, 1);
        }
        let note = app.notifications().await.remove(0);
        assert_eq!(
            (note["state"].as_str(), note["attempts"].as_i64()),
            (Some("failed"), Some(3)),
            "{note}"
        );
        let (status, body) = app
            .call(
                Method::GET,
                "/v1/notifications?state=failed&recipient=bob",
                ADMIN,
                None,
            )
            .await;
        assert_eq!(
            (status, body["items"].as_array().unwrap().len()),
            (StatusCode::OK, 1)
        );
        // Sent again by hand, once the server is back.
        app.smtp.fail_with(None);
        let id = note["id"].as_str().unwrap();
        let (status, body) = app
            .call(
                Method::POST,
                &format!("/v1/notifications/{id}/retry"),
                ("bob", &[]),
                None,
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden"))
        );
        let (status, body) = app
            .call(
                Method::POST,
                &format!("/v1/notifications/{id}/retry"),
                ADMIN,
                None,
            )
            .await;
        assert_eq!(
            (status, body["state"].as_str()),
            (StatusCode::OK, Some("pending")),
            "{body}"
        );
        let (status, body) = app
            .call(
                Method::POST,
                &format!("/v1/notifications/{id}/retry"),
                ADMIN,
                None,
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::CONFLICT, Some("not_failed"))
        );
        assert_eq!(app.send().await, 1);
        assert_eq!(app.smtp.wait_for(1, Duration::from_secs(5)).await.len(), 1);
        let (_, body) = app
            .call(
                Method::GET,
                &format!("/v1/notifications/{id}"),
                ("bob", &[]),
                None,
            )
            .await;
        assert_eq!(body["state"], "delivered", "bob sees his own notification");
        let (status, _) = app
            .call(
                Method::GET,
                &format!("/v1/notifications/{id}"),
                ("dave", &[]),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "dave does not see bob's");
        // A permanent refusal fails at once.
        app.smtp.fail_with(Some("550 5.1.1 no such user"));
        app.event(
            "workflow.task.created",
            "instance-2",
            TaskCreated {
                task_id: "0193f0a0-0000-7000-8000-000000000002".to_owned(),
                assignee: "dave".to_owned(),
                name: "Review".to_owned(),
                outcomes: vec!["done".to_owned()],
                ..Default::default()
            }
            .encode_to_vec(),
        )
        .await;
        app.send().await;
        let (_, body) = app
            .call(Method::GET, "/v1/notifications?recipient=dave", ADMIN, None)
            .await;
        assert_eq!(body["items"][0]["state"], "failed", "{body}");
        assert_eq!(body["items"][0]["attempts"], 1);
    }
);

on_both_backends!(
    webhooks_refuse_internal_addresses_unless_allowed,
    "",
    |app| {
        for (url, field) in [
            (app.sink.url("/hook"), "url"),
            ("http://169.254.169.254/latest/meta-data".to_owned(), "url"),
            ("http://10.1.2.3/x".to_owned(), "url"),
            ("http://[::1]:8080/".to_owned(), "url"),
            ("http://localhost/".to_owned(), "url"),
            ("ftp://example.org/".to_owned(), "url"),
            ("https://user:pw@example.org/".to_owned(), "url"),
        ] {
            let (status, body) = app
                .call(
                    Method::POST,
                    "/v1/webhooks",
                    INTEGRATOR,
                    Some(json!({"url": url, "event_types": ["control.#"]})),
                )
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
            assert_eq!(body["invalid-params"][0]["name"], field, "{url}: {body}");
        }
        let (status, body) = app
            .call(Method::POST, "/v1/webhooks", INTEGRATOR, Some(json!({"url": "https://example.org/hook", "event_types": ["Bad Pattern"], "secret": "short"})))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let names: Vec<&str> = body["invalid-params"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, ["event_types[0]", "secret"], "{body}");
        let (status, _) = app
            .call(
                Method::POST,
                "/v1/webhooks",
                ("bob", &["cab"]),
                Some(json!({"url": "https://example.org/hook", "event_types": ["#"]})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // The guard holds at delivery time too (a name that resolves inside, DNS rebinding).
        let guarded = crate::channels::http::Http::new(false, Duration::from_secs(5));
        let error = guarded
            .post(
                &app.sink.url("/hook"),
                "application/json",
                Vec::new(),
                "{}".to_owned(),
            )
            .await
            .unwrap_err();
        assert!(
            error.permanent && error.message.contains("loopback"),
            "{error:?}"
        );
        assert!(
            app.sink.received().is_empty(),
            "nothing reached the internal address"
        );
    }
);

on_both_backends!(
    webhooks_deliver_signed_cloud_events_with_a_delivery_log_and_retries,
    "notifier:\n  webhooks:\n    allow_private: true\n",
    |app| {
        let (status, hook) = app
            .call(Method::POST, "/v1/webhooks", INTEGRATOR, Some(json!({"url": app.sink.url("/hook"), "event_types": ["control.change.*"], "description": "ITSM bridge"})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{hook}");
        let secret = hook["secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("whsec_"));
        let id = hook["id"].as_str().unwrap().to_owned();
        let (_, listed) = app
            .call(Method::GET, &format!("/v1/webhooks/{id}"), INTEGRATOR, None)
            .await;
        assert!(
            listed.get("secret").is_none(),
            "the secret is shown once: {listed}"
        );

        let change = meridian_proto::control::v1::ChangeSubmitted {
            id: "c-1".to_owned(),
            number: "CHG0000007".to_owned(),
            ..Default::default()
        };
        app.event("control.change.submitted", "c-1", change.encode_to_vec())
            .await;
        app.event("resolution.incident.created", "i-1", Vec::new())
            .await;
        assert_eq!(
            app.send().await,
            1,
            "one delivery: the incident does not match"
        );
        let got = app.sink.wait_for(1, Duration::from_secs(5)).await;
        let request = &got[0];
        assert_eq!(request.path, "/hook");
        assert_eq!(
            request.header("content-type"),
            Some("application/cloudevents+json; charset=utf-8")
        );
        let event = request.json();
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["type"], "control.change.submitted");
        assert_eq!(event["subject"], "c-1");
        assert_eq!(event["data"]["number"], "CHG0000007");
        let (msg_id, timestamp, sig) = (
            request.header("webhook-id").unwrap(),
            request
                .header("webhook-timestamp")
                .unwrap()
                .parse::<i64>()
                .unwrap(),
            request.header("webhook-signature").unwrap(),
        );
        assert_eq!(timestamp, start_time().timestamp());
        assert!(signature::verify(
            secret.as_bytes(),
            msg_id,
            timestamp,
            &request.body,
            sig
        ));
        assert!(!signature::verify(
            b"another secret",
            msg_id,
            timestamp,
            &request.body,
            sig
        ));

        // The receiver fails: retried, logged with the status, then failed; sent again by hand.
        app.sink.fail_with(Some(503));
        app.event("control.change.state_changed", "c-1", Vec::new())
            .await;
        app.send().await;
        let (_, log) = app
            .call(
                Method::GET,
                &format!("/v1/webhooks/{id}/deliveries"),
                INTEGRATOR,
                None,
            )
            .await;
        let items = log["items"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{log}");
        assert_eq!(
            (
                items[0]["state"].as_str(),
                items[0]["response_status"].as_i64()
            ),
            (Some("delivered"), Some(200))
        );
        assert_eq!(
            (
                items[1]["state"].as_str(),
                items[1]["response_status"].as_i64()
            ),
            (Some("pending"), Some(503)),
            "{log}"
        );
        for _ in 0..2 {
            app.clock.advance(chrono::Duration::hours(1));
            app.send().await;
        }
        let (_, log) = app
            .call(
                Method::GET,
                &format!("/v1/webhooks/{id}/deliveries"),
                INTEGRATOR,
                None,
            )
            .await;
        let failed = &log["items"][1];
        assert_eq!(
            (failed["state"].as_str(), failed["attempts"].as_i64()),
            (Some("failed"), Some(3)),
            "{log}"
        );
        app.sink.fail_with(None);
        let delivery = failed["id"].as_str().unwrap();
        let (status, body) = app
            .call(
                Method::POST,
                &format!("/v1/webhooks/{id}/deliveries/{delivery}/retry"),
                INTEGRATOR,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        app.send().await;
        assert_eq!(
            app.sink.wait_for(5, Duration::from_secs(5)).await.len(),
            5,
            "1 + 3 attempts + 1 by hand"
        );
        // Deleted: no more deliveries; the log stays.
        let (status, _) = app
            .call(
                Method::DELETE,
                &format!("/v1/webhooks/{id}"),
                INTEGRATOR,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        app.event("control.change.submitted", "c-2", change.encode_to_vec())
            .await;
        assert_eq!(app.send().await, 0);
        let (status, _) = app
            .call(
                Method::DELETE,
                &format!("/v1/webhooks/{id}"),
                INTEGRATOR,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
);

on_both_backends!(
    rules_route_events_to_roles_and_chat_channels_and_quiet_hours_hold_back_what_is_not_urgent,
    "notifier:\n  webhooks:\n    allow_private: true\n",
    |app| {
        // Carol's quiet hours cover 10:00 UTC (her night is in Tokyo).
        let (status, body) = app
            .call(Method::PUT, "/v1/recipients/carol", ADMIN, Some(json!({
                "display_name": "Carol", "email": "carol@example.org", "roles": ["incident-manager"],
                "preferences": {"channel": "email", "quiet_start": "18:00", "quiet_end": "08:00", "timezone": "Asia/Tokyo"}
            })))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let rules = [
            json!({"name": "Major incidents to incident managers", "event_pattern": "resolution.incident.major_declared",
                   "audience_kind": "role", "audience": "incident-manager",
                   "subject_template": "Major incident {{ event.data.incident.number }}"}),
            json!({"name": "Major incidents to the ops channel", "event_pattern": "resolution.incident.*",
                   "audience_kind": "role", "audience": "", "destination": "ops"}),
            json!({"name": "Teams bridge", "event_pattern": "resolution.incident.major_declared",
                   "audience_kind": "role", "audience": "", "destination": "bridge"}),
        ];
        for rule in rules {
            let (status, body) = app
                .call(Method::POST, "/v1/notification-rules", ADMIN, Some(rule))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let declared = meridian_proto::resolution::v1::IncidentMajorDeclared {
            incident: Some(meridian_proto::resolution::v1::Incident {
                number: "INC0000099".to_owned(),
                title: "Mail down".to_owned(),
                ..Default::default()
            }),
            manager: "dave".to_owned(),
            reason: "all users".to_owned(),
        };
        app.event(
            "resolution.incident.major_declared",
            "inc-99",
            declared.encode_to_vec(),
        )
        .await;
        assert_eq!(
            app.send().await,
            3,
            "dave by e-mail, the Slack and Teams channels; carol waits"
        );
        let mails = app.smtp.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(mails[0].to, ["dave@example.org"]);
        assert!(
            mails[0]
                .text()
                .contains("Subject: Major incident INC0000099"),
            "{}",
            mails[0].text()
        );
        let posts = app.sink.wait_for(2, Duration::from_secs(5)).await;
        let slack = posts.iter().find(|p| p.path == "/slack").unwrap().json();
        assert!(
            slack["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("resolution.incident.major_declared"),
            "{slack}"
        );
        let teams = posts.iter().find(|p| p.path == "/teams").unwrap().json();
        assert_eq!(teams["attachments"][0]["content"]["type"], "AdaptiveCard");
        let (_, page) = app
            .call(
                Method::GET,
                "/v1/notifications?recipient=carol",
                ADMIN,
                None,
            )
            .await;
        let held = &page["items"][0];
        assert_eq!(held["state"], "pending");
        assert_eq!(
            held["next_attempt_at"], "2026-11-26T23:00:00Z",
            "08:00 in Tokyo: {held}"
        );

        // Refused rules, each field named.
        let (status, body) = app
            .call(Method::POST, "/v1/notification-rules", ADMIN, Some(json!({
                "name": "", "event_pattern": "a..b", "audience_kind": "everyone", "channel": "pigeon",
                "subject_template": "{{ event.subject "
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
                "name",
                "event_pattern",
                "audience_kind",
                "channel",
                "subject_template"
            ],
            "{body}"
        );
        let (status, _) = app
            .call(
                Method::GET,
                "/v1/notification-rules",
                ("bob", &["cab"]),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
);

on_both_backends!(
    preferences_and_the_directory_refuse_bad_values_by_name,
    "",
    |app| {
        let (status, body) = app
            .call(
                Method::PUT,
                "/v1/notification-preferences/me",
                ("bob", &[]),
                Some(json!({"channel": "teams", "quiet_start": "25:00"})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let names: Vec<&str> = body["invalid-params"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, ["channel", "quiet_start"], "{body}");
        let (status, body) = app
            .call(Method::PUT, "/v1/notification-preferences/me", ("bob", &[]), Some(json!({"channel": "none", "quiet_start": "22:00", "quiet_end": "07:00", "timezone": "Europe/Paris"})))
            .await;
        assert_eq!(
            (status, body["channel"].as_str(), body["timezone"].as_str()),
            (StatusCode::OK, Some("none"), Some("Europe/Paris")),
            "{body}"
        );
        let (status, body) = app
            .call(
                Method::GET,
                "/v1/notification-preferences/me",
                ("zed", &[]),
                None,
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("recipient_not_found"))
        );
        let (status, body) = app
            .call(Method::PUT, "/v1/recipients/zed", ADMIN, Some(json!({"display_name": "", "email": "not-an-address", "slack_webhook": "ftp://x", "roles": [""]})))
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
            ["display_name", "email", "slack_webhook", "roles[0]"],
            "{body}"
        );
        let (status, body) = app
            .call(
                Method::PUT,
                "/v1/recipients/zed",
                ADMIN,
                Some(json!({"display_name": "Zed", "colour": "blue"})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, _) = app
            .call(Method::GET, "/v1/recipients", ("bob", &[]), None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, body) = app
            .call(Method::GET, "/v1/recipients?limit=2", ADMIN, None)
            .await;
        assert_eq!(
            (
                status,
                body["items"].as_array().unwrap().len(),
                body["next"].as_str()
            ),
            (StatusCode::OK, 2, Some("carol"))
        );
        // Bob chose no notifications: a new task does not reach him.
        app.task_created(&[]).await;
        assert_eq!(app.send().await, 0);
    }
);

on_both_backends!(
    rules_address_the_person_or_role_an_event_names_even_outside_the_directory,
    "",
    |app| {
        let rules = [
            json!({"name": "Surveys to whom they ask", "event_pattern": "relationship.survey.sent",
                   "audience_kind": "event_user", "audience": "recipient", "channel": "email",
                   "subject_template": "How did we do on {{ event.data.ticket_number }}?",
                   "body_template": "Tell us: {{ event.data.link }}"}),
            json!({"name": "Escalated complaints", "event_pattern": "relationship.complaint.escalated",
                   "audience_kind": "event_role", "audience": "recipient"}),
        ];
        for rule in rules {
            let (status, body) = app
                .call(Method::POST, "/v1/notification-rules", ADMIN, Some(rule))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let survey = meridian_proto::relationship::v1::SurveySent {
            survey_id: "s1".to_owned(),
            ticket_number: "INC0001001".to_owned(),
            recipient: "pat@customer.example".to_owned(),
            link: "https://meridian.example.org/v1/surveys/respond/abc".to_owned(),
            ..Default::default()
        };
        app.event("relationship.survey.sent", "s1", survey.encode_to_vec())
            .await;
        let escalated = meridian_proto::relationship::v1::ComplaintChanged {
            number: "CMP0001001".to_owned(),
            recipient: "incident-manager".to_owned(),
            ..Default::default()
        };
        app.event(
            "relationship.complaint.escalated",
            "c1",
            escalated.encode_to_vec(),
        )
        .await;
        assert_eq!(
            app.send().await,
            2,
            "the customer's contact and dave (incident-manager)"
        );
        let mails = app.smtp.wait_for(2, Duration::from_secs(5)).await;
        let survey_mail = mails
            .iter()
            .find(|m| m.to == ["pat@customer.example"])
            .expect("the contact is mailed at their address");
        assert!(
            survey_mail
                .text()
                .contains("Subject: How did we do on INC0001001?")
                && survey_mail.text().contains("/v1/surveys/respond/abc"),
            "{}",
            survey_mail.text()
        );
        assert!(mails.iter().any(|m| m.to == ["dave@example.org"]));
    }
);

on_both_backends!(
    guessing_link_tokens_is_held_back_after_twenty_wrong_guesses_a_minute,
    "",
    |app| {
        app.task_created(&[]).await;
        app.send().await;
        let link = app.link_for("bob@example.org").await;
        for _ in 0..20 {
            let forged = format!("/v1/actions/{}", crate::domain::token::generate().unwrap());
            let (status, _, _) = app.page(&forged, None, None, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
        }
        // The 21st guess, and even the right link, wait for the minute to end.
        let forged = format!("/v1/actions/{}", crate::domain::token::generate().unwrap());
        let (status, html, _) = app.page(&forged, None, None, None).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{html}");
        let (status, html, _) = app.page(&link, None, None, None).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{html}");
        assert!(html.contains("Nothing was decided"), "{html}");
    }
);
