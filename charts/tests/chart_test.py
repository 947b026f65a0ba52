"""Offline tests of charts/meridian, for `make test` (scripts/chart-test.sh runs them).

For each values overlay in charts/meridian/ci/: the values checked against values.schema.json,
the chart linted (strict) and rendered with the real Helm SDK (helm-python-sdk, Helm's Go code
through its C ABI), every rendered manifest validated against the Kubernetes schemas of the
oldest and the newest supported versions (kubernetes-validate; a kind without a schema fails,
except the CRDs whose schemas are kept in schemas/), and Meridian's own rules asserted. Then bad
values must be refused, and checkov must pass on everything rendered, with the waivers of
checkov-waivers.yaml and their reasons.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

HERE = pathlib.Path(__file__).resolve().parent
CHART = HERE.parent / "meridian"
OLDEST = "1.29.0"
NEWEST = kubernetes_validate.utils.latest_version()
RELEASE, NAMESPACE = "meridian", "meridian"
SERVICES = ["resolution", "workflow", "control", "notifier", "service-level", "relationship", "governance"]
POD_KINDS = {"Deployment", "StatefulSet", "Job", "Pod", "DaemonSet"}
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring-v1.json",
    ("cert-manager.io/v1", "Certificate"): "certificate-cert-manager-v1.json",
}

failures: list[str] = []


def check(condition: bool, message: str) -> None:
    if not condition:
        failures.append(message)


def render(values: dict) -> list[dict]:
    chart = helm.Chart.load(CHART)
    manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs = []
    for path, text in sorted(manifests.items()):
        if not path.endswith((".yaml", ".yml")):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc["__source"] = path
                docs.append(doc)
    return docs


def validate_kubernetes(doc: dict, where: str) -> None:
    body = {k: v for k, v in doc.items() if k != "__source"}
    crd = CRD_SCHEMAS.get((body["apiVersion"], body["kind"]))
    if crd:
        schema = json.loads((HERE / "schemas" / crd).read_text())
        try:
            jsonschema.Draft202012Validator(schema).validate(body)
        except jsonschema.ValidationError as e:
            failures.append(f"{where}: {e.message} at {list(e.absolute_path)}")
        return
    for version in (OLDEST, NEWEST):
        try:
            kubernetes_validate.validate(body, version, strict=True)
        except kubernetes_validate.utils.SchemaNotFoundError as e:
            failures.append(f"{where}: unknown kind for Kubernetes {version}: {e.message}")
        except kubernetes_validate.utils.ValidationError as e:
            failures.append(f"{where}: Kubernetes {version}: {e.message} at {list(e.absolute_path)}")


def pod_spec(doc: dict) -> dict | None:
    kind = doc["kind"]
    if kind == "Pod":
        return doc["spec"]
    if kind in POD_KINDS:
        return doc["spec"]["template"]["spec"]
    return None


def pod_labels(doc: dict) -> dict:
    if doc["kind"] == "Pod":
        return doc["metadata"].get("labels", {})
    return doc["spec"]["template"]["metadata"].get("labels", {})


def expected_image(values: dict) -> str:
    image = values.get("image", {})
    repository = image.get("repository", "ghcr.io/meridian-itsm/meridian")
    if image.get("digest"):
        return f"{repository}@{image['digest']}"
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    return f"{repository}:{image.get('tag') or app_version}"


def merged(values: dict) -> dict:
    return helm.Chart.load(CHART).merge_values(values)


def assert_rules(name: str, values: dict, docs: list[dict]) -> None:
    full = merged(values)
    by_kind: dict[str, list[dict]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    policies = by_kind.get("NetworkPolicy", [])
    enabled = [s for s in SERVICES if full["services"][s]["enabled"]]
    calls_api = {
        s
        for s in enabled
        if (s == "control" and full["discovery"]["enabled"])
        or (s in ("control", "workflow", "service-level", "relationship", "governance") and full["leaderElection"]["enabled"])
    }
    image = expected_image(values)

    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        where = f"{name}: {doc['kind']}/{doc['metadata']['name']}"
        psc = spec.get("securityContext", {})
        check(psc.get("runAsNonRoot") is True, f"{where}: pod runAsNonRoot")
        check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: pod seccomp RuntimeDefault")
        for container in spec.get("initContainers", []) + spec["containers"]:
            csc = container.get("securityContext", {})
            cw = f"{where} container {container['name']}"
            check(csc.get("allowPrivilegeEscalation") is False, f"{cw}: allowPrivilegeEscalation false")
            check(csc.get("readOnlyRootFilesystem") is True, f"{cw}: readOnlyRootFilesystem")
            check("ALL" in csc.get("capabilities", {}).get("drop", []), f"{cw}: drops ALL capabilities")
            check(not csc.get("capabilities", {}).get("add"), f"{cw}: adds no capability")
            check(csc.get("privileged") is not True, f"{cw}: not privileged")
            check(csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{cw}: runAsNonRoot")
            check(csc.get("runAsUser", psc.get("runAsUser", 1)) != 0, f"{cw}: not uid 0")
            names = [e["name"] for e in container.get("env", [])]
            check(len(names) == len(set(names)), f"{cw}: duplicate env names {sorted(names)}")
            check("resources" in container and "limits" in container["resources"], f"{cw}: resource limits")
        # Every pod is selected by a NetworkPolicy.
        if full["networkPolicy"]["enabled"]:
            labels = pod_labels(doc)
            covered = [
                p["metadata"]["name"]
                for p in policies
                if all(labels.get(k) == v for k, v in p["spec"]["podSelector"].get("matchLabels", {}).items())
            ]
            check(bool(covered), f"{where}: no NetworkPolicy selects it")
        component = pod_labels(doc).get("app.kubernetes.io/component", "")
        meridian = [c for c in spec["containers"] if c.get("command") == ["meridian"]]
        if component in enabled or component.startswith("migrate-") or component == "test":
            check(len(meridian) == 1, f"{where}: runs the meridian binary")
            for c in meridian:
                check(c["image"] == image, f"{where}: image {c['image']} is not {image}")
        if doc["kind"] == "Deployment":
            check(component in enabled, f"{where}: a Deployment per enabled service")
            # The alert intake's secrets reach the resolution service only, from the Secret.
            intake = {
                e["name"]: e.get("valueFrom", {}).get("secretKeyRef", {})
                for c in meridian
                for e in c.get("env", [])
                if e["name"].startswith("MERIDIAN__RESOLUTION__INTAKE__")
            }
            wanted = {}
            if component == "resolution" and full["intake"]["existingSecret"]:
                for key, env in (("tokenKey", "TOKEN"), ("hmacSecretKey", "HMAC_SECRET")):
                    if full["intake"][key]:
                        wanted[f"MERIDIAN__RESOLUTION__INTAKE__{env}"] = {"name": full["intake"]["existingSecret"], "key": full["intake"][key]}
            check(intake == wanted, f"{where}: intake secrets {intake}, expected {wanted}")
            check(meridian and meridian[0]["args"] == ["serve", "--service", component], f"{where}: args {meridian and meridian[0]['args']}")
            mounted = spec.get("automountServiceAccountToken")
            check(mounted is (component in calls_api), f"{where}: automountServiceAccountToken {mounted}")
            probes = meridian[0] if meridian else {}
            check(probes.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", f"{where}: readiness on /readyz")
            check(probes.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", f"{where}: liveness on /healthz")
            svc = {**full["defaults"], **{k: v for k, v in full["services"][component].items() if k != "enabled"}}
            autoscaled = svc.get("autoscaling", {}).get("enabled", False)
            hpa = [h for h in by_kind.get("HorizontalPodAutoscaler", []) if h["spec"]["scaleTargetRef"]["name"] == doc["metadata"]["name"]]
            check(bool(hpa) == autoscaled, f"{where}: an HPA exactly when autoscaling")
            check(("replicas" in doc["spec"]) != autoscaled, f"{where}: replicas omitted exactly when an HPA scales it")
            pdb = [p for p in by_kind.get("PodDisruptionBudget", []) if p["metadata"]["name"] == doc["metadata"]["name"]]
            check(bool(pdb) == (autoscaled or svc.get("replicas", 1) > 1), f"{where}: a PDB exactly when more than one replica")
        if doc["kind"] == "Job":
            service = component.removeprefix("migrate-")
            check(meridian and meridian[0]["args"] == ["migrate", "--service", service], f"{where}: migrate args")
            check(spec.get("automountServiceAccountToken") is False, f"{where}: no token in migrations")
            hooked = "helm.sh/hook" in doc["metadata"].get("annotations", {})
            check(hooked == full["migrations"]["hooks"], f"{where}: hook annotation follows migrations.hooks")

    deployments = {d["metadata"]["labels"]["app.kubernetes.io/component"] for d in by_kind.get("Deployment", [])}
    check(deployments == set(enabled), f"{name}: Deployments {sorted(deployments)} for services {enabled}")
    if full["migrations"]["enabled"]:
        jobs = {d["metadata"]["labels"]["app.kubernetes.io/component"] for d in by_kind.get("Job", [])}
        check(jobs == {f"migrate-{s}" for s in enabled}, f"{name}: a migration Job per service, got {sorted(jobs)}")
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        check(hpa["apiVersion"] == "autoscaling/v2", f"{name}: HPA autoscaling/v2")
    for role in by_kind.get("ClusterRole", []):
        for rule in role["rules"]:
            check(set(rule["verbs"]) <= {"get", "list", "watch"}, f"{name}: ClusterRole {role['metadata']['name']} only reads")
    for role in by_kind.get("Role", []):
        for rule in role["rules"]:
            check(rule["apiGroups"] == ["coordination.k8s.io"] and rule["resources"] == ["leases"], f"{name}: Roles only for leases")
    for sa in by_kind.get("ServiceAccount", []):
        check(sa.get("automountServiceAccountToken") is False, f"{name}: ServiceAccount {sa['metadata']['name']} mounts no token by default")
    for hook in by_kind.get("ValidatingWebhookConfiguration", []):
        for webhook in hook["webhooks"]:
            excluded = [
                e for e in webhook["namespaceSelector"].get("matchExpressions", [])
                if e["key"] == "kubernetes.io/metadata.name" and e["operator"] == "NotIn"
            ]
            values_out = excluded[0]["values"] if excluded else []
            check("kube-system" in values_out and NAMESPACE in values_out, f"{name}: the change gate never covers kube-system or {NAMESPACE}")
            check(bool(webhook["namespaceSelector"].get("matchLabels")), f"{name}: the change gate needs a namespace label")
            check(webhook["timeoutSeconds"] <= 10, f"{name}: the change gate times out fast")
            check(webhook["clientConfig"]["service"]["path"] == "/v1/admission/change-gate", f"{name}: change gate path")
    if full["changeGate"]["enabled"] and full["services"]["control"]["enabled"]:
        check(bool(by_kind.get("ValidatingWebhookConfiguration")), f"{name}: the change gate is rendered")
    if full["networkPolicy"]["enabled"]:
        deny = [p for p in policies if p["metadata"]["name"].endswith("-default-deny")]
        check(bool(deny) and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"} and "ingress" not in deny[0]["spec"] and "egress" not in deny[0]["spec"], f"{name}: a default-deny policy")
        for p in policies:
            for rule in p["spec"].get("egress", []):
                for port in rule.get("ports", []):
                    if port.get("port") in (443, 6443) and p["metadata"]["name"].endswith(("-resolution",)):
                        failures.append(f"{name}: resolution may not reach the API server")
    configs = [c for c in by_kind.get("ConfigMap", []) if c["metadata"]["name"].endswith("-config")]
    check(bool(configs), f"{name}: a configuration ConfigMap")
    for c in configs:
        config = yaml.safe_load(c["data"]["config.yaml"])
        check(config["http"]["bind"] == "0.0.0.0:8080", f"{name}: listens on 8080")
        check("password" not in c["data"]["config.yaml"].lower() or "password: ''" in c["data"]["config.yaml"], f"{name}: no password in the ConfigMap")


def config_accepted(name: str, docs: list[dict]) -> None:
    """The configuration file the chart renders is one the meridian binary accepts."""
    binary = os.environ.get("MERIDIAN_BIN", "")
    if not binary:
        return
    for doc in docs:
        if doc["kind"] != "ConfigMap" or not doc["metadata"]["name"].endswith("-config"):
            continue
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
            file.write(doc["data"]["config.yaml"])
            file.flush()
            env = {
                "PATH": os.environ.get("PATH", ""),
                "MERIDIAN__DATABASE__URL": "postgres://meridian@db.example/meridian",
                "MERIDIAN__BUS__URL": "amqp://meridian:secret@mq.example:5672/%2f",
            }
            result = subprocess.run([binary, "check-config", "--config", file.name], env=env,
                                    capture_output=True, text=True, check=False)
            check(result.returncode == 0,
                  f"{name}: meridian refuses the rendered {doc['metadata']['name']}: {result.stderr.strip()[:500]}")


def refused(values: dict, expect: str) -> None:
    """The chart must refuse `values`: by the schema, or when rendering, naming `expect`."""
    chart = helm.Chart.load(CHART)
    try:
        chart.validate_schema(values)
        chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    except helm.HelmError as e:
        check(expect in str(e), f"refused for the wrong reason: wanted {expect!r} in {e}")
        return
    failures.append(f"accepted bad values (wanted a refusal naming {expect!r}): {json.dumps(values)[:200]}")


def checkov(directory: pathlib.Path) -> None:
    waivers = yaml.safe_load((HERE / "checkov-waivers.yaml").read_text()) or {}
    result = subprocess.run(
        [sys.executable, "-m", "checkov.main", "-d", str(directory), "--framework", "kubernetes",
         "--output", "json", "--quiet", "--compact", "--skip-download"]
        + (["--skip-check", ",".join(waivers)] if waivers else []),
        capture_output=True, text=True, check=False,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        failures.append(f"checkov did not run: {result.stderr[-2000:]}")
        return
    reports = report if isinstance(report, list) else [report]
    for r in reports:
        for failed in r.get("results", {}).get("failed_checks", []):
            failures.append(f"checkov {failed['check_id']} ({failed['check_name']}) on {failed['resource']} in {failed['file_path']}")
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    check(passed > 0, "checkov checked nothing")


def main() -> int:
    base = yaml.safe_load((CHART / "ci" / "default-values.yaml").read_text())
    overlays = sorted((CHART / "ci").glob("*.yaml"))
    with tempfile.TemporaryDirectory() as out:
        out_dir = pathlib.Path(out)
        for overlay in overlays:
            name = overlay.stem
            values = yaml.safe_load(overlay.read_text()) or {}
            try:
                helm.Chart.load(CHART).validate_schema(values)
            except helm.HelmError as e:
                failures.append(f"{name}: refused by the schema: {e}")
                continue
            for version in (OLDEST, NEWEST):
                report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{version}")
                for message in report.get("messages", []):
                    if message.get("severity", 0) >= 2:
                        failures.append(f"{name}: helm lint (Kubernetes {version}): {message.get('path')}: {message.get('error')}")
                for error in report.get("errors", []) or []:
                    failures.append(f"{name}: helm lint (Kubernetes {version}): {error}")
            docs = render(values)
            check(len(docs) > 10, f"{name}: rendered {len(docs)} objects")
            for doc in docs:
                validate_kubernetes(doc, f"{name}: {doc['__source']}: {doc['kind']}/{doc['metadata']['name']}")
            assert_rules(name, values, docs)
            config_accepted(name, docs)
            target = out_dir / name
            target.mkdir()
            for i, doc in enumerate(docs):
                body = {k: v for k, v in doc.items() if k != "__source"}
                (target / f"{i:03}-{body['kind'].lower()}.yaml").write_text(yaml.safe_dump(body))
            print(f"chart: {name}: {len(docs)} objects rendered, validated for Kubernetes {OLDEST} and {NEWEST}")

        def with_(**changes) -> dict:
            values = json.loads(json.dumps(base))
            for path, value in changes.items():
                node = values
                keys = path.split("__")
                for key in keys[:-1]:
                    node = node.setdefault(key, {})
                node[keys[-1]] = value
            return values

        refused(with_(colour="blue"), "colour")
        refused(with_(database__existingSecret=""), "existingSecret")
        refused(with_(defaults__replicas="two"), "replicas")
        refused(with_(changeGate__enabled=True, changeGate__timeoutSeconds=30), "timeoutSeconds")
        refused(with_(auth__jwksUrl="http://login.example.com/jwks"), "jwksUrl")
        refused(with_(image__digest="latest"), "digest")
        refused(with_(services__control__extraEnv=[{"name": "BAD-NAME", "value": "x"}]), "name")
        refused(with_(services__control__replicas=-1), "replicas")
        refused(with_(changeGate__failurePolicy="Sometimes"), "failurePolicy")
        refused(with_(database__networkPolicyPeers=[]), "networkPolicyPeers")
        refused(with_(changeGate__enabled=True), "issuerRef")
        refused(with_(surveys__existingSecret=""), "surveys.existingSecret")
        refused(with_(publicUrl="meridian.example.com"), "publicUrl")
        refused(with_(ledger__existingSecret=""), "ledger.existingSecret")
        print("chart: bad values refused")
        checkov(out_dir)
        print("chart: checkov ran on every overlay")
    if failures:
        print(f"\n{len(failures)} chart test failure(s):", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    print("chart: all tests passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
