//! `meridian serve --service workflow` as a real process against PostgreSQL and RabbitMQ,
//! killed with SIGKILL while decisions are being made on a dozen change approvals, then started
//! again: every instance goes on from where it stood and completes exactly once, its schedule
//! command answered over the bus.
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lapin::options::BasicGetOptions;
use meridian_chassis::bus::{Bus, Envelope, RabbitBus, Subscription};
use meridian_chassis::config::BusConfig;
use meridian_chassis::telemetry::Metrics;
use meridian_chassis::testing::{Backend, TestDb, amqp_url, dev_auth_config, test_bus_config};
use meridian_proto::Message;
use meridian_proto::workflow::v1::{Command as WorkflowCommand, CommandReply};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(db_url: &str, bus: &BusConfig, secret: &str) -> (Server, String) {
    let workflows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    let mut child = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["serve", "--service", "workflow", "--migrate"])
        .env("MERIDIAN__HTTP__BIND", "127.0.0.1:0")
        .env("MERIDIAN__HTTP__WORKERS", "2")
        .env("MERIDIAN__DATABASE__URL", db_url)
        .env("MERIDIAN__BUS__URL", bus.url.expose_secret())
        .env("MERIDIAN__BUS__EXCHANGE", &bus.exchange)
        .env(
            "MERIDIAN__BUS__DEAD_LETTER_EXCHANGE",
            &bus.dead_letter_exchange,
        )
        .env("MERIDIAN__BUS__QUEUE_PREFIX", &bus.queue_prefix)
        .env("MERIDIAN__AUTH__MODE", "dev")
        .env("MERIDIAN__AUTH__SECRET", secret)
        .env("MERIDIAN__TELEMETRY__LOG_LEVEL", "warn")
        .env("MERIDIAN__WORKFLOW__DEFINITIONS_DIR", workflows)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut lines = BufReader::new(stdout).lines();
    let address = loop {
        let line = lines
            .next()
            .expect("the server prints its address")
            .unwrap();
        if let Some((_, address)) = line.split_once("listening on http://") {
            break address.trim().to_owned();
        }
    };
    (server, address)
}

/// One HTTP/1.1 request; `None` when the connection fails (the server was killed).
fn http(address: &str, method: &str, path: &str, token: &str, body: &str) -> Option<(u16, Value)> {
    support::http_within(Duration::from_secs(10), address, method, path, token, body)
        .map(|(status, body, _)| (status, body))
}

struct Tokens {
    auth: meridian_chassis::auth::Authenticator,
}

