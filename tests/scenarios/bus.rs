//! The bus against the real RabbitMQ.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use meridian_chassis::bus::{Envelope, HandleError, Subscription};
use meridian_chassis::db::DbError;
use meridian_chassis::outbox::{Relay, Waker};
use meridian_chassis::telemetry::Metrics;
use meridian_chassis::testing::{Backend, RabbitNode, TestDb, amqp_url, test_bus_config};
use meridian_chassis::{Clock, SystemClock, audit, inbox};
use meridian_proto::Message;
use meridian_proto::resolution::v1::IncidentCreated;
use meridian_proto::service_level::v1::{Criticality, ServicePublished, ServiceStatus};
use meridian_resolution::domain::incident::{Incident, NewIncident};
use meridian_resolution::domain::priority::{Level, PriorityMatrix};
use meridian_resolution::store::incidents::{self, Context};
use meridian_resolution::store::{MIGRATIONS, catalogue};

use crate::support::{declare, drain, eventually, rabbit};

fn matrix() -> PriorityMatrix {
    PriorityMatrix::itil()
}

async fn create_incident(db: &meridian_chassis::db::Db, title: String) -> uuid::Uuid {
    db.transaction(move |conn| -> Result<uuid::Uuid, DbError> {
        let number = incidents::next_number(conn)?;
        let now = SystemClock.now();
        let (incident, events) = Incident::open(
            uuid::Uuid::now_v7(),
            number,
            NewIncident {
                title,
                description: String::new(),
                caller: "carol".into(),
                service: None,
                configuration_items: vec![],
                category: None,
                impact: Level::High,
                urgency: Level::Low,
                assignment_group: None,
                assignee: None,
            },
            &matrix(),
            "alice",
            now,
        );
        let ctx = Context {
            actor: "alice",
            now,
            correlation_id: None,
        };
        incidents::insert(conn, &incident, &events, ctx)?;
        Ok(incident.id)
    })
    .await
    .unwrap()
}

