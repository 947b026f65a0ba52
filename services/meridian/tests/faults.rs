//! Faults survived: resolution, control, workflow, notifier and governance as real processes on a
//! private PostgreSQL cluster and a private RabbitMQ node (so stopping them touches no other
//! test), under a steady background load of incidents created, changes submitted and approvals
//! decided, with a fraction of the store's commits and outbox marks failing on purpose
//! throughout. Meanwhile the broker is stopped and started, then killed with SIGKILL; the
//! database is restarted in immediate mode; each service is killed with SIGKILL mid-flow and
//! started again; the notifier is frozen with SIGSTOP past the heartbeat; poison messages are
//! published.
//!
//! A history records every acknowledged operation; a webhook sink records every side effect
//! (each incident's `resolution.incident.created`, delivered by the notifier). Once the load
//! stops, the remaining approvals are decided and the system settles; then the checker counts
//! what was lost (acknowledged but absent, or dead-lettered), duplicated (a side effect or a
//! workflow twice), stuck (a change that never got through its approval), left in queues, and
//! whether the audit ledger verifies. All must be zero. The figures go to
//! `$MERIDIAN_REPORTS/faults.json`.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meridian_chassis::testing::{PgNode, RabbitNode, test_bus_config};
use serde_json::{Value, json};
use support::{Server, http_within, reports, start, token};

/// The AMQP heartbeat of every service, seconds: the freeze lasts three of them.
const HEARTBEAT: u64 = 5;
/// The fraction of commits and outbox marks that fail on purpose.
const STORE_FAULT_RATE: &str = "0.02";
const LEDGER_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const SERVICES: [&str; 5] = [
    "resolution",
    "control",
    "workflow",
    "notifier",
    "governance",
];

fn call(address: &str, method: &str, path: &str, token: &str, body: &str) -> Option<(u16, Value)> {
    http_within(Duration::from_secs(5), address, method, path, token, body).map(|(s, b, _)| (s, b))
}

/// What the clients were told was done.
#[derive(Default)]
struct History {
    incidents: Vec<String>,
    changes: Vec<String>,
    decisions: Vec<(String, String)>,
    /// Answers by operation and status (`none`: no answer).
    answers: BTreeMap<String, usize>,
}

impl History {
    fn answer(&mut self, operation: &str, status: Option<u16>) {
        let status = status.map_or_else(|| "none".to_owned(), |s| s.to_string());
        *self
            .answers
            .entry(format!("{operation} {status}"))
            .or_default() += 1;
    }
}

struct Users {
    agent: String,
    requester: String,
    manager: String,
}

/// One operation of the background load.
fn operation(k: u64, to: &BTreeMap<&str, String>, users: &Users, history: &Mutex<History>) {
    match k % 10 {
        0..=3 => {
            let body = json!({"title": format!("Fault incident {k}"), "impact": "medium",
                "urgency": "high", "assignment_group": "desk"});
            let answer = call(
                &to["resolution"],
                "POST",
                "/v1/incidents",
                &users.agent,
                &body.to_string(),
            );
            let mut h = history.lock().unwrap();
            h.answer("create incident", answer.as_ref().map(|a| a.0));
            if let Some((201, incident)) = answer {
                h.incidents
                    .push(incident["id"].as_str().unwrap().to_owned());
            }
        }
        4 | 5 => {
            let body = json!({"title": format!("Fault change {k}"), "reason": "faults", "category": "normal"});
            let created = call(
                &to["control"],
                "POST",
                "/v1/changes",
                &users.requester,
                &body.to_string(),
            );
            let Some((201, change)) = created else {
                history
                    .lock()
                    .unwrap()
                    .answer("create change", created.map(|a| a.0));
                return;
            };
            let id = change["id"].as_str().unwrap().to_owned();
            let submitted = call(
                &to["control"],
                "POST",
                &format!("/v1/changes/{id}/submit"),
                &users.requester,
                "",
            );
            let mut h = history.lock().unwrap();
            h.answer("submit change", submitted.as_ref().map(|a| a.0));
            if let Some((200, _)) = submitted {
                h.changes.push(id);
            }
        }
        6 | 7 => {
            let Some((200, page)) = call(
                &to["workflow"],
                "GET",
                "/v1/tasks?candidate=me&limit=20",
                &users.manager,
                "",
            ) else {
                return;
            };
            let items = page["items"].as_array().cloned().unwrap_or_default();
            let Some(task) = items.get(usize::try_from(k).unwrap() % items.len().max(1)) else {
                return;
            };
            let (id, outcome, answer) = decide(&to["workflow"], &users.manager, task);
            let mut h = history.lock().unwrap();
            h.answer("decide", answer);
            if answer == Some(200) {
                h.decisions.push((id, outcome));
            }
        }
        8 => {
            let answer = call(
                &to["resolution"],
                "GET",
                "/v1/incidents?limit=20",
                &users.agent,
                "",
            );
            history
                .lock()
                .unwrap()
                .answer("list incidents", answer.map(|a| a.0));
        }
        _ => {
            let answer = call(
                &to["control"],
                "GET",
                "/v1/changes?limit=20",
                &users.requester,
                "",
            );
            history
                .lock()
                .unwrap()
                .answer("list changes", answer.map(|a| a.0));
        }
    }
}

