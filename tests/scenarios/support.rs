//! Helpers shared by the scenarios.

use std::future::Future;
use std::time::Duration;

use lapin::options::BasicGetOptions;
use meridian_chassis::bus::{Bus, RabbitBus, Subscription};
use meridian_chassis::config::BusConfig;
use meridian_chassis::outbox::{Relay, Waker};
use meridian_chassis::telemetry::Metrics;
use meridian_chassis::testing::TestDb;

/// Polls `check` every 100 ms until it returns `Some`, for at most `limit` (a bound on the
/// wait, not a timing assertion).
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A RabbitMQ bus on `config`.
pub fn rabbit(config: &BusConfig) -> (Bus, RabbitBus) {
    let rabbit = RabbitBus::new(config.clone(), Metrics::new().unwrap());
    (Bus::Rabbit(rabbit.clone()), rabbit)
}

/// Declares `queue` bound to `patterns` (with its dead-letter queue) so events are kept.
pub async fn declare(rabbit: &RabbitBus, url: &str, queue: &str, patterns: &[&str]) {
    let connection = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let subscription = Subscription {
        queue: queue.to_owned(),
        bindings: patterns.iter().map(|p| (*p).to_owned()).collect(),
    };
    rabbit.declare_queue(&channel, &subscription).await.unwrap();
    let _ = connection.close(200, "declared".into()).await;
}

/// Takes every message now in `queue` (acknowledging them).
pub async fn drain(url: &str, queue: &str) -> Vec<lapin::message::BasicGetMessage> {
    let Ok(connection) =
        lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await
    else {
        return Vec::new();
    };
    let Ok(channel) = connection.create_channel().await else {
        return Vec::new();
    };
    let mut messages = Vec::new();
    while let Ok(Some(message)) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
    {
        messages.push(message);
    }
    let _ = connection.close(200, "drained".into()).await;
    messages
}

/// Runs the outbox relay of `service` on `db` into `bus`.
pub fn relay(service: &'static str, db: &TestDb, bus: &Bus, waker: &Waker) {
    tokio::spawn(
        Relay {
            service,
            db: db.db.clone(),
            url: secrecy::SecretString::from(db.url.clone()),
            bus: bus.clone(),
            batch_size: 64,
            poll_interval: Duration::from_millis(100),
            waker: waker.clone(),
            metrics: Metrics::new().unwrap(),
        }
        .run(),
    );
}

/// Sends a request to `app` as `who` (user, roles) with a dev token from `auth`; the status and
/// the JSON body (`null` when there is none).
pub async fn call<S, B>(
    app: &S,
    auth: &meridian_chassis::auth::Authenticator,
    who: (&str, &[&str]),
    method: actix_web::http::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (actix_web::http::StatusCode, serde_json::Value)
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    use meridian_chassis::Clock as _;
    let roles: Vec<String> = who.1.iter().map(|r| (*r).to_owned()).collect();
    let token = auth
        .mint_dev(
            who.0,
            &roles,
            meridian_chassis::SystemClock.now(),
            chrono::Duration::minutes(10),
        )
        .unwrap();
    let mut req = actix_web::test::TestRequest::default()
        .method(method)
        .uri(path)
        .insert_header(("Authorization", format!("Bearer {token}")));
    if let Some(body) = body {
        req = req.set_json(body);
    }
    let response = app.call(req.to_request()).await.unwrap();
    let status = response.status();
    let bytes = actix_web::test::read_body(response).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// The open tasks at `node` of the instance with business key `key` that the caller may work
/// (as assignee or candidate), read through `get` (a GET of the task API as the caller).
pub async fn open_tasks<F, Fut>(get: F, key: &str, node: &str) -> Vec<serde_json::Value>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = (actix_web::http::StatusCode, serde_json::Value)>,
{
    let mut found = Vec::new();
    for query in ["assignee=me", "candidate=me"] {
        let (status, page) = get(format!("/v1/tasks?{query}")).await;
        assert_eq!(status, actix_web::http::StatusCode::OK, "{page}");
        found.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["node"] == node && t["business_key"] == key)
                .cloned(),
        );
    }
    found
}

/// Waits (at most 20 s) for an open task at `node` of `key` that `who` may work, as
/// [`open_tasks`].
pub async fn wait_for_task<F, Fut>(get: F, key: &str, node: &str, who: &str) -> serde_json::Value
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = (actix_web::http::StatusCode, serde_json::Value)>,
{
    eventually(Duration::from_secs(20), || async {
        open_tasks(&get, key, node).await.into_iter().next()
    })
    .await
    .unwrap_or_else(|| panic!("{who} gets a {node} task for {key}"))
}

/// The workflow engine on `db` with the shipped definitions deployed, consuming its triggers,
/// replies and messages from `bus`.
pub async fn workflow(
    bus: &Bus,
    prefix: &str,
    db: &TestDb,
    config: meridian_workflow::WorkflowConfig,
    clock: std::sync::Arc<dyn meridian_chassis::Clock>,
    waker: Waker,
) -> meridian_workflow::Workflow {
    let workflow = meridian_workflow::Workflow::new(db.db.clone(), clock, config, waker);
    let workflows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows");
    meridian_workflow::deploy_folder(&workflow, &workflows)
        .await
        .unwrap();
    let all = workflow.deployed().await.unwrap();
    let bindings = meridian_workflow::events::bindings(all.iter().map(AsRef::as_ref));
    meridian_workflow::events::start(bus, prefix, workflow.clone(), bindings);
    workflow
}
