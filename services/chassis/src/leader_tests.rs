//! Leases against a fake Kubernetes API server on loopback (the coordination.k8s.io/v1 Lease
//! endpoints with resourceVersion conflicts), and the advisory lock on the real PostgreSQL.
#![cfg(feature = "testing")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use super::*;
use crate::clock::ManualClock;

/// The Leases the fake API server keeps, by name, each with its resourceVersion.
#[derive(Default)]
struct Store {
    leases: Mutex<HashMap<String, Value>>,
    version: Mutex<u64>,
    /// Answer 500 to everything while set.
    down: Mutex<bool>,
}

fn status(code: u16, reason: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap()).json(json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": reason, "reason": reason, "code": code
    }))
}

fn next(store: &Store) -> String {
    let mut v = store.version.lock().unwrap();
    *v += 1;
    v.to_string()
}

async fn get(store: web::Data<Store>, path: web::Path<(String, String)>) -> HttpResponse {
    if *store.down.lock().unwrap() {
        return status(500, "InternalError");
    }
    match store.leases.lock().unwrap().get(&path.1) {
        Some(lease) => HttpResponse::Ok().json(lease),
        None => status(404, "NotFound"),
    }
}

async fn create(store: web::Data<Store>, body: web::Json<Value>) -> HttpResponse {
    if *store.down.lock().unwrap() {
        return status(500, "InternalError");
    }
    let mut lease = body.into_inner();
    let name = lease["metadata"]["name"].as_str().unwrap().to_owned();
    let mut leases = store.leases.lock().unwrap();
    if leases.contains_key(&name) {
        return status(409, "AlreadyExists");
    }
    lease["metadata"]["resourceVersion"] = json!(next(&store));
    leases.insert(name, lease.clone());
    HttpResponse::Created().json(lease)
}

async fn replace(
    store: web::Data<Store>,
    path: web::Path<(String, String)>,
    body: web::Json<Value>,
) -> HttpResponse {
    if *store.down.lock().unwrap() {
        return status(500, "InternalError");
    }
    let mut lease = body.into_inner();
    let mut leases = store.leases.lock().unwrap();
    let Some(current) = leases.get(&path.1) else {
        return status(404, "NotFound");
    };
    if current["metadata"]["resourceVersion"] != lease["metadata"]["resourceVersion"] {
        return status(409, "Conflict");
    }
    lease["metadata"]["resourceVersion"] = json!(next(&store));
    leases.insert(path.1.clone(), lease.clone());
    HttpResponse::Ok().json(lease)
}