/// Incidents committed while RabbitMQ is down are all published, once, when it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_created_while_rabbitmq_is_stopped_are_published_when_it_is_back() {
    let node = RabbitNode::start();
    let (config, mut names) = test_bus_config(&node.url);
    let queue = format!("{}observer", config.queue_prefix);
    names.queue(&queue);
    let (bus, rabbit) = rabbit(&config);
    declare(&rabbit, &node.url, &queue, &["resolution.incident.#"]).await;

    let db = TestDb::new(Backend::Postgres, MIGRATIONS).await;
    let waker = Waker::default();
    tokio::spawn(
        Relay {
            service: "resolution",
            db: db.db.clone(),
            url: secrecy::SecretString::from(db.url.clone()),
            bus,
            batch_size: 8,
            poll_interval: Duration::from_millis(100),
            waker: waker.clone(),
            metrics: Metrics::new().unwrap(),
        }
        .run(),
    );
    // One before the outage proves the path works.
    let first = create_incident(&db.db, "before".into()).await;
    waker.wake();
    let before = eventually(Duration::from_secs(20), || async {
        let messages = drain(&node.url, &queue).await;
        (!messages.is_empty()).then_some(messages)
    })
    .await
    .expect("the first event arrives");
    assert_eq!(before.len(), 1);

    node.stop();
    let mut created = HashSet::new();
    for i in 0..20 {
        created.insert(create_incident(&db.db, format!("during outage {i}")).await);
        waker.wake();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let backlog = db
        .db
        .run(|conn| meridian_chassis::outbox::backlog(conn).map_err(DbError::from))
        .await
        .unwrap();
    assert_eq!(
        backlog, 20,
        "the outbox keeps what the broker could not take"
    );

    node.start_again();
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while received.len() < 20 && tokio::time::Instant::now() < deadline {
        received.extend(drain(&node.url, &queue).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all = (received.len() == 20).then_some(());
    assert!(
        all.is_some(),
        "only {} of 20 events arrived",
        received.len()
    );
    let ids: HashSet<uuid::Uuid> = received
        .iter()
        .map(|m| {
            let event = IncidentCreated::decode(m.delivery.data.as_slice()).unwrap();
            event.incident.unwrap().id.parse().unwrap()
        })
        .collect();
    assert_eq!(
        ids, created,
        "every incident created during the outage was published"
    );
    assert!(!ids.contains(&first));
    let backlog = db
        .db
        .run(|conn| meridian_chassis::outbox::backlog(conn).map_err(DbError::from))
        .await
        .unwrap();
    assert_eq!(backlog, 0);
}

fn service_published(id: &str, revision: i64) -> Envelope {
    Envelope {
        id: uuid::Uuid::now_v7(),
        event_type: "service_level.service.published".into(),
        source: "/meridian/service-level".into(),
        subject: id.into(),
        time: SystemClock.now(),
        correlation_id: None,
        causation_id: None,
        actor: Some("system:test".into()),
        payload: ServicePublished {
            id: id.into(),
            name: format!("{id} service"),
            owner: "it".into(),
            criticality: Criticality::Critical.into(),
            status: ServiceStatus::Live.into(),
            revision,
            ..ServicePublished::default()
        }
        .encode_to_vec(),
    }
}

/// The same message delivered twice has one effect: the inbox claim shares the effect's
/// transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_delivered_twice_has_one_effect() {
    let url = amqp_url();
    let (config, mut names) = test_bus_config(&url);
    let queue = format!("{}counter", config.queue_prefix);
    names.queue(&queue);
    let (bus, rabbit) = rabbit(&config);
    let db = TestDb::new(Backend::Postgres, MIGRATIONS).await;
    declare(&rabbit, &url, &queue, &["service_level.#"]).await;
    let handler_db = db.db.clone();
    bus.consume(
        Subscription {
            queue: queue.clone(),
            bindings: vec!["service_level.#".into()],
        },
        Arc::new(move |envelope: Envelope| {
            let db = handler_db.clone();
            async move {
                db.transaction(move |conn| -> Result<(), DbError> {
                    let id = envelope.id.to_string();
                    if inbox::claim(conn, "test.counter", &id, SystemClock.now())? {
                        // The effect: one audit row per handled message.
                        audit::record::<(), ()>(
                            conn,
                            audit::Entry {
                                actor: "system:test",
                                action: "message.handled",
                                entity_type: "message",
                                entity_id: &id,
                                before: None,
                                after: None,
                                at: SystemClock.now(),
                            },
                        )?;
                    }
                    Ok(())
                })
                .await
                .map_err(|e| HandleError::Transient(e.to_string()))
            }
        }),
    );
    let message = service_published("email", 1);
    let other = service_published("payroll", 1);
    // Published twice: the broker delivers two copies with the same id.
    bus.publish(&[message.clone(), message.clone(), other.clone()])
        .await
        .unwrap();
    let handled = eventually(Duration::from_secs(20), || {
        let db = db.db.clone();
        async move {
            let counts = db
                .run(move |conn| -> Result<(usize, usize), DbError> {
                    let first = audit::list_for(conn, "message", &message.id.to_string())?.len();
                    let second = audit::list_for(conn, "message", &other.id.to_string())?.len();
                    Ok((first, second))
                })
                .await
                .ok()?;
            (counts.1 == 1).then_some(counts)
        }
    })
    .await
    .expect("the messages are handled");
    // The duplicate was published before `other`; once `other` is handled, so is the duplicate.
    assert_eq!(handled, (1, 1), "the duplicate had a second effect");
}

/// A message that cannot be decoded goes to the dead-letter queue at once, and the consumer
/// handles the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_message_is_dead_lettered_and_the_consumer_keeps_going() {
    let url = amqp_url();
    let (config, mut names) = test_bus_config(&url);
    let queue = format!("{}resolution", config.queue_prefix);
    names.queue(&queue);
    let (bus, rabbit) = rabbit(&config);
    let db = TestDb::new(Backend::Postgres, MIGRATIONS).await;
    // Declare first so the poison message has a queue to land in.
    declare(&rabbit, &url, &queue, &["service_level.service.*"]).await;
    meridian_resolution::events::consume::start(
        &bus,
        &config.queue_prefix,
        db.db.clone(),
        Arc::new(SystemClock),
        PriorityMatrix::itil(),
        meridian_resolution::config::ProblemsConfig {
            recurrence_window_days: 90,
            trend_window_days: 7,
            trend_min_incidents: 3,
        },
    );

    let connection = lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    for payload in [&b"not protobuf, no headers"[..], &[0xff, 0x00, 0x13][..]] {
        channel
            .basic_publish(
                config.exchange.as_str().into(),
                "service_level.service.published".into(),
                BasicPublishOptions::default(),
                payload,
                BasicProperties::default(),
            )
            .await
            .unwrap();
    }
    // A well-formed envelope whose payload is not a ServicePublished.
    let mut bad_payload = service_published("broken", 1);
    bad_payload.payload = vec![0xff, 0xff, 0xff];
    bus.publish(&[bad_payload, service_published("email", 3)])
        .await
        .unwrap();
    let _ = connection.close(200, "done".into()).await;

    let row = eventually(Duration::from_secs(20), || {
        let db = db.db.clone();
        async move {
            db.run(|conn| catalogue::find(conn, "email").map_err(DbError::from))
                .await
                .ok()
                .flatten()
        }
    })
    .await
    .expect("the good message after the poison ones is handled");
    assert_eq!(row.revision, 3);
    assert_eq!(row.criticality, "critical");
    let dead = eventually(Duration::from_secs(20), || {
        let url = url.clone();
        let dead_queue = format!("{queue}.dead");
        async move {
            let messages = drain(&url, &dead_queue).await;
            (!messages.is_empty()).then_some(messages)
        }
    })
    .await
    .expect("the poison messages are dead-lettered");
    let mut count = dead.len();
    if count < 3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        count += drain(&url, &format!("{queue}.dead")).await.len();
    }
    assert_eq!(count, 3, "three malformed messages, three dead letters");
}
