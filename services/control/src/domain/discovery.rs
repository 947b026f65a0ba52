//! What cluster discovery makes of Kubernetes objects: each watched object becomes a CI (its type,
//! a name unique in the cluster, its owner and business service from labels or annotations, its
//! attributes), and the relations between them follow from the objects: a workload is part of
//! its namespace and runs on the nodes its pods run on, a Service depends on the workloads whose
//! pods it selects, an Ingress depends on the Services it routes to. No I/O here.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::{Map, Value, json};

use crate::config::DiscoveryConfig;

/// The kinds discovery watches into the CMDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A namespace.
    Namespace,
    /// A node.
    Node,
    /// A Deployment.
    Deployment,
    /// A StatefulSet.
    StatefulSet,
    /// A DaemonSet.
    DaemonSet,
    /// A Service.
    Service,
    /// An Ingress.
    Ingress,
}

impl Kind {
    /// The CI type it maps to.
    pub fn ci_type(self) -> &'static str {
        match self {
            Self::Namespace => "kubernetes_namespace",
            Self::Node => "kubernetes_node",
            Self::Deployment | Self::StatefulSet | Self::DaemonSet => "kubernetes_workload",
            Self::Service => "kubernetes_service",
            Self::Ingress => "kubernetes_ingress",
        }
    }

    /// Its Kubernetes name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Namespace => "Namespace",
            Self::Node => "Node",
            Self::Deployment => "Deployment",
            Self::StatefulSet => "StatefulSet",
            Self::DaemonSet => "DaemonSet",
            Self::Service => "Service",
            Self::Ingress => "Ingress",
        }
    }

    /// Whether it lives in a namespace.
    pub fn namespaced(self) -> bool {
        !matches!(self, Self::Namespace | Self::Node)
    }

    /// A workload.
    pub fn workload(self) -> bool {
        matches!(self, Self::Deployment | Self::StatefulSet | Self::DaemonSet)
    }
}

/// A Kubernetes object as discovery sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// Its kind.
    pub kind: Kind,
    /// Its namespace (namespaced kinds).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// The CI attributes besides `cluster` (and `namespace`, `kind` for workloads).
    pub attributes: Map<String, Value>,
}

impl Observed {
    /// The CI's name: `<namespace>/<name>` for namespaced kinds, the name otherwise.
    pub fn ci_name(&self) -> String {
        ci_name(self.kind, &self.namespace, &self.name)
    }

    /// The owner: the owner label, else the owner annotation, else the default.
    pub fn owner(&self, config: &DiscoveryConfig) -> String {
        self.tag(&config.owner_label)
            .unwrap_or_else(|| config.default_owner.clone())
    }

    /// The business service it is part of (a label, else an annotation).
    pub fn service(&self, config: &DiscoveryConfig) -> Option<String> {
        self.tag(&config.service_label)
    }