fn fake_api_server() -> (String, web::Data<Store>) {
    let store = web::Data::new(Store::default());
    let shared = store.clone();
    let server = HttpServer::new(move || {
        let base = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases";
        App::new()
            .app_data(shared.clone())
            .route(base, web::post().to(create))
            .route(&format!("{base}/{{name}}"), web::get().to(get))
            .route(&format!("{base}/{{name}}"), web::put().to(replace))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let address = server.addrs()[0];
    tokio::spawn(server.run());
    (format!("http://{address}"), store)
}

fn elector(url: &str, identity: &str, clock: &ManualClock) -> Elector {
    let config = kube::Config::new(url.parse().unwrap());
    Elector::Lease(LeaseElector {
        client: kube::Client::try_from(config).unwrap(),
        namespace: "meridian".to_owned(),
        identity: identity.to_owned(),
        duration: Duration::from_secs(15),
        prefix: "meridian".to_owned(),
        clock: Arc::new(clock.clone()),
    })
}

#[actix_web::test]
async fn one_replica_holds_the_lease_and_another_takes_it_over_only_once_it_expired() {
    let (url, store) = fake_api_server();
    let clock = ManualClock::at(Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap());
    let mut a = elector(&url, "pod-a", &clock).campaign("workflow");
    let mut b = elector(&url, "pod-b", &clock).campaign("workflow");
    assert!(a.hold().await, "the first replica creates the Lease");
    assert!(!b.hold().await, "the second waits");
    let lease = store.leases.lock().unwrap()["meridian-workflow"].clone();
    assert_eq!(lease["spec"]["holderIdentity"], "pod-a");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 15);

    clock.advance(chrono::Duration::seconds(10));
    assert!(a.hold().await, "renewed within its duration");
    assert!(!b.hold().await, "a renewed Lease is not taken");

    // pod-a stops renewing (it died): after the duration, pod-b takes over.
    clock.advance(chrono::Duration::seconds(16));
    assert!(b.hold().await, "an expired Lease is taken over");
    let lease = store.leases.lock().unwrap()["meridian-workflow"].clone();
    assert_eq!(lease["spec"]["holderIdentity"], "pod-b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    assert!(!a.hold().await, "the old leader knows it lost");

    // Another piece of work has a Lease of its own.
    let mut other = elector(&url, "pod-a", &clock).campaign("discovery");
    assert!(other.hold().await);
}

#[actix_web::test]
async fn an_unanswering_api_server_is_tolerated_briefly_then_leadership_is_given_up() {
    let (url, store) = fake_api_server();
    let clock = ManualClock::at(Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap());
    let mut a = elector(&url, "pod-a", &clock).campaign("workflow");
    assert!(a.hold().await);
    *store.down.lock().unwrap() = true;
    clock.advance(chrono::Duration::seconds(5));
    assert!(a.hold().await, "within two thirds of the duration");
    clock.advance(chrono::Duration::seconds(6));
    assert!(
        !a.hold().await,
        "past it: the work must stop before anyone may take over"
    );
    let mut b = elector(&url, "pod-b", &clock).campaign("workflow");
    assert!(!b.hold().await, "nobody leads while the API server is down");
}

#[actix_web::test]
async fn a_conflicting_update_never_makes_two_leaders() {
    let (url, store) = fake_api_server();
    let clock = ManualClock::at(Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap());
    let mut a = elector(&url, "pod-a", &clock).campaign("timers");
    let mut b = elector(&url, "pod-b", &clock).campaign("timers");
    let mut c = elector(&url, "pod-c", &clock).campaign("timers");
    let won = [a.hold().await, b.hold().await, c.hold().await];
    assert_eq!(won, [true, false, false]);
    clock.advance(chrono::Duration::seconds(30));
    // b and c both see an expired Lease; only the first conditional update wins.
    let (rb, rc) = tokio::join!(b.hold(), c.hold());
    assert!(rb ^ rc, "exactly one of them: {rb} {rc}");
    assert_eq!(
        store.leases.lock().unwrap()["meridian-timers"]["spec"]["leaseTransitions"],
        1
    );
}

#[actix_web::test]
async fn the_work_runs_while_leading_and_stops_when_the_lease_is_lost() {
    let (url, store) = fake_api_server();
    let clock = ManualClock::at(Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap());
    let config = kube::Config::new(url.parse().unwrap());
    let leader = Elector::Lease(LeaseElector {
        client: kube::Client::try_from(config).unwrap(),
        namespace: "meridian".to_owned(),
        identity: "pod-a".to_owned(),
        // Renewed every second.
        duration: Duration::from_secs(3),
        prefix: "meridian".to_owned(),
        clock: Arc::new(clock.clone()),
    });
    let running = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = running.clone();
    let task = tokio::spawn(async move {
        leader
            .lead("scheduler", move || {
                let flag = flag.clone();
                async move {
                    struct Stop(Arc<std::sync::atomic::AtomicBool>);
                    impl Drop for Stop {
                        fn drop(&mut self) {
                            self.0.store(false, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                    flag.store(true, std::sync::atomic::Ordering::SeqCst);
                    let _stop = Stop(flag.clone());
                    std::future::pending::<()>().await;
                }
            })
            .await;
    });
    let wait = |want: bool| {
        let running = running.clone();
        async move {
            for _ in 0..100 {
                if running.load(std::sync::atomic::Ordering::SeqCst) == want {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        }
    };
    assert!(wait(true).await, "the work starts once the Lease is held");
    // Another replica takes the Lease (as after a long pause of this one).
    {
        let mut leases = store.leases.lock().unwrap();
        let lease = leases.get_mut("meridian-scheduler").unwrap();
        lease["spec"]["holderIdentity"] = json!("pod-b");
    }
    assert!(wait(false).await, "the work stops when the Lease is lost");
    task.abort();
}

#[actix_web::test]
async fn the_advisory_lock_admits_one_holder_per_name() {
    let db = crate::testing::TestDb::empty(crate::testing::Backend::Postgres);
    let url = SecretString::from(db.url.clone());
    let elector = Elector::Database(url);
    let mut first = elector.campaign("timers");
    let mut second = elector.campaign("timers");
    let mut other = elector.campaign("discovery");
    assert!(first.hold().await);
    assert!(!second.hold().await);
    assert!(other.hold().await, "another name, another lock");
    drop(first);
    let mut taken = false;
    for _ in 0..50 {
        if second.hold().await {
            taken = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(taken, "the lock passes on when its holder goes");
    assert_ne!(lock_key("timers"), lock_key("discovery"));
}
