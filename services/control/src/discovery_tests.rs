//! Discovery against a fake Kubernetes API server on loopback (lists, then watches streamed from
//! the test), into the real CMDB on both backends: CIs with owners and relations, a deleted
//! object retired, an object gone while no one watched retired at the first listing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use meridian_chassis::db::DbError;
use meridian_chassis::testing::{BACKENDS, TestDb};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::Control;
use crate::store::cis;

/// The objects of each resource collection, and the watch events the test sends.
struct Cluster {
    objects: Mutex<HashMap<String, Vec<Value>>>,
    events: broadcast::Sender<(String, Value)>,
}

fn collection(path: &str) -> String {
    path.rsplit('/').next().unwrap_or_default().to_owned()
}

async fn api(req: HttpRequest, cluster: web::Data<Cluster>) -> HttpResponse {
    let resource = collection(req.path());
    let watching = req
        .query_string()
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    if watching {
        let rx = cluster.events.subscribe();
        let stream =
            futures_util::stream::unfold((rx, resource), |(mut rx, resource)| async move {
                loop {
                    match rx.recv().await {
                        Ok((r, event)) if r == resource => {
                            let line = web::Bytes::from(format!("{event}\n"));
                            return Some((Ok::<_, actix_web::Error>(line), (rx, resource)));
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            });
        return HttpResponse::Ok()
            .content_type("application/json")
            .streaming(stream);
    }
    let items = cluster
        .objects
        .lock()
        .unwrap()
        .get(&resource)
        .cloned()
        .unwrap_or_default();
    HttpResponse::Ok().json(json!({
        "apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "100"}, "items": items
    }))
}

fn fake_api_server(objects: HashMap<String, Vec<Value>>) -> (String, web::Data<Cluster>) {
    let (events, _) = broadcast::channel(64);
    let cluster = web::Data::new(Cluster {
        objects: Mutex::new(objects),
        events,
    });
    let shared = cluster.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(shared.clone())
            .default_service(web::to(api))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let address = server.addrs()[0];
    tokio::spawn(server.run());
    (format!("http://{address}"), cluster)
}

fn object(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    extra: Value,
) -> Value {
    let mut o = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "resourceVersion": "1"}});
    if let Some(ns) = namespace {
        o["metadata"]["namespace"] = json!(ns);
    }
    if let (Some(target), Some(extra)) = (o.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            if k == "metadata" {
                for (mk, mv) in v.as_object().unwrap() {
                    target["metadata"][mk] = mv.clone();
                }
            } else {
                target.insert(k.clone(), v.clone());
            }
        }
    }
    o
}

