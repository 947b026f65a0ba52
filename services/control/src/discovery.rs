//! Cluster discovery (kube watchers): namespaces, nodes, Deployments, StatefulSets, DaemonSets,
//! Services and Ingresses become CIs with their relations; pods are watched only to know which
//! nodes each workload runs on. Each watcher's first full listing (and every relisting after a
//! lost watch) retires the CIs of objects that are gone, so a missed delete is caught up.
//!
//! Singleton work: run it under the leader election (`Elector::lead("control", …)`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use meridian_chassis::db::{AnyConnection, DbError};
use serde_json::Value;

use crate::Control;
use crate::domain::discovery::{self as map, Kind, Observed, PodPlacement};
use crate::store::cis::CiRow;
use crate::store::discovery::{self as store, Desired};

/// Discovery's state: the pods' placements and each CI's business service, as last seen.
#[derive(Clone)]
pub struct Discovery {
    control: Control,
    pods: Arc<Mutex<HashMap<(String, String), PodPlacement>>>,
    /// Business service by (CI type, CI name): a Service and its Deployment share a name.
    services: Arc<Mutex<HashMap<(String, String), String>>>,
    /// One recomputation of relations at a time: the watchers run concurrently, and two
    /// recomputations from different views must not race (the later could miss a relation the
    /// earlier's conflict rolled back).
    relating: Arc<tokio::sync::Mutex<()>>,
}

fn attrs(row: &CiRow) -> Value {
    serde_json::from_str(&row.attributes).unwrap_or(Value::Null)
}

impl Discovery {
    /// Discovery into `control`'s CMDB.
    pub fn new(control: Control) -> Self {
        Self {
            control,
            pods: Arc::default(),
            services: Arc::default(),
            relating: Arc::default(),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.control.clock.now()
    }

    /// An object was seen: its CI, then the relations around it.
    ///
    /// # Errors
    /// The database failing.
    pub async fn observed(&self, observed: Observed) -> Result<(), DbError> {
        let config = self.control.config.discovery.clone();
        let name = observed.ci_name();
        {
            let mut services = self.services.lock().unwrap_or_else(PoisonError::into_inner);
            let key = (observed.kind.ci_type().to_owned(), name.clone());
            match observed.service(&config) {
                Some(service) => services.insert(key, service),
                None => services.remove(&key),
            };
        }
        let desired = Desired {
            ci_type: observed.kind.ci_type(),
            name,
            owner: observed.owner(&config),
            attributes: observed.ci_attributes(&config.cluster),
        };
        if let Err((field, reason)) = crate::domain::ci::check_attributes(
            &self.control.config.ci_types,
            desired.ci_type,
            &desired.attributes,
        ) {
            tracing::warn!(
                ci = desired.name,
                field,
                reason,
                "a discovered object does not fit its CI type; skipped"
            );
            return Ok(());
        }
        let now = self.now();
        self.control
            .db
            .transaction(move |conn| {
                store::upsert(conn, &desired, now)
                    .map(|_| ())
                    .map_err(DbError::from)
            })
            .await?;
        self.relate(observed.kind, &observed.namespace).await
    }

    /// An object was deleted: its CI is retired.
    ///
    /// # Errors
    /// The database failing.
    pub async fn gone(&self, kind: Kind, namespace: &str, name: &str) -> Result<(), DbError> {
        let ci_name = map::ci_name(kind, namespace, name);
        let now = self.now();
        self.control
            .db
            .transaction(move |conn| {
                store::retire(conn, kind.ci_type(), &ci_name, now)
                    .map(|_| ())
                    .map_err(DbError::from)
            })
            .await?;
        self.relate(kind, namespace).await
    }

    /// A full listing of `kind` ended: the CIs of objects not in `seen` (CI names) are retired.
    ///
    /// # Errors
    /// The database failing.
    pub async fn resync(&self, kind: Kind, seen: HashSet<String>) -> Result<(), DbError> {
        let cluster = self.control.config.discovery.cluster.clone();
        let now = self.now();
        let retired = self
            .control
            .db
            .transaction(move |conn| -> Result<Vec<String>, DbError> {
                let mut retired = Vec::new();
                for row in store::in_cluster(conn, kind.ci_type(), &cluster)? {
                    let same_kind = !kind.workload() || attrs(&row)["kind"] == kind.as_str();
                    if same_kind && !seen.contains(&row.name) {
                        store::retire(conn, kind.ci_type(), &row.name, now)?;
                        retired.push(row.name);
                    }
                }
                Ok(retired)
            })
            .await?;
        if !retired.is_empty() {
            tracing::info!(
                kind = kind.as_str(),
                retired = retired.len(),
                "discovery retired CIs of objects that are gone"
            );
        }
        Ok(())
    }

    /// A pod changed (or went, with `None`): the nodes of its namespace's workloads follow.
    ///
    /// # Errors
    /// The database failing.
    pub async fn pod(
        &self,
        namespace: &str,
        name: &str,
        placement: Option<PodPlacement>,
    ) -> Result<(), DbError> {
        {
            let mut pods = self.pods.lock().unwrap_or_else(PoisonError::into_inner);
            let key = (namespace.to_owned(), name.to_owned());
            match placement {
                Some(placement) => pods.insert(key, placement),
                None => pods.remove(&key),
            };
        }
        self.relate(Kind::Deployment, namespace).await
    }

    /// Recomputes the relations discovery owns around objects of `kind` in `namespace`.
    async fn relate(&self, kind: Kind, namespace: &str) -> Result<(), DbError> {
        let _one_at_a_time = self.relating.lock().await;
        if !kind.namespaced() {
            // A namespace or a node: every namespace's relations may change.
            let namespaces = self.namespaces().await?;
            for ns in namespaces {
                self.relate_namespace(&ns).await?;
            }
            return Ok(());
        }
        self.relate_namespace(namespace).await
    }

    async fn namespaces(&self) -> Result<Vec<String>, DbError> {
        let cluster = self.control.config.discovery.cluster.clone();
        self.control
            .db
            .run(move |conn| -> Result<Vec<String>, DbError> {
                Ok(store::in_cluster(conn, "kubernetes_namespace", &cluster)?
                    .into_iter()
                    .map(|r| r.name)
                    .collect())
            })
            .await
    }

    async fn relate_namespace(&self, namespace: &str) -> Result<(), DbError> {
        let cluster = self.control.config.discovery.cluster.clone();
        let pods: Vec<PodPlacement> = self
            .pods
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|p| p.namespace == namespace)
            .cloned()
            .collect();
        let services = self
            .services
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let namespace = namespace.to_owned();
        let now = self.now();
        self.control
            .db
            .transaction(move |conn| {
                relate_namespace(conn, &cluster, &namespace, &pods, &services, now)
            })
            .await
    }
}

