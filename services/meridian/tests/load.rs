//! Load held: the resolution, control and workflow services as real processes against
//! PostgreSQL and RabbitMQ, driven at a fixed rate (open loop: each operation is due at its
//! slot, and its latency counts from that slot, so a slow server cannot slow the load down and
//! hide its own delay) with a mix of reads, incident and change creations and approval
//! decisions; then above capacity, where load must be shed with 503 and `Retry-After`, never a
//! 500. The figures go to `$MERIDIAN_REPORTS/load.json` (rate and seconds from
//! `MERIDIAN_LOAD_RPS` and `MERIDIAN_LOAD_SECONDS`: 100 and 60 in `make test`, 300 and 600 in
//! `make soak`); nothing here asserts on a time.
#![expect(
    clippy::disallowed_methods,
    reason = "the load's rate comes from the environment"
)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_chassis::testing::{Backend, TestDb, amqp_url, test_bus_config};
use serde_json::{Value, json};
use support::{http, reports, start, token};

struct Targets {
    resolution: String,
    control: String,
    workflow: String,
    agent: String,
    requester: String,
    manager: String,
}

/// The kinds of operation in the mix, by `slot % 20`.
const KINDS: [&str; 6] = [
    "create incident",
    "create and submit change",
    "decide task",
    "list incidents",
    "list changes",
    "list tasks",
];

fn kind_of(slot: u64) -> usize {
    match slot % 20 {
        0..=4 => 0,
        5 | 6 => 1,
        7 | 8 => 2,
        9..=13 => 3,
        14..=16 => 4,
        _ => 5,
    }
}