/// Decides `task` as a change manager would: triage says low risk, an approval approves.
fn decide(workflow: &str, manager: &str, task: &Value) -> (String, String, Option<u16>) {
    let (outcome, body) = if task["node"] == "triage" {
        (
            "assessed",
            json!({"outcome": "assessed", "fields": {"risk": "low"}}),
        )
    } else {
        ("approved", json!({"outcome": "approved"}))
    };
    let id = task["id"].as_str().unwrap_or_default().to_owned();
    let answer = call(
        workflow,
        "POST",
        &format!("/v1/tasks/{id}/complete"),
        manager,
        &body.to_string(),
    );
    (id, outcome.to_owned(), answer.map(|a| a.0))
}

/// What a webhook receiver got: each delivery's `webhook-id`, `ce-id` and body.
type Received = Arc<Mutex<Vec<(String, String, String)>>>;

/// A webhook receiver; its address and what it got.
fn sink() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let store = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let store = store.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let (mut length, mut id, mut event) = (0usize, String::new(), String::new());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':') {
                        match name.to_ascii_lowercase().as_str() {
                            "content-length" => length = value.trim().parse().unwrap_or(0),
                            "webhook-id" => value.trim().clone_into(&mut id),
                            "ce-id" => value.trim().clone_into(&mut event),
                            _ => {}
                        }
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                store.lock().unwrap().push((
                    id,
                    event,
                    String::from_utf8_lossy(&body).into_owned(),
                ));
                let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
            });
        }
    });
    (address, seen)
}