fn in_namespace(
    conn: &mut AnyConnection,
    ci_type: &str,
    cluster: &str,
    namespace: &str,
) -> Result<Vec<CiRow>, DbError> {
    Ok(store::in_cluster(conn, ci_type, cluster)?
        .into_iter()
        .filter(|r| attrs(r)["namespace"] == namespace)
        .collect())
}

/// The relations discovery owns in one namespace, made equal to what the cluster says.
fn relate_namespace(
    conn: &mut AnyConnection,
    cluster: &str,
    namespace: &str,
    pods: &[PodPlacement],
    business: &HashMap<(String, String), String>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let ns_ci =
        store::find(conn, "kubernetes_namespace", namespace)?.filter(|r| r.status != "retired");
    let business_ci = |conn: &mut AnyConnection, row: &CiRow| -> Result<Option<String>, DbError> {
        let Some(service) = business.get(&(row.ci_type.clone(), row.name.clone())) else {
            return Ok(None);
        };
        Ok(store::find(conn, "service", service)?.map(|r| r.id))
    };
    let workloads = in_namespace(conn, "kubernetes_workload", cluster, namespace)?;
    let services = in_namespace(conn, "kubernetes_service", cluster, namespace)?;
    let ingresses = in_namespace(conn, "kubernetes_ingress", cluster, namespace)?;
    if let Some(ns) = &ns_ci {
        let part_of: Vec<String> = business_ci(conn, ns)?.into_iter().collect();
        store::set_relations(conn, &ns.id, "part_of", &part_of, now)?;
    }
    for row in workloads.iter().chain(&services).chain(&ingresses) {
        let mut part_of: Vec<String> = ns_ci.iter().map(|n| n.id.clone()).collect();
        part_of.extend(business_ci(conn, row)?);
        store::set_relations(conn, &row.id, "part_of", &part_of, now)?;
    }
    for workload in &workloads {
        let selector = attrs(workload)["selector"].clone();
        let mut nodes: Vec<String> = pods
            .iter()
            .filter(|p| map::selects_map(&selector, &p.labels))
            .filter_map(|p| p.node.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut ids = Vec::new();
        for node in nodes.drain(..) {
            if let Some(row) = store::find(conn, "kubernetes_node", &node)? {
                ids.push(row.id);
            }
        }
        store::set_relations(conn, &workload.id, "runs_on", &ids, now)?;
    }
    for service in &services {
        let selector = attrs(service)["selector"].clone();
        let selected: Vec<String> = workloads
            .iter()
            .filter(|w| map::selects(&selector, &attrs(w)["pod_labels"]))
            .map(|w| w.id.clone())
            .collect();
        store::set_relations(conn, &service.id, "depends_on", &selected, now)?;
    }
    for ingress in &ingresses {
        let backends: BTreeMap<String, ()> = attrs(ingress)["services"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|s| (format!("{namespace}/{s}"), ()))
            .collect();
        let targets: Vec<String> = services
            .iter()
            .filter(|s| backends.contains_key(&s.name))
            .map(|s| s.id.clone())
            .collect();
        store::set_relations(conn, &ingress.id, "depends_on", &targets, now)?;
    }
    Ok(())
}

/// Watches one kind into the CMDB, for as long as it runs.
async fn watch<K>(api: Api<K>, discovery: Discovery, kind: Kind, observe: fn(&K) -> Observed)
where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut seen = HashSet::new();
    while let Some(event) = stream.next().await {
        let result = match event {
            Ok(watcher::Event::Init) => {
                seen.clear();
                Ok(())
            }
            Ok(watcher::Event::InitApply(object)) => {
                let observed = observe(&object);
                seen.insert(observed.ci_name());
                discovery.observed(observed).await
            }
            Ok(watcher::Event::InitDone) => discovery.resync(kind, std::mem::take(&mut seen)).await,
            Ok(watcher::Event::Apply(object)) => discovery.observed(observe(&object)).await,
            Ok(watcher::Event::Delete(object)) => {
                let observed = observe(&object);
                discovery
                    .gone(kind, &observed.namespace, &observed.name)
                    .await
            }
            Err(error) => {
                tracing::warn!(kind = kind.as_str(), %error, "discovery watch failed; retrying with backoff");
                Ok(())
            }
        };
        if let Err(error) = result {
            tracing::warn!(kind = kind.as_str(), %error, "discovery could not record what it saw");
        }
    }
}

