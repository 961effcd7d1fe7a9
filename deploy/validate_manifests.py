#!/usr/bin/env python3
"""Validate the rendered manifests (`kubectl kustomize deploy/kubernetes | validate_manifests.py`).

1. Built-in kinds: strict JSON-schema validation, offline, with the schemas bundled in the
   kubernetes-validate package, against the oldest and the newest Kubernetes version we support.
2. ServiceMonitor and PrometheusRule (CRDs, no bundled schema): their structure, here.
3. Cross-references the API server would not check: selectors match pod labels, named ports
   exist, referenced ConfigMaps/ServiceAccount are in the bundle, the PrometheusRule carries
   exactly deploy/prometheus/veloki-rules.yaml, the dashboards ConfigMap holds valid JSON.
4. The hardening promised in deploy/README.md, so it cannot silently regress.
"""
import json
import pathlib
import re
import sys

import kubernetes_validate
import yaml

VERSIONS = ["1.28.0", "1.33.0"]
DEPLOY = pathlib.Path(__file__).resolve().parent
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")

problems = []


def problem(where, msg):
    problems.append(f"{where}: {msg}")


def check_servicemonitor(doc, services):
    where = f"ServiceMonitor/{doc['metadata']['name']}"
    if doc.get("apiVersion") != "monitoring.coreos.com/v1":
        problem(where, "apiVersion must be monitoring.coreos.com/v1")
    spec = doc.get("spec", {})
    unknown = set(spec) - {"selector", "endpoints", "namespaceSelector", "jobLabel", "targetLabels", "podTargetLabels"}
    if unknown:
        problem(where, f"unknown spec fields {sorted(unknown)}")
    match = spec.get("selector", {}).get("matchLabels", {})
    targets = [s for s in services if match and match.items() <= s["metadata"].get("labels", {}).items()]
    if not targets:
        problem(where, f"selector {match} matches no Service in the bundle")
    ports = {p.get("name") for s in targets for p in s["spec"].get("ports", [])}
    endpoint_fields = {"port", "path", "interval", "scrapeTimeout", "honorLabels", "relabelings", "metricRelabelings", "scheme"}
    for ep in spec.get("endpoints") or [problem(where, "no endpoints") or {}]:
        if set(ep) - endpoint_fields:
            problem(where, f"unknown endpoint fields {sorted(set(ep) - endpoint_fields)}")
        if ep.get("port") not in ports:
            problem(where, f"endpoint port {ep.get('port')!r} is not a port name of the selected Service")
        for key in ("interval", "scrapeTimeout"):
            if key in ep and not DURATION.match(ep[key]):
                problem(where, f"{key} {ep[key]!r} is not a duration")
        if not isinstance(ep.get("honorLabels", False), bool):
            problem(where, "honorLabels must be a boolean")
        for r in ep.get("relabelings", []):
            if set(r) - {"sourceLabels", "targetLabel", "action", "regex", "replacement", "separator", "modulus"}:
                problem(where, f"unknown relabeling fields in {r}")
            if r.get("action", "replace") not in {"replace", "keep", "drop", "labelmap", "labeldrop", "labelkeep", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal"}:
                problem(where, f"unknown relabeling action {r.get('action')}")


def check_prometheusrule(doc):
    where = f"PrometheusRule/{doc['metadata']['name']}"
    if doc.get("apiVersion") != "monitoring.coreos.com/v1":
        problem(where, "apiVersion must be monitoring.coreos.com/v1")
    spec = doc.get("spec", {})
    if set(spec) != {"groups"}:
        problem(where, "spec must hold exactly `groups`")
    names = set()
    for g in spec.get("groups", []):
        if g.get("name") in names:
            problem(where, f"duplicate group {g.get('name')}")
        names.add(g.get("name"))
        if "interval" in g and not DURATION.match(g["interval"]):
            problem(where, f"group {g['name']}: interval {g['interval']!r}")
        for r in g.get("rules", []):
            if ("record" in r) == ("alert" in r):
                problem(where, f"rule needs exactly one of record/alert: {r}")
            if not isinstance(r.get("expr"), str):
                problem(where, f"{r.get('record') or r.get('alert')}: expr must be a string")
            if "for" in r and not DURATION.match(r["for"]):
                problem(where, f"{r.get('alert')}: for {r['for']!r}")
            for key in ("labels", "annotations"):
                if not all(isinstance(v, str) for v in r.get(key, {}).values()):
                    problem(where, f"{r.get('record') or r.get('alert')}: {key} values must be strings")
            if "alert" in r and r.get("labels", {}).get("severity") not in {"critical", "warning", "info"}:
                problem(where, f"{r['alert']}: severity label must be critical, warning or info")
    source = yaml.safe_load((DEPLOY / "prometheus" / "veloki-rules.yaml").read_text())
    if spec != source:
        problem(where, "spec differs from deploy/prometheus/veloki-rules.yaml (run deploy/prometheus/sync_rules.py)")


def check_daemonset(ds, by_kind):
    where = f"DaemonSet/{ds['metadata']['name']}"
    spec, pod = ds["spec"], ds["spec"]["template"]["spec"]
    labels = ds["spec"]["template"]["metadata"].get("labels", {})
    if not spec["selector"]["matchLabels"].items() <= labels.items():
        problem(where, "selector does not match the pod template labels")
    for svc in by_kind.get("Service", []):
        if not svc["spec"]["selector"].items() <= labels.items():
            problem(f"Service/{svc['metadata']['name']}", "selector does not match the DaemonSet pods")
        ports = {p["name"] for c in pod["containers"] for p in c.get("ports", [])}
        for p in svc["spec"]["ports"]:
            if p["targetPort"] not in ports:
                problem(f"Service/{svc['metadata']['name']}", f"targetPort {p['targetPort']} is no container port")
    configmaps = {c["metadata"]["name"] for c in by_kind.get("ConfigMap", [])}
    accounts = {a["metadata"]["name"] for a in by_kind.get("ServiceAccount", [])}
    if pod.get("serviceAccountName") not in accounts:
        problem(where, f"serviceAccountName {pod.get('serviceAccountName')} not in the bundle")
    for v in pod.get("volumes", []):
        if "configMap" in v and v["configMap"]["name"] not in configmaps:
            problem(where, f"volume {v['name']}: ConfigMap {v['configMap']['name']} not in the bundle")
    if pod.get("securityContext", {}).get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problem(where, "pod seccompProfile must be RuntimeDefault")
    if {"operator": "Exists"} not in pod.get("tolerations", []):
        problem(where, "must tolerate every taint (operator: Exists) to run on every node")
    for c in pod["containers"]:
        cw = f"{where} container {c['name']}"
        for e in c.get("envFrom", []):
            if e["configMapRef"]["name"] not in configmaps:
                problem(cw, f"envFrom ConfigMap {e['configMapRef']['name']} not in the bundle")
        env = {e["name"]: e for e in c.get("env", [])}
        if env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "spec.nodeName":
            problem(cw, "NODE_NAME must come from the downward API (spec.nodeName)")
        sc = c.get("securityContext", {})
        expected = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False, "privileged": False}
        for k, v in expected.items():
            if sc.get(k) is not v:
                problem(cw, f"securityContext.{k} must be {v}")
        if sc.get("capabilities") != {"drop": ["ALL"], "add": ["DAC_READ_SEARCH"]}:
            problem(cw, "capabilities must drop ALL and add only DAC_READ_SEARCH")
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
        if not mounts.get("/var/log/pods", {}).get("readOnly"):
            problem(cw, "/var/log/pods must be mounted read-only")
        probes = {k: c.get(k, {}).get("httpGet", {}).get("path") for k in ("livenessProbe", "readinessProbe")}
        if probes != {"livenessProbe": "/healthz", "readinessProbe": "/ready"}:
            problem(cw, f"probes must be /healthz (liveness) and /ready (readiness), got {probes}")
        res = c.get("resources", {})
        if not res.get("requests") or not res.get("limits"):
            problem(cw, "needs resource requests and limits")