/// Waits until `done` holds (checking every second), at most `limit`.
fn settle(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Every ledger entry of `pattern` (all pages).
fn ledger(governance: &str, auditor: &str, pattern: &str) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut after = 0;
    loop {
        let path = format!("/v1/ledger?type={pattern}&limit=1000&after={after}");
        let (200, page) = call(governance, "GET", &path, auditor, "").unwrap() else {
            panic!("the ledger reads");
        };
        entries.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next"].as_i64() {
            Some(next) => after = next,
            None => return entries,
        }
    }
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one story: set up, inject, settle, check"
)]
fn nothing_acknowledged_is_lost_when_the_broker_the_database_and_the_services_fail() {
    let pg = PgNode::start();
    let rabbit = RabbitNode::start();
    let (bus, _) = test_bus_config(&format!("{}?heartbeat={HEARTBEAT}", rabbit.url));
    let mut servers: BTreeMap<&str, Server> = BTreeMap::new();
    for (seed, service) in SERVICES.iter().enumerate() {
        let seed = (seed + 1).to_string();
        let db_url = pg.database();
        let server = start(
            service,
            &db_url,
            &bus,
            &[
                ("MERIDIAN__DATABASE__FAULT_RATE", STORE_FAULT_RATE),
                ("MERIDIAN__DATABASE__FAULT_SEED", &seed),
                ("MERIDIAN__NOTIFIER__WEBHOOKS__ALLOW_PRIVATE", "true"),
                ("MERIDIAN__NOTIFIER__DELIVERY__POLL_MS", "200"),
                ("MERIDIAN__NOTIFIER__DELIVERY__BACKOFF_BASE_SECONDS", "1"),
                ("MERIDIAN__NOTIFIER__DELIVERY__BACKOFF_MAX_SECONDS", "2"),
                ("MERIDIAN__NOTIFIER__DELIVERY__MAX_ATTEMPTS", "50"),
                ("MERIDIAN__NOTIFIER__DELIVERY__LEASE_SECONDS", "10"),
                ("MERIDIAN__GOVERNANCE__LEDGER__SIGNING_KEY", LEDGER_KEY),
            ],
        );
        servers.insert(service, server);
    }
    // Every process of the run, for the count of injected faults in their logs.
    let mut pids: Vec<u32> = servers.values().map(|s| s.child.id()).collect();
    let to: BTreeMap<&str, String> = servers
        .iter()
        .map(|(k, s)| (*k, s.address.clone()))
        .collect();
    let users = Arc::new(Users {
        agent: token("ada", &["agent"]),
        requester: token("rita", &["agent"]),
        manager: token("max", &["change-manager"]),
    });
    let auditor = token("aud", &["auditor"]);

    // The side effect watched: each created incident delivered once to a subscriber.
    let (hook, deliveries) = sink();
    let subscription = json!({"url": format!("http://{hook}/hook"), "event_types": ["resolution.incident.created"],
        "secret": "faults-webhook-secret-0123456789"});
    let subscribed = settle(Duration::from_secs(30), || {
        matches!(
            call(
                &to["notifier"],
                "POST",
                "/v1/webhooks",
                &token("ivy", &["integrator"]),
                &subscription.to_string()
            ),
            Some((201, _))
        )
    });
    assert!(subscribed, "the webhook subscription is made");

    // The background load: four clients, each about four operations a second.
    let history = Arc::new(Mutex::new(History::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (to, users, history, stop, counter) = (
                to.clone(),
                users.clone(),
                history.clone(),
                stop.clone(),
                counter.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let k = counter.fetch_add(1, Ordering::Relaxed);
                    operation(k, &to, &users, &history);
                    std::thread::sleep(Duration::from_millis(250));
                }
            })
        })
        .collect();

    // The faults, one after another, with load between them.
    let began = Instant::now();
    let mut injected: Vec<Value> = Vec::new();
    let mut note = |name: &str| {
        injected.push(json!({"fault": name, "at_s": began.elapsed().as_secs()}));
    };
    let pause = |seconds| std::thread::sleep(Duration::from_secs(seconds));
    pause(5);
    note("rabbitmq stopped and started");
    rabbit.stop();
    pause(3);
    rabbit.start_again();
    pause(5);
    note("rabbitmq killed with SIGKILL and started");
    rabbit.kill();
    pause(2);
    rabbit.start_again();
    pause(5);
    note("postgresql restarted in immediate mode");
    pg.restart_immediate();
    pause(5);
    for service in [
        "workflow",
        "control",
        "resolution",
        "notifier",
        "governance",
    ] {
        note(&format!("{service} killed with SIGKILL and restarted"));
        let server = servers.get_mut(service).unwrap();
        pids.push(server.child.id());
        server.kill_and_restart();
        pause(4);
    }
    note("notifier frozen with SIGSTOP past the heartbeat");
    servers["notifier"].signal("STOP");
    pause(3 * HEARTBEAT);
    servers["notifier"].signal("CONT");
    pause(3);
    note("poison messages published");
    let poison = publish_poison(&rabbit.url, &bus.exchange);
    pause(5);
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let loaded_for = began.elapsed().as_secs();

    // Settle: the remaining approvals decided, every submitted change through its workflow.
    let history = std::mem::take(&mut *history.lock().unwrap());
    let states = |ids: &[String]| -> BTreeMap<String, String> {
        ids.iter()
            .map(|id| {
                let state = match call(
                    &to["control"],
                    "GET",
                    &format!("/v1/changes/{id}"),
                    &users.requester,
                    "",
                ) {
                    Some((200, change)) => change["state"].as_str().unwrap_or_default().to_owned(),
                    Some((status, _)) => format!("answered {status}"),
                    None => "no answer".to_owned(),
                };
                (id.clone(), state)
            })
            .collect()
    };
    let mut last_states = BTreeMap::new();
    settle(Duration::from_secs(240), || {
        if let Some((200, page)) = call(
            &to["workflow"],
            "GET",
            "/v1/tasks?candidate=me&limit=100",
            &users.manager,
            "",
        ) {
            for task in page["items"].as_array().cloned().unwrap_or_default() {
                let _ = decide(&to["workflow"], &users.manager, &task);
            }
        }
        last_states = states(&history.changes);
        last_states.values().all(|s| s == "scheduled")
    });
    let stuck: Vec<_> = last_states
        .iter()
        .filter(|(_, s)| *s != "scheduled")
        .collect();

    // Every acknowledged incident's side effect delivered, and the queues empty.
    let delivered =
        |deliveries: &[(String, String, String)]| -> BTreeMap<String, BTreeSet<String>> {
            let mut by_incident: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (webhook_id, _, body) in deliveries {
                if let Some(id) = serde_json::from_str::<Value>(body)
                    .ok()
                    .and_then(|b| find_id(&b["data"], &history.incidents))
                {
                    by_incident
                        .entry(id)
                        .or_default()
                        .insert(webhook_id.clone());
                }
            }
            by_incident
        };
    settle(Duration::from_secs(90), || {
        delivered(&deliveries.lock().unwrap()).len() >= history.incidents.len()
    });
    let mut queues = Vec::new();
    settle(Duration::from_secs(60), || {
        queues = rabbit.queues();
        queues
            .iter()
            .filter(|(name, _)| !name.ends_with(".dead"))
            .all(|(_, n)| *n == 0)
    });

    // The checker.
    let mut lost: Vec<String> = Vec::new();
    for id in &history.incidents {
        if !matches!(
            call(
                &to["resolution"],
                "GET",
                &format!("/v1/incidents/{id}"),
                &users.agent,
                ""
            ),
            Some((200, _))
        ) {
            lost.push(format!("incident {id}"));
        }
    }
    for (id, state) in &last_states {
        if state == "draft" || state.starts_with("answered") {
            lost.push(format!("submission of change {id} ({state})"));
        }
    }
    for (id, outcome) in &history.decisions {
        match call(
            &to["workflow"],
            "GET",
            &format!("/v1/tasks/{id}"),
            &users.manager,
            "",
        ) {
            Some((200, task))
                if task["state"] == "completed" && task["outcome"] == outcome.as_str() => {}
            other => lost.push(format!("decision {outcome} on task {id}: {other:?}")),
        }
    }
    let by_incident = delivered(&deliveries.lock().unwrap());
    for id in &history.incidents {
        if !by_incident.contains_key(id) {
            lost.push(format!("webhook of incident {id}"));
        }
    }
    let created = ledger(&to["governance"], &auditor, "resolution.incident.created");
    let mut in_ledger: BTreeMap<String, usize> = BTreeMap::new();
    for entry in &created {
        if let Some(id) = find_id(&entry["data"], &history.incidents) {
            *in_ledger.entry(id).or_default() += 1;
        }
    }
    for id in &history.incidents {
        if !in_ledger.contains_key(id) {
            lost.push(format!("ledger entry of incident {id}"));
        }
    }
    let mut dead_letters = 0;
    let mut real_dead_letters = Vec::new();
    for (name, count) in queues.iter().filter(|(name, _)| name.ends_with(".dead")) {
        dead_letters += count;
        let bodies = drain(&rabbit.url, name);
        real_dead_letters.extend(
            bodies
                .into_iter()
                .filter(|b| !poison.contains(b))
                .map(|b| format!("{name}: {b}")),
        );
    }
    lost.extend(
        real_dead_letters
            .iter()
            .map(|d| format!("dead-lettered {d}")),
    );

    let mut duplicated: Vec<String> = Vec::new();
    for (id, ids) in &by_incident {
        if ids.len() > 1 {
            duplicated.push(format!("incident {id} delivered as {} webhooks", ids.len()));
        }
    }
    for (id, n) in &in_ledger {
        if *n > 1 {
            duplicated.push(format!("incident {id} created {n} times in the ledger"));
        }
    }
    let started = ledger(&to["governance"], &auditor, "workflow.instance.started");
    for change in &history.changes {
        let n = started
            .iter()
            .filter(|e| e["data"].to_string().contains(change.as_str()))
            .count();
        if n > 1 {
            duplicated.push(format!("change {change} started {n} workflows"));
        }
    }
    let undrained: u64 = queues
        .iter()
        .filter(|(name, _)| !name.ends_with(".dead"))
        .map(|(_, n)| n)
        .sum();
    let verdict = http_within(
        Duration::from_secs(60),
        &to["governance"],
        "GET",
        "/v1/ledger/verify",
        &auditor,
        "",
    )
    .map(|a| a.1)
    .unwrap_or(Value::Null);
    let ledger_intact =
        verdict["entries"].as_i64().unwrap_or(0) > 0 && verdict["first_bad_seq"].is_null();
    pids.extend(servers.values().map(|s| s.child.id()));
    let store_faults = store_faults_logged(&pids);
    // Faults may make a request fail with 503 (try again); never with another server error.
    let server_errors: usize = history
        .answers
        .iter()
        .filter(|(k, _)| {
            k.rsplit_once(' ')
                .and_then(|(_, s)| s.parse::<u16>().ok())
                .is_some_and(|s| s >= 500 && s != 503)
        })
        .map(|(_, n)| n)
        .sum();

    let report = json!({
        "faults": injected,
        "loaded_seconds": loaded_for,
        "store_fault_rate": STORE_FAULT_RATE,
        "store_faults_injected": store_faults,
        "acknowledged": {"incidents": history.incidents.len(), "changes_submitted": history.changes.len(),
            "decisions": history.decisions.len()},
        "answers": history.answers,
        "server_errors": server_errors,
        "poison_published": poison.len(),
        "dead_lettered": dead_letters,
        "lost": lost.len(), "duplicated": duplicated.len(), "stuck": stuck.len(), "undrained": undrained,
        "ledger_intact": ledger_intact, "ledger": verdict,
        "detail": {"lost": lost, "duplicated": duplicated, "stuck": stuck, "queues": queues},
    });
    std::fs::write(
        reports().join("faults.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    assert!(
        history.incidents.len() > 50 && history.changes.len() > 10 && !history.decisions.is_empty(),
        "the load went on through the faults: {report}"
    );
    assert!(
        lost.is_empty()
            && duplicated.is_empty()
            && stuck.is_empty()
            && undrained == 0
            && ledger_intact,
        "nothing lost, doubled, stuck or left, and the ledger intact: {report}"
    );
    assert_eq!(
        server_errors, 0,
        "503 at worst, never another 5xx: {report}"
    );
    assert!(store_faults > 0, "store faults were injected: {report}");
}

