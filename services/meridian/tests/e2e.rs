//! `meridian serve --service resolution` as a real process on port 0 against PostgreSQL and
//! RabbitMQ: an incident created over HTTP arrives as an event on a queue. `meridian workflows
//! validate` as a process: exit code and positions.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lapin::options::BasicGetOptions;
use meridian_chassis::bus::{RabbitBus, Subscription};
use meridian_chassis::telemetry::Metrics;
use meridian_chassis::testing::{Backend, TestDb, amqp_url, dev_auth_config, test_bus_config};
use meridian_proto::Message;
use meridian_proto::resolution::v1::IncidentCreated;
use secrecy::ExposeSecret;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request over a plain socket; returns the status and the body.
fn http(address: &str, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_created_over_http_arrives_as_an_event_on_a_queue() {
    let db = TestDb::empty(Backend::Postgres);
    let url = amqp_url();
    let (bus, mut names) = test_bus_config(&url);
    let queue = format!("{}e2e-observer", bus.queue_prefix);
    names.queue(&queue);
    names.queue(&format!("{}resolution", bus.queue_prefix));
    // The observer queue exists before the event is published.
    let rabbit = RabbitBus::new(bus.clone(), Metrics::new().unwrap());
    let connection = lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    rabbit
        .declare_queue(
            &channel,
            &Subscription {
                queue: queue.clone(),
                bindings: vec!["resolution.incident.#".into()],
            },
        )
        .await
        .unwrap();

    let auth = dev_auth_config();
    let mut child = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["serve", "--service", "resolution", "--migrate"])
        .env("MERIDIAN__HTTP__BIND", "127.0.0.1:0")
        .env("MERIDIAN__HTTP__WORKERS", "1")
        .env("MERIDIAN__DATABASE__URL", &db.url)
        .env("MERIDIAN__BUS__URL", &url)
        .env("MERIDIAN__BUS__EXCHANGE", &bus.exchange)
        .env(
            "MERIDIAN__BUS__DEAD_LETTER_EXCHANGE",
            &bus.dead_letter_exchange,
        )
        .env("MERIDIAN__BUS__QUEUE_PREFIX", &bus.queue_prefix)
        .env("MERIDIAN__AUTH__MODE", "dev")
        .env("MERIDIAN__AUTH__SECRET", auth.secret.expose_secret())
        .env("MERIDIAN__TELEMETRY__LOG_LEVEL", "warn")
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

    let authenticator = meridian_chassis::auth::Authenticator::new(&auth).unwrap();
    let token = authenticator
        .mint_dev(
            "alice",
            &["agent".into()],
            meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
            chrono::Duration::minutes(5),
        )
        .unwrap();
    let (status, body) = http(
        &address,
        "POST",
        "/v1/incidents",
        &token,
        r#"{"title": "Checkout is down", "impact": "high", "urgency": "high"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (status, body) = http(&address, "POST", "/v1/incidents", &token, r#"{"title": 1}"#);
    assert_eq!(status, 400, "{body}");
    let (status, _) = http(&address, "GET", "/readyz", &token, "");
    assert_eq!(status, 200);

    let mut message = None;
    for _ in 0..200 {
        if let Some(got) = channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            message = Some(got);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let message = message.expect("the event arrives within 20 s");
    let properties = &message.delivery.properties;
    assert_eq!(
        properties.kind().as_ref().map(|k| k.as_str()),
        Some("resolution.incident.created")
    );
    let event = IncidentCreated::decode(message.delivery.data.as_slice()).unwrap();
    let incident = event.incident.unwrap();
    assert_eq!(incident.id, created["id"].as_str().unwrap());
    assert_eq!(incident.priority, 1);
    let envelope = meridian_chassis::bus::Envelope::from_amqp(properties, vec![]).unwrap();
    assert_eq!(envelope.actor.as_deref(), Some("alice"));
    assert_eq!(envelope.subject, incident.id);
    drop(server);
    let _ = connection.close(200, "done".into()).await;
}

#[test]
fn workflows_validate_passes_the_shipped_definitions_and_fails_a_bad_one_with_positions() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ok = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["workflows", "validate", "workflows"])
        .current_dir(&root)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let shipped = std::fs::read_dir(root.join("workflows"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "yaml"))
        })
        .count();
    assert!(shipped >= 7, "the shipped definitions are there");
    assert_eq!(listed.lines().count(), shipped, "one line each: {listed}");
    assert!(listed.contains("ok change-advisory-board "), "{listed}");

    let dir = std::env::temp_dir().join(format!("meridian-wf-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "id: bad\nname: Bad\nnodes:\n  - id: s\n    type: start\n    next: gate\n  - id: gate\n    type: exclusive_gateway\n    branches:\n      - when: 'x >'\n        next: e\n  - id: e\n    type: end\n",
    )
    .unwrap();
    let failed = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["workflows", "validate"])
        .arg(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let errors = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{errors}");
    let file = bad.display();
    assert!(
        errors.contains(&format!(
            "{file}:7:5: nodes[1]: an exclusive gateway needs a `default`"
        )),
        "{errors}"
    );
    assert!(
        errors.contains(&format!(
            "{file}:10:15: nodes[1].branches[0].when: CEL `x >` does not parse"
        )),
        "{errors}"
    );
}