def check_dashboards_configmap(cm):
    where = f"ConfigMap/{cm['metadata']['name']}"
    if cm["metadata"].get("labels", {}).get("grafana_dashboard") != "1":
        problem(where, 'needs the label grafana_dashboard: "1"')
    for key, text in cm.get("data", {}).items():
        try:
            json.loads(text)
        except json.JSONDecodeError as e:
            problem(where, f"{key}: {e}")


def main():
    docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    for d in docs:
        where = f"{d['kind']}/{d['metadata']['name']}"
        if d["kind"] == "ServiceMonitor":
            check_servicemonitor(d, by_kind.get("Service", []))
        elif d["kind"] == "PrometheusRule":
            check_prometheusrule(d)
        else:
            for version in VERSIONS:
                try:
                    kubernetes_validate.validate(d, version, strict=True)
                except kubernetes_validate.ValidationError as e:
                    problem(where, f"Kubernetes {version}: {e.message} at {'/'.join(map(str, e.path))}")
                except kubernetes_validate.SchemaNotFoundError:
                    problem(where, f"no schema for {d['apiVersion']} {d['kind']} in Kubernetes {version}")
    for ds in by_kind.get("DaemonSet", []):
        check_daemonset(ds, by_kind)
    dashboards = [c for c in by_kind.get("ConfigMap", []) if "dashboards" in c["metadata"]["name"]]
    if not dashboards:
        problem("bundle", "no dashboards ConfigMap")
    for cm in dashboards:
        check_dashboards_configmap(cm)
    for kind in ("Namespace", "ServiceAccount", "DaemonSet", "Service", "ServiceMonitor", "PrometheusRule", "ConfigMap"):
        if kind not in by_kind:
            problem("bundle", f"no {kind}")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"validate_manifests: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    kinds = ", ".join(f"{len(v)} {k}" for k, v in sorted(by_kind.items()))
    print(f"validate_manifests: {kinds}: schemas (Kubernetes {' and '.join(VERSIONS)}), CRD structure and references ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