/// One operation of the mix; whether it went as it should.
fn operation(slot: u64, t: &Targets) -> bool {
    let ok = |r: Option<(u16, Value, String)>, want: &[u16]| match r {
        Some((s, _, _)) if want.contains(&s) => true,
        Some((s, b, _)) => {
            eprintln!("slot {slot}: {s} {b}");
            false
        }
        None => {
            eprintln!("slot {slot}: no answer");
            false
        }
    };
    match kind_of(slot) {
        0 => ok(http(&t.resolution, "POST", "/v1/incidents", &t.agent,
            &json!({"title": format!("Load incident {slot}"), "impact": "medium", "urgency": "high", "assignment_group": "desk"}).to_string()), &[201]),
        1 => {
            let Some((201, change, _)) = http(&t.control, "POST", "/v1/changes", &t.requester,
                &json!({"title": format!("Load change {slot}"), "reason": "load", "category": "normal"}).to_string()) else {
                return false;
            };
            let id = change["id"].as_str().unwrap_or_default();
            ok(http(&t.control, "POST", &format!("/v1/changes/{id}/submit"), &t.requester, ""), &[200])
        }
        2 => {
            // Deciders race as approvers do: one of the open tasks, chosen by the slot; a task
            // another decider closed first (even when that decision ended the instance) is
            // answered 409 `task_closed`, which is right.
            let Some((200, page, _)) = http(&t.workflow, "GET", "/v1/tasks?candidate=me&limit=20", &t.manager, "") else {
                return false;
            };
            let items = page["items"].as_array().cloned().unwrap_or_default();
            #[expect(clippy::cast_possible_truncation, reason = "an index among 20 tasks")]
            let pick = (slot as usize) % items.len().max(1);
            match items.get(pick) {
                None => true,
Some(task) => {
                    // Triage assesses the risk; a manager's approval approves.
                    let decision = if task["node"] == "triage" {
                        json!({"outcome": "assessed", "fields": {"risk": "low"}})
                    } else {
                        json!({"outcome": "approved"})
                    };
                    let path = format!("/v1/tasks/{}/complete", task["id"].as_str().unwrap_or_default());
                    match http(&t.workflow, "POST", &path, &t.manager, &decision.to_string()) {
                        Some((409, body, _)) if body["code"] == "task_closed" => true,
                        other => ok(other, &[200]),
                    }
                }
            }
        }
        3 => ok(http(&t.resolution, "GET", "/v1/incidents?limit=20", &t.agent, ""), &[200]),
        4 => ok(http(&t.control, "GET", "/v1/changes?limit=20", &t.requester, ""), &[200]),
        _ => ok(http(&t.workflow, "GET", "/v1/tasks?candidate=me&limit=20", &t.manager, ""), &[200]),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into the samples"
    )]
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_is_held_at_a_fixed_rate_and_shed_above_capacity() {
    let rate: u64 = std::env::var("MERIDIAN_LOAD_RPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let seconds: u64 = std::env::var("MERIDIAN_LOAD_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let (bus, mut names) = test_bus_config(&amqp_url());
    for queue in ["resolution", "resolution.commands", "control", "workflow"] {
        names.queue(&format!("{}{queue}", bus.queue_prefix));
    }
    let dbs: Vec<TestDb> = (0..3).map(|_| TestDb::empty(Backend::Postgres)).collect();
    let workflow = start("workflow", &dbs[2].url, &bus, &[]);
    let control = start("control", &dbs[1].url, &bus, &[]);
    let resolution = start("resolution", &dbs[0].url, &bus, &[]);
    let targets = Arc::new(Targets {
        resolution: resolution.address.clone(),
        control: control.address.clone(),
        workflow: workflow.address.clone(),
        agent: token("ada", &["agent"]),
        requester: token("rita", &["agent"]),
        manager: token("max", &["change-manager"]),
    });
    // Open loop: slot k is due at start + k / rate, whatever happened to the ones before.
    let start_at = Instant::now() + Duration::from_millis(200);
    let total = rate * seconds;
    let mut handles = Vec::with_capacity(usize::try_from(total).unwrap());
    for slot in 0..total {
        let due = start_at + Duration::from_micros(slot * 1_000_000 / rate);
        tokio::time::sleep_until(due.into()).await;
        let targets = targets.clone();
        handles.push(tokio::spawn(async move {
            let ok = tokio::task::spawn_blocking(move || operation(slot, &targets))
                .await
                .unwrap_or(false);
            (slot, ok, due.elapsed())
        }));
    }
    let mut samples = Vec::with_capacity(handles.len());
    for handle in handles {
        samples.push(handle.await.unwrap());
    }
    let errors = samples.iter().filter(|(_, ok, _)| !ok).count();
    let mut latencies: Vec<Duration> = samples.iter().map(|(_, _, l)| *l).collect();
    latencies.sort();
    // Where the time went: each kind of operation, and each tenth of the run (by due time).
    let figures = |mut of: Vec<(bool, Duration)>| {
        of.sort_by_key(|(_, l)| *l);
        let sorted: Vec<Duration> = of.iter().map(|(_, l)| *l).collect();
        json!({
            "operations": of.len(),
            "errors": of.iter().filter(|(ok, _)| !ok).count(),
            "p50_ms": percentile(&sorted, 0.50).as_millis(),
            "p99_ms": percentile(&sorted, 0.99).as_millis(),
            "max_ms": sorted.last().copied().unwrap_or_default().as_millis(),
        })
    };
    let by_kind: serde_json::Map<String, Value> = KINDS
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let of = samples
                .iter()
                .filter(|(slot, _, _)| kind_of(*slot) == k)
                .map(|(_, ok, l)| (*ok, *l))
                .collect();
            ((*name).to_owned(), figures(of))
        })
        .collect();
    let tenth = total.div_ceil(10).max(1);
    let timeline: Vec<Value> = (0..total.div_ceil(tenth))
        .map(|i| {
            let of = samples
                .iter()
                .filter(|(slot, _, _)| slot / tenth == i)
                .map(|(_, ok, l)| (*ok, *l))
                .collect();
            let mut f = figures(of);
            f["from_s"] = json!(i * tenth / rate);
            f
        })
        .collect();
    let rss: Vec<u64> = [&resolution, &control, &workflow]
        .iter()
        .map(|s| s.peak_rss_kib())
        .collect();

    // Above capacity: a resolution process that serves 4 requests at once, 200 at the same time.
    let small = start(
        "resolution",
        &dbs[0].url,
        &bus,
        &[("MERIDIAN__HTTP__MAX_IN_FLIGHT", "4")],
    );
    let address = small.address.clone();
    let agent = targets.agent.clone();
    let burst: Vec<_> = (0..200)
        .map(|_| {
            let (address, agent) = (address.clone(), agent.clone());
            tokio::task::spawn_blocking(move || {
                http(&address, "GET", "/v1/incidents?limit=200", &agent, "")
            })
        })
        .collect();
    let (mut served, mut shed, mut bad) = (0usize, 0usize, Vec::new());
    for b in burst {
        match b.await.unwrap() {
            Some((200, _, _)) => served += 1,
            Some((503, _, head)) if head.contains("retry-after: 1") => shed += 1,
            other => bad.push(other.map(|(s, b, _)| (s, b))),
        }
    }

    let report = json!({
        "rate": rate, "seconds": seconds, "operations": latencies.len(), "errors": errors,
        "p50_ms": percentile(&latencies, 0.50).as_millis(),
        "p99_ms": percentile(&latencies, 0.99).as_millis(),
        "max_ms": latencies.last().copied().unwrap_or_default().as_millis(),
        "peak_rss_mib": {"resolution": rss[0] / 1024, "control": rss[1] / 1024, "workflow": rss[2] / 1024},
        "by_kind": by_kind,
        "timeline": timeline,
        "above_capacity": {"requests": 200, "served": served, "shed_with_retry_after": shed, "other": bad.len()},
    });
    let dir = reports();
    std::fs::write(
        dir.join("load.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    assert_eq!(errors, 0, "every operation answered as it should: {report}");
    assert!(
        bad.is_empty(),
        "above capacity, only 200 or 503 with Retry-After: {bad:?}"
    );
    assert!(shed > 0 && served > 0, "some served, some shed: {report}");
}