fn the_cluster() -> HashMap<String, Vec<Value>> {
    let deployment = object(
        "apps/v1",
        "Deployment",
        Some("payments"),
        "api",
        json!({
            "metadata": {"labels": {"meridian.io/owner": "pay-team", "meridian.io/service": "payments"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}},
                     "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "api", "image": "registry/api:2"}]}}}
        }),
    );
    HashMap::from([
        (
            "namespaces".to_owned(),
            vec![object("v1", "Namespace", None, "payments", json!({}))],
        ),
        (
            "nodes".to_owned(),
            vec![object(
                "v1",
                "Node",
                None,
                "node-1",
                json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            )],
        ),
        ("deployments".to_owned(), vec![deployment]),
        (
            "services".to_owned(),
            vec![object(
                "v1",
                "Service",
                Some("payments"),
                "api",
                json!({"spec": {"selector": {"app": "api"}}}),
            )],
        ),
        (
            "ingresses".to_owned(),
            vec![object(
                "networking.k8s.io/v1",
                "Ingress",
                Some("payments"),
                "web",
                json!({
                    "spec": {"rules": [{"host": "pay.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"number": 80}}}}]}}]}
                }),
            )],
        ),
        (
            "pods".to_owned(),
            vec![object(
                "v1",
                "Pod",
                Some("payments"),
                "api-1",
                json!({
                    "metadata": {"labels": {"app": "api"}}, "spec": {"nodeName": "node-1", "containers": []}
                }),
            )],
        ),
    ])
}

fn control(db: &TestDb) -> Control {
    #[derive(serde::Deserialize)]
    struct Root {
        control: crate::ControlConfig,
    }
    let root: Root = meridian_chassis::config::load_from(
        &[
            crate::config::DEFAULTS,
            "control:\n  discovery:\n    enabled: true\n    cluster: prod\n",
        ],
        None,
        vec![],
    )
    .unwrap();
    Control {
        db: db.db.clone(),
        clock: Arc::new(meridian_chassis::SystemClock),
        config: root.control,
        waker: meridian_chassis::outbox::Waker::default(),
    }
}

async fn ci(control: &Control, ci_type: &'static str, name: &'static str) -> Option<cis::CiRow> {
    control
        .db
        .run(move |conn| -> Result<_, DbError> {
            Ok(crate::store::discovery::find(conn, ci_type, name)?)
        })
        .await
        .unwrap()
}

/// `source` relations of `kind`, as target CI names.
async fn related(control: &Control, source: &cis::CiRow, kind: &'static str) -> Vec<String> {
    let id = source.id.clone();
    control
        .db
        .run(move |conn| -> Result<_, DbError> {
            let mut names = Vec::new();
            for r in cis::relations_of(conn, &id)? {
                if r.source == id && r.kind == kind {
                    names.push(
                        cis::find(conn, &r.target)?
                            .map(|t| t.name)
                            .unwrap_or_default(),
                    );
                }
            }
            names.sort();
            Ok(names)
        })
        .await
        .unwrap()
}

async fn until<F, Fut>(what: &str, check: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("discovery never got to: {what}");
    false
}

async fn seed(control: &Control, ci_type: &'static str, name: &'static str, attributes: Value) {
    let now = control.clock.now();
    control
        .db
        .transaction(move |conn| -> Result<_, DbError> {
            crate::store::discovery::upsert(
                conn,
                &crate::store::discovery::Desired {
                    ci_type,
                    name: name.to_owned(),
                    owner: "someone".to_owned(),
                    attributes: attributes.as_object().cloned().unwrap(),
                },
                now,
            )?;
            Ok(())
        })
        .await
        .unwrap();
}

#[actix_web::test]
async fn the_cluster_is_watched_into_the_cmdb_with_its_relations_and_what_goes_is_retired() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("warn")
        .try_init();
    for backend in BACKENDS {
        let db = TestDb::new(backend, crate::store::MIGRATIONS).await;
        let control = control(&db);
        // The business service, recorded by hand; and a workload gone while nobody watched.
        seed(&control, "service", "payments", json!({})).await;
        seed(
            &control,
            "kubernetes_workload",
            "payments/old-batch",
            json!({"cluster": "prod", "namespace": "payments", "kind": "Deployment"}),
        )
        .await;
        let (url, cluster) = fake_api_server(the_cluster());
        let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
        let task = tokio::spawn(crate::discovery::run(control.clone(), client));

        let diagnose = || async {
            let w = ci(&control, "kubernetes_workload", "payments/api").await;
            match w {
                Some(w) => format!(
                    "runs_on {:?} part_of {:?}",
                    related(&control, &w, "runs_on").await,
                    related(&control, &w, "part_of").await
                ),
                None => "no workload CI".to_owned(),
            }
        };
        let converged = until("the workload's relations", || async {
            match ci(&control, "kubernetes_workload", "payments/api").await {
                Some(w) => {
                    related(&control, &w, "runs_on").await == ["node-1"]
                        && related(&control, &w, "part_of").await.len() == 2
                }
                None => false,
            }
        })
        .await;
        assert!(
            converged,
            "{backend:?}: {}: {}",
            "the workload's relations",
            diagnose().await
        );
        let workload = ci(&control, "kubernetes_workload", "payments/api")
            .await
            .unwrap();
        assert_eq!(workload.owner, "pay-team");
        assert_eq!(workload.status, "in_service");
        let attributes: Value = serde_json::from_str(&workload.attributes).unwrap();
        assert_eq!(
            (
                attributes["cluster"].as_str(),
                attributes["replicas"].as_i64()
            ),
            (Some("prod"), Some(2))
        );
        assert_eq!(
            related(&control, &workload, "part_of").await,
            ["payments", "payments"],
            "its namespace and its business service"
        );
        let node = ci(&control, "kubernetes_node", "node-1").await.unwrap();
        assert_eq!(node.owner, "platform-team");
        let converged = until("the service and the ingress", || async {
            let (Some(s), Some(i)) = (
                ci(&control, "kubernetes_service", "payments/api").await,
                ci(&control, "kubernetes_ingress", "payments/web").await,
            ) else {
                return false;
            };
            related(&control, &s, "depends_on").await == ["payments/api"]
                && related(&control, &i, "depends_on").await == ["payments/api"]
        })
        .await;
        assert!(
            converged,
            "{backend:?}: {}: {}",
            "the service and the ingress",
            diagnose().await
        );
        until(
            "the vanished workload retired at the first listing",
            || async {
                ci(&control, "kubernetes_workload", "payments/old-batch")
                    .await
                    .is_some_and(|c| c.status == "retired")
            },
        )
        .await;

        // The Service (same name as the Deployment, no service label) changes: the workload
        // keeps its business service.
        let service = cluster.objects.lock().unwrap()["services"][0].clone();
        cluster
            .events
            .send((
                "services".to_owned(),
                json!({"type": "MODIFIED", "object": service}),
            ))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let workload = ci(&control, "kubernetes_workload", "payments/api")
            .await
            .unwrap();
        assert_eq!(
            related(&control, &workload, "part_of").await,
            ["payments", "payments"],
            "{backend:?}"
        );

        // Deleted while watched: retired, and its relations gone.
        let deployment = cluster.objects.lock().unwrap()["deployments"][0].clone();
        cluster
            .events
            .send((
                "deployments".to_owned(),
                json!({"type": "DELETED", "object": deployment}),
            ))
            .unwrap();
        let converged = until("the deleted workload retired", || async {
            ci(&control, "kubernetes_workload", "payments/api")
                .await
                .is_some_and(|c| c.status == "retired")
        })
        .await;
        assert!(
            converged,
            "{backend:?}: {}: {}",
            "the deleted workload retired",
            diagnose().await
        );
        let workload = ci(&control, "kubernetes_workload", "payments/api")
            .await
            .unwrap();
        assert!(related(&control, &workload, "runs_on").await.is_empty());
        let service = ci(&control, "kubernetes_service", "payments/api")
            .await
            .unwrap();
        assert!(
            related(&control, &service, "depends_on").await.is_empty(),
            "the Service selects nothing now"
        );

        // A new node joins: a CI appears.
        let node2 = object("v1", "Node", None, "node-2", json!({}));
        cluster
            .events
            .send((
                "nodes".to_owned(),
                json!({"type": "ADDED", "object": node2}),
            ))
            .unwrap();
        let converged = until("the new node", || async {
            ci(&control, "kubernetes_node", "node-2").await.is_some()
        })
        .await;
        assert!(
            converged,
            "{backend:?}: {}: {}",
            "the new node",
            diagnose().await
        );
        task.abort();
    }
}