impl Tokens {
    fn of(&self, sub: &str, roles: &[&str]) -> String {
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
}

/// Decides every open task of `instance` once: triage high or low, votes approved.
fn decide_open_tasks(address: &str, tokens: &Tokens, instance: &str, risk: &str) -> Option<usize> {
    let admin = tokens.of("olga", &["workflow-admin"]);
    let (_, page) = http(
        address,
        "GET",
        &format!("/v1/tasks?instance={instance}"),
        &admin,
        "",
    )?;
    let tasks = page["items"].as_array()?.clone();
    for task in &tasks {
        let id = task["id"].as_str()?;
        let (who, roles, body) = match task["node"].as_str()? {
            "triage" => (
                "max",
                vec!["change-manager"],
                json!({"outcome": "assessed", "fields": {"risk": risk}}),
            ),
            "manager_approval" => (
                "max",
                vec!["change-manager"],
                json!({"outcome": "approved"}),
            ),
            _ => (
                task["assignee"].as_str()?,
                vec![],
                json!({"outcome": "approved"}),
            ),
        };
        let token = tokens.of(who, &roles);
        let (status, body) = http(
            address,
            "POST",
            &format!("/v1/tasks/{id}/complete"),
            &token,
            &body.to_string(),
        )?;
        // 409: decided before the crash, or withdrawn by the quorum meanwhile.
        assert!(status == 200 || status == 409, "{status} {body}");
    }
    Some(tasks.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_killed_mid_way_finish_exactly_once_after_a_restart() {
    let db = TestDb::empty(Backend::Postgres);
    let url = amqp_url();
    let (bus, mut names) = test_bus_config(&url);
    let observer = format!("{}crash-observer", bus.queue_prefix);
    let control = format!("{}crash-control", bus.queue_prefix);
    for queue in [
        &observer,
        &control,
        &format!("{}workflow", bus.queue_prefix),
    ] {
        names.queue(queue);
    }
    let rabbit = RabbitBus::new(bus.clone(), Metrics::new().unwrap());
    let connection = lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    for (queue, binding) in [
        (&observer, "workflow.instance.completed"),
        (&control, "control.change.schedule"),
    ] {
        rabbit
            .declare_queue(
                &channel,
                &Subscription {
                    queue: queue.clone(),
                    bindings: vec![binding.to_owned()],
                },
            )
            .await
            .unwrap();
    }
    let auth = dev_auth_config();
    let secret = auth.secret.expose_secret().to_owned();
    let tokens = Tokens {
        auth: meridian_chassis::auth::Authenticator::new(&auth).unwrap(),
    };

    let (server, address) = start(&db.url, &bus, &secret);
    let rita = tokens.of("rita", &["agent"]);
    let mut instances = Vec::new();
    for n in 0..12 {
        let body = json!({
            "definition": "change-advisory-board",
            "business_key": format!("CHG{n:04}"),
            "variables": {"change": {"n": n}, "requester": "rita", "cab_members": ["ann", "ben", "cat"]},
        });
        let (status, created) =
            http(&address, "POST", "/v1/instances", &rita, &body.to_string()).unwrap();
        assert_eq!(status, 201, "{created}");
        let risk = if n % 3 == 0 { "low" } else { "high" };
        instances.push((created["id"].as_str().unwrap().to_owned(), risk));
    }
    // Decide in a background thread; once half the instances have had a first round of
    // decisions (the others none, and none has all its votes), kill the server with SIGKILL
    // while the decider goes on sending.
    let (progress, decided) = std::sync::mpsc::channel();
    let decider = {
        let (address, instances) = (address.clone(), instances.clone());
        let tokens = Tokens {
            auth: meridian_chassis::auth::Authenticator::new(&auth).unwrap(),
        };
        std::thread::spawn(move || {
            let mut done = 0;
            for (id, risk) in &instances {
                if decide_open_tasks(&address, &tokens, id, risk).is_none() {
                    break;
                }
                done += 1;
                let _ = progress.send(done);
            }
            done
        })
    };
    while decided.recv().unwrap() < instances.len() / 2 {}
    drop(server);
    let before_kill = decider.join().unwrap();
    assert!(
        before_kill < instances.len(),
        "the kill came before all first decisions"
    );
    // Started again on the same database and bus: every instance is where it stood.
    let (_server, address) = start(&db.url, &bus, &secret);
    for _round in 0..4 {
        for (id, risk) in &instances {
            decide_open_tasks(&address, &tokens, id, risk).unwrap();
        }
    }
    // The control service's part: answer each schedule command (a command sent twice across
    // the crash gets two answers; the second finds nothing waiting).
    let publisher = Bus::Rabbit(RabbitBus::new(bus.clone(), Metrics::new().unwrap()));
    let admin = tokens.of("olga", &["workflow-admin"]);
    let mut completed = BTreeSet::new();
    for _ in 0..300 {
        while let Some(got) = channel
            .basic_get(control.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            let command = WorkflowCommand::decode(got.delivery.data.as_slice()).unwrap();
            let reply = Envelope {
                id: uuid::Uuid::now_v7(),
                event_type: "control.change.scheduled".to_owned(),
                source: "/meridian/control".to_owned(),
                subject: command.business_key.clone(),
                time: meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
                correlation_id: Some(command.correlation_id.clone()),
                causation_id: None,
                actor: Some("system:control".to_owned()),
                payload: CommandReply {
                    correlation_id: command.correlation_id.clone(),
                    ok: true,
                    error: String::new(),
                    output_json: "{}".to_owned(),
                }
                .encode_to_vec(),
            };
            publisher.publish(&[reply]).await.unwrap();
        }
        for (id, _) in &instances {
            if !completed.contains(id)
                && let Some((200, instance)) =
                    http(&address, "GET", &format!("/v1/instances/{id}"), &admin, "")
                && instance["status"] == "completed"
            {
                assert_eq!(instance["outcome"], "approved", "{instance}");
                let history = instance["history"].as_array().unwrap();
                let count = |kind: &str| history.iter().filter(|h| h["kind"] == kind).count();
                assert_eq!(count("completed"), 1, "{instance}");
                assert_eq!(count("started"), 1, "{instance}");
                completed.insert(id.clone());
            }
        }
        if completed.len() == instances.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(completed.len(), instances.len(), "every instance completes");
    // Each completion is announced once (a redelivery repeats the same message id).
    let mut announced: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for _ in 0..100 {
        while let Some(got) = channel
            .basic_get(observer.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            let envelope =
                Envelope::from_amqp(&got.delivery.properties, got.delivery.data.clone()).unwrap();
            announced
                .entry(envelope.subject)
                .or_default()
                .insert(envelope.id.to_string());
        }
        if announced.len() == instances.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(announced.len(), instances.len(), "{announced:?}");
    assert!(
        announced.values().all(|ids| ids.len() == 1),
        "{announced:?}"
    );
}