async fn watch_pods(api: Api<Pod>, discovery: Discovery) {
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = stream.next().await {
        let key = |p: &Pod| {
            (
                p.metadata.namespace.clone().unwrap_or_default(),
                p.metadata.name.clone().unwrap_or_default(),
            )
        };
        let result = match event {
            Ok(watcher::Event::Init) => {
                discovery
                    .pods
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
                Ok(())
            }
            Ok(watcher::Event::InitApply(pod)) => {
                discovery
                    .pods
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(key(&pod), map::pod(&pod));
                Ok(())
            }
            Ok(watcher::Event::InitDone) => discovery.relate(Kind::Node, "").await,
            Ok(watcher::Event::Apply(pod)) => {
                let (ns, name) = key(&pod);
                discovery.pod(&ns, &name, Some(map::pod(&pod))).await
            }
            Ok(watcher::Event::Delete(pod)) => {
                let (ns, name) = key(&pod);
                discovery.pod(&ns, &name, None).await
            }
            Err(error) => {
                tracing::warn!(%error, "discovery pod watch failed; retrying with backoff");
                Ok(())
            }
        };
        if let Err(error) = result {
            tracing::warn!(%error, "discovery could not record pod placement");
        }
    }
}

/// Runs discovery against `client` until the returned future is dropped.
pub async fn run(control: Control, client: kube::Client) {
    let discovery = Discovery::new(control);
    tracing::info!("cluster discovery started");
    tokio::join!(
        watch(
            Api::<Namespace>::all(client.clone()),
            discovery.clone(),
            Kind::Namespace,
            map::namespace
        ),
        watch(
            Api::<Node>::all(client.clone()),
            discovery.clone(),
            Kind::Node,
            map::node
        ),
        watch(
            Api::<Deployment>::all(client.clone()),
            discovery.clone(),
            Kind::Deployment,
            map::deployment
        ),
        watch(
            Api::<StatefulSet>::all(client.clone()),
            discovery.clone(),
            Kind::StatefulSet,
            map::stateful_set
        ),
        watch(
            Api::<DaemonSet>::all(client.clone()),
            discovery.clone(),
            Kind::DaemonSet,
            map::daemon_set
        ),
        watch(
            Api::<Service>::all(client.clone()),
            discovery.clone(),
            Kind::Service,
            map::service
        ),
        watch(
            Api::<Ingress>::all(client.clone()),
            discovery.clone(),
            Kind::Ingress,
            map::ingress
        ),
        watch_pods(Api::<Pod>::all(client), discovery.clone()),
    );
}
