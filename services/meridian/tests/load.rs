//! Load held: the resolution, control and workflow services as real processes against
//! PostgreSQL and RabbitMQ, driven at a fixed rate (open loop: each operation is due at its
//! slot, and its latency counts from that slot, so a slow server cannot slow the load down and
//! hide its own delay) with a mix of reads, incident and change creations and approval
//! decisions; then above capacity, where load must be shed with 503 and `Retry-After`, never a
//! 500. The figures go to `$MERIDIAN_REPORTS/load.json` (rate and seconds from
//! `MERIDIAN_LOAD_RPS` and `MERIDIAN_LOAD_SECONDS`: 100 and 60 in `make test`, 300 and 600 in
//! `make soak`); nothing here asserts on a time.
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
#![expect(
    clippy::disallowed_methods,
    reason = "the load's rate comes from the environment"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_chassis::config::BusConfig;
use meridian_chassis::testing::{Backend, TestDb, amqp_url, test_bus_config};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

const SECRET: &str = "load-secret-load-secret-load-secret-0123";

struct Server {
    child: Child,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Peak resident memory, KiB.
    fn peak_rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }
}

/// Where the reports go (`MERIDIAN_REPORTS`), made.
fn reports() -> std::path::PathBuf {
    let dir = std::env::var_os("MERIDIAN_REPORTS").map_or_else(
        || std::env::temp_dir().join("meridian-reports"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start(service: &str, db_url: &str, bus: &BusConfig, extra: &[(&str, &str)]) -> Server {
    let workflows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    let mut command = Command::new(env!("CARGO_BIN_EXE_meridian"));
    command
        .args(["serve", "--service", service, "--migrate"])
        .env("MERIDIAN__HTTP__BIND", "127.0.0.1:0")
        .env("MERIDIAN__HTTP__WORKERS", "2")
        .env("MERIDIAN__DATABASE__URL", db_url)
        .env("MERIDIAN__DATABASE__POOL_SIZE", "8")
        .env("MERIDIAN__BUS__URL", bus.url.expose_secret())
        .env("MERIDIAN__BUS__EXCHANGE", &bus.exchange)
        .env(
            "MERIDIAN__BUS__DEAD_LETTER_EXCHANGE",
            &bus.dead_letter_exchange,
        )
        .env("MERIDIAN__BUS__QUEUE_PREFIX", &bus.queue_prefix)
        .env("MERIDIAN__AUTH__MODE", "dev")
        .env("MERIDIAN__AUTH__SECRET", SECRET)
        .env("MERIDIAN__TELEMETRY__LOG_LEVEL", "warn")
        .env("MERIDIAN__WORKFLOW__DEFINITIONS_DIR", workflows)
        .env("MERIDIAN__CONTROL__CAB_MEMBERS", "ann,ben,cat");
    for (k, v) in extra {
        command.env(k, v);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
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
    // The server's log (its stdout) goes on to the reports folder, for the cause of any 5xx.
    let log = reports().join(format!("{service}-{}.log", child.id()));
    std::thread::spawn(move || {
        if let Ok(mut file) = std::fs::File::create(log) {
            for line in lines.map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
            }
        }
    });
    Server { child, address }
}

/// One HTTP/1.1 request: the status and the body (`None`: no answer at all).
fn http(
    address: &str,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> Option<(u16, Value, String)> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Some((
        status,
        serde_json::from_str(body).unwrap_or(Value::Null),
        head.to_ascii_lowercase(),
    ))
}

fn token(sub: &str, roles: &[&str]) -> String {
    let auth = meridian_chassis::auth::Authenticator::new(&meridian_chassis::config::AuthConfig {
        secret: secrecy::SecretString::from(SECRET.to_owned()),
        ..meridian_chassis::testing::dev_auth_config()
    })
    .unwrap();
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    auth.mint_dev(
        sub,
        &roles,
        meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
        chrono::Duration::hours(2),
    )
    .unwrap()
}

struct Targets {
    resolution: String,
    control: String,
    workflow: String,
    agent: String,
    requester: String,
    manager: String,
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
    match slot % 20 {
        0..=4 => ok(http(&t.resolution, "POST", "/v1/incidents", &t.agent,
            &json!({"title": format!("Load incident {slot}"), "impact": "medium", "urgency": "high", "assignment_group": "desk"}).to_string()), &[201]),
        5 | 6 => {
            let Some((201, change, _)) = http(&t.control, "POST", "/v1/changes", &t.requester,
                &json!({"title": format!("Load change {slot}"), "reason": "load", "category": "normal"}).to_string()) else {
                return false;
            };
            let id = change["id"].as_str().unwrap_or_default();
            ok(http(&t.control, "POST", &format!("/v1/changes/{id}/submit"), &t.requester, ""), &[200])
        }
        7 | 8 => {
            // Deciders race as approvers do: one of the open tasks, chosen by the slot; a task
            // another decider closed first is answered 409 `task_closed`, which is right.
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
        9..=13 => ok(http(&t.resolution, "GET", "/v1/incidents?limit=20", &t.agent, ""), &[200]),
        14..=16 => ok(http(&t.control, "GET", "/v1/changes?limit=20", &t.requester, ""), &[200]),
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
            (ok, due.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(handles.len());
    let mut errors = 0usize;
    for handle in handles {
        let (ok, latency) = handle.await.unwrap();
        errors += usize::from(!ok);
        latencies.push(latency);
    }
    latencies.sort();
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