/// The one of `ids` that `data` names (its `id`, or any string field holding one).
fn find_id(data: &Value, ids: &[String]) -> Option<String> {
    let text = data.to_string();
    ids.iter().find(|id| text.contains(id.as_str())).cloned()
}

/// How many store faults the logs of the processes `pids` say were injected.
fn store_faults_logged(pids: &[u32]) -> usize {
    let Ok(entries) = std::fs::read_dir(reports()) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            pids.iter()
                .any(|pid| name.ends_with(&format!("-{pid}.log")))
        })
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .map(|log| log.matches(meridian_chassis::faults::LOG_MESSAGE).count())
        .sum()
}

/// Publishes messages no consumer can read, to every service's queue: some without the
/// CloudEvents attributes, some well addressed with a payload that does not decode. Their bodies.
fn publish_poison(url: &str, exchange: &str) -> Vec<String> {
    on_channel(url, async |channel| {
        channel
            .confirm_select(lapin::options::ConfirmSelectOptions::default())
            .await
            .unwrap();
        let mut bodies = Vec::new();
        let keys = [
            "resolution.incident.created",
            "control.change.submitted",
            "workflow.task.created",
        ];
        for (i, key) in keys.iter().enumerate() {
            for addressed in [false, true] {
                let body = format!("poison {i} {addressed}: not a protobuf message \u{fffd}");
                let properties = if addressed {
                    meridian_chassis::bus::Envelope::event(
                        "faults",
                        key,
                        "poison",
                        "faults",
                        body.as_bytes().to_vec(),
                        meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
                    )
                    .properties()
                } else {
                    lapin::BasicProperties::default()
                        .with_delivery_mode(2)
                        .with_type((*key).into())
                        .with_message_id(format!("poison-{i}").into())
                };
                channel
                    .basic_publish(
                        exchange.into(),
                        (*key).into(),
                        lapin::options::BasicPublishOptions::default(),
                        body.as_bytes(),
                        properties,
                    )
                    .await
                    .unwrap()
                    .await
                    .unwrap();
                bodies.push(body);
            }
        }
        bodies
    })
}

/// Takes every message off `queue`; their bodies.
fn drain(url: &str, queue: &str) -> Vec<String> {
    on_channel(url, async |channel| {
        let mut bodies = Vec::new();
        while let Ok(Some(message)) = channel
            .basic_get(
                queue.into(),
                lapin::options::BasicGetOptions { no_ack: true },
            )
            .await
        {
            bodies.push(String::from_utf8_lossy(&message.delivery.data).into_owned());
        }
        bodies
    })
}

/// Runs `work` on a channel of a new connection to the broker at `url`, then closes it.
fn on_channel<T>(url: &str, work: impl AsyncFnOnce(&lapin::Channel) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
            .await
            .unwrap();
        let channel = conn.create_channel().await.unwrap();
        let out = work(&channel).await;
        let _ = conn.close(200, "done".into()).await;
        out
    })
}