    fn tag(&self, key: &str) -> Option<String> {
        self.labels
            .get(key)
            .or_else(|| self.annotations.get(key))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The CI's attributes for `cluster`.
    pub fn ci_attributes(&self, cluster: &str) -> Map<String, Value> {
        let mut attributes = self.attributes.clone();
        attributes.insert("cluster".to_owned(), json!(cluster));
        if self.kind.namespaced() {
            attributes.insert("namespace".to_owned(), json!(self.namespace));
        }
        if self.kind.workload() {
            attributes.insert("kind".to_owned(), json!(self.kind.as_str()));
        }
        attributes
    }
}

/// The CI name of an object.
pub fn ci_name(kind: Kind, namespace: &str, name: &str) -> String {
    if kind.namespaced() {
        format!("{namespace}/{name}")
    } else {
        name.to_owned()
    }
}

fn base(kind: Kind, meta: &ObjectMeta) -> Observed {
    Observed {
        kind,
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        labels: meta.labels.clone().unwrap_or_default(),
        annotations: meta.annotations.clone().unwrap_or_default(),
        attributes: Map::new(),
    }
}

fn labels(map: Option<&BTreeMap<String, String>>) -> Value {
    json!(map.cloned().unwrap_or_default())
}

/// The matchLabels of a selector (matchExpressions are not mapped).
fn match_labels(selector: Option<&LabelSelector>) -> Value {
    labels(selector.and_then(|s| s.match_labels.as_ref()))
}

/// A namespace.
pub fn namespace(ns: &Namespace) -> Observed {
    base(Kind::Namespace, &ns.metadata)
}

/// A node.
pub fn node(node: &Node) -> Observed {
    let mut o = base(Kind::Node, &node.metadata);
    if let Some(status) = &node.status {
        if let Some(info) = &status.node_info {
            o.attributes
                .insert("kubelet_version".to_owned(), json!(info.kubelet_version));
            o.attributes
                .insert("os_image".to_owned(), json!(info.os_image));
        }
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        o.attributes.insert("ready".to_owned(), json!(ready));
    }
    o
}

fn images(spec: Option<&k8s_openapi::api::core::v1::PodSpec>) -> Value {
    json!(
        spec.map(|s| s
            .containers
            .iter()
            .filter_map(|c| c.image.clone())
            .collect::<Vec<_>>())
            .unwrap_or_default()
    )
}

fn workload(
    kind: Kind,
    meta: &ObjectMeta,
    replicas: Option<i32>,
    selector: Option<&LabelSelector>,
    template: Option<&k8s_openapi::api::core::v1::PodTemplateSpec>,
) -> Observed {
    let mut o = base(kind, meta);
    if let Some(replicas) = replicas {
        o.attributes.insert("replicas".to_owned(), json!(replicas));
    }
    o.attributes
        .insert("selector".to_owned(), match_labels(selector));
    o.attributes.insert(
        "pod_labels".to_owned(),
        labels(
            template
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.labels.as_ref()),
        ),
    );
    o.attributes.insert(
        "images".to_owned(),
        images(template.and_then(|t| t.spec.as_ref())),
    );
    o
}

/// A Deployment.
pub fn deployment(d: &Deployment) -> Observed {
    let spec = d.spec.as_ref();
    workload(
        Kind::Deployment,
        &d.metadata,
        Some(spec.and_then(|s| s.replicas).unwrap_or(1)),
        spec.map(|s| &s.selector),
        spec.map(|s| &s.template),
    )
}

/// A StatefulSet.
pub fn stateful_set(s: &StatefulSet) -> Observed {
    let spec = s.spec.as_ref();
    workload(
        Kind::StatefulSet,
        &s.metadata,
        Some(spec.and_then(|s| s.replicas).unwrap_or(1)),
        spec.map(|s| &s.selector),
        spec.map(|s| &s.template),
    )
}

/// A DaemonSet.
pub fn daemon_set(d: &DaemonSet) -> Observed {
    let spec = d.spec.as_ref();
    workload(
        Kind::DaemonSet,
        &d.metadata,
        None,
        spec.map(|s| &s.selector),
        spec.map(|s| &s.template),
    )
}

/// A Service.
pub fn service(s: &Service) -> Observed {
    let mut o = base(Kind::Service, &s.metadata);
    let spec = s.spec.as_ref();
    o.attributes.insert(
        "type".to_owned(),
        json!(
            spec.and_then(|s| s.type_.clone())
                .unwrap_or_else(|| "ClusterIP".to_owned())
        ),
    );
    o.attributes.insert(
        "selector".to_owned(),
        labels(spec.and_then(|s| s.selector.as_ref())),
    );
    o
}

/// An Ingress.
pub fn ingress(i: &Ingress) -> Observed {
    let mut o = base(Kind::Ingress, &i.metadata);
    let spec = i.spec.as_ref();
    let mut hosts = Vec::new();
    let mut services = Vec::new();
    if let Some(backend) = spec
        .and_then(|s| s.default_backend.as_ref())
        .and_then(|b| b.service.as_ref())
    {
        services.push(backend.name.clone());
    }
    for rule in spec.and_then(|s| s.rules.as_ref()).into_iter().flatten() {
        if let Some(host) = &rule.host {
            hosts.push(host.clone());
        }
        for path in rule.http.iter().flat_map(|h| &h.paths) {
            if let Some(service) = &path.backend.service {
                services.push(service.name.clone());
            }
        }
    }
    hosts.sort();
    hosts.dedup();
    services.sort();
    services.dedup();
    o.attributes.insert("hosts".to_owned(), json!(hosts));
    o.attributes.insert("services".to_owned(), json!(services));
    o
}

/// A pod as discovery keeps it (not a CI): its labels and its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPlacement {
    /// Namespace.
    pub namespace: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The node it runs on, once scheduled.
    pub node: Option<String>,
}

/// A pod's placement.
pub fn pod(p: &Pod) -> PodPlacement {
    PodPlacement {
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        labels: p.metadata.labels.clone().unwrap_or_default(),
        node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
    }
}

/// Whether `labels` satisfy a non-empty `selector` (JSON objects of strings).
pub fn selects(selector: &Value, labels: &Value) -> bool {
    let Some(selector) = selector.as_object().filter(|s| !s.is_empty()) else {
        return false;
    };
    selector
        .iter()
        .all(|(k, v)| labels.get(k).is_some_and(|l| l == v))
}

/// The same for label maps.
pub fn selects_map(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let Some(selector) = selector.as_object().filter(|s| !s.is_empty()) else {
        return false;
    };
    selector.iter().all(|(k, v)| {
        labels
            .get(k)
            .is_some_and(|l| v.as_str() == Some(l.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DiscoveryConfig {
        DiscoveryConfig {
            enabled: true,
            owner_label: "meridian.io/owner".to_owned(),
            service_label: "meridian.io/service".to_owned(),
            default_owner: "platform-team".to_owned(),
            cluster: "prod".to_owned(),
        }
    }

    fn deployment_json() -> Deployment {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "payments", "labels": {"meridian.io/owner": "pay-team"},
                         "annotations": {"meridian.io/service": "payments"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "api"}},
                     "template": {"metadata": {"labels": {"app": "api", "tier": "web"}},
                                  "spec": {"containers": [{"name": "api", "image": "registry/api:2"}]}}}
        }))
        .unwrap()
    }

    #[test]
    fn a_deployment_becomes_a_workload_with_owner_and_service_from_labels_or_annotations() {
        let o = deployment(&deployment_json());
        assert_eq!(o.ci_name(), "payments/api");
        assert_eq!(o.kind.ci_type(), "kubernetes_workload");
        assert_eq!(o.owner(&config()), "pay-team");
        assert_eq!(o.service(&config()).as_deref(), Some("payments"));
        let a = o.ci_attributes("prod");
        assert_eq!(a["cluster"], "prod");
        assert_eq!(a["kind"], "Deployment");
        assert_eq!(a["replicas"], 3);
        assert_eq!(a["selector"], json!({"app": "api"}));
        assert_eq!(a["images"], json!(["registry/api:2"]));
    }

    #[test]
    fn services_select_workloads_and_ingresses_name_their_services() {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "api", "namespace": "payments"},
            "spec": {"selector": {"app": "api"}, "type": "ClusterIP"}
        }))
        .unwrap();
        let s = service(&svc);
        let w = deployment(&deployment_json());
        assert!(selects(
            &s.attributes["selector"],
            &w.attributes["pod_labels"]
        ));
        assert!(
            !selects(&json!({}), &w.attributes["pod_labels"]),
            "an empty selector selects nothing"
        );
        assert!(!selects(
            &json!({"app": "other"}),
            &w.attributes["pod_labels"]
        ));
        let ing: Ingress = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "payments"},
            "spec": {"rules": [{"host": "pay.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"number": 80}}}}
            ]}}]}
        }))
        .unwrap();
        let i = ingress(&ing);
        assert_eq!(i.attributes["hosts"], json!(["pay.example.com"]));
        assert_eq!(i.attributes["services"], json!(["api"]));
        assert_eq!(i.owner(&config()), "platform-team");
    }

    #[test]
    fn a_node_reports_its_readiness_and_a_pod_its_placement() {
        let n: Node = serde_json::from_value(json!({
            "metadata": {"name": "node-1"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "nodeInfo": {"kubeletVersion": "v1.34.1", "osImage": "Ubuntu", "architecture": "amd64",
                                    "bootID": "", "containerRuntimeVersion": "", "kernelVersion": "", "kubeProxyVersion": "",
                                    "machineID": "", "operatingSystem": "linux", "systemUUID": ""}}
        }))
        .unwrap();
        let o = node(&n);
        assert_eq!(o.ci_name(), "node-1");
        assert_eq!(o.attributes["ready"], true);
        assert_eq!(o.attributes["kubelet_version"], "v1.34.1");
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "api-1", "namespace": "payments", "labels": {"app": "api"}},
            "spec": {"nodeName": "node-1", "containers": []}
        }))
        .unwrap();
        let placement = pod(&p);
        assert_eq!(placement.node.as_deref(), Some("node-1"));
        assert!(selects_map(&json!({"app": "api"}), &placement.labels));
    }
}
