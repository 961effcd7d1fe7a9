#!/usr/bin/env python3
"""Check the Grafana dashboards and the Prometheus rules against veloki's contract.

- Every dashboard is valid JSON, picks its datasources through variables of type "datasource"
  (DS_PROMETHEUS, DS_LOKI) and never names a datasource; panel ids and dashboard uids are unique.
- Every PromQL expression (panel targets, variable queries, rules) parses: promtool has no
  offline expression checker, so they all go into one temporary rules file for
  `promtool check rules` (Grafana variables replaced by sample values first).
- Every metric and label name in PromQL, and every stream label and structured-metadata key in
  LogQL, exists in deploy/contract.json (or is a scrape label, a histogram series, or a series
  recorded by deploy/prometheus/veloki-rules.yaml). Literal values of closed label sets
  (severity, outcome, reason, ...) must be values veloki emits.

Usage: check_dashboards.py [--promtool PATH]   (exit 1 on any problem, listing all of them)
"""
import argparse
import json
import pathlib
import re
import subprocess
import sys
import tempfile

import yaml

DEPLOY = pathlib.Path(__file__).resolve().parent
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
RULES = DEPLOY / "prometheus" / "veloki-rules.yaml"
CONTRACT = json.loads((DEPLOY / "contract.json").read_text())
# kubectl apply (client side) keeps the whole ConfigMap in an annotation limited to 256 KiB.
MAX_DASHBOARD_BYTES = 240 * 1024

PROM_FUNCS = set("""
abs absent absent_over_time avg_over_time ceil changes clamp clamp_max clamp_min count_over_time
day_of_month day_of_week day_of_year days_in_month delta deriv exp floor histogram_quantile
holt_winters hour idelta increase irate label_join label_replace last_over_time ln log10 log2
max_over_time min_over_time minute month predict_linear present_over_time quantile_over_time rate
resets round scalar sgn sort sort_desc sqrt stddev_over_time stdvar_over_time sum_over_time time
timestamp vector year
""".split())
PROM_AGGS = set("sum min max avg group stddev stdvar count count_values bottomk topk quantile".split())
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
LOGQL_FUNCS = set("""
count_over_time rate bytes_over_time bytes_rate absent_over_time sum min max avg count topk bottomk
sort sort_desc sum_over_time avg_over_time max_over_time min_over_time quantile_over_time vector
""".split())
LOGQL_PARSERS = set("json logfmt regexp pattern unpack line_format label_format drop keep decolorize unwrap".split())

# Grafana's built-in variables, replaced before promtool sees an expression.
GRAFANA_VARS = {
    "$__rate_interval": "5m", "$__interval_ms": "60000", "$__interval": "1m",
    "$__range_s": "3600", "$__range_ms": "3600000", "$__range": "1h", "$__auto": "1m",
}

TOKEN = re.compile(r"""
    (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<dur>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)
  | (?P<num>0x[0-9a-fA-F]+|\d+\.?\d*(?:e[+-]?\d+)?|\.\d+)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|\|=|\|~|[-+*/%^<>=(){}\[\],|])
  | (?P<ws>\s+)
  | (?P<err>.)
""", re.X)


def tokens(expr):
    out = []
    for m in TOKEN.finditer(expr):
        kind = m.lastgroup
        if kind == "ws":
            continue
        out.append((kind, m.group()))
    return out


def unquote(s):
    return s[1:-1]


def substitute(expr):
    for k, v in GRAFANA_VARS.items():
        expr = expr.replace(k, v)
    # Dashboard variables only appear inside regex matchers: any value will do.
    return re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*(?::[a-z]+)?\}?", ".*", expr)


class Checker:
    def __init__(self):
        self.problems = []
        self.metrics = {k: set(v) for k, v in CONTRACT["metrics"].items()}
        self.histograms = set(CONTRACT["histograms"])
        self.scrape_labels = set(CONTRACT["scrape_labels"])
        self.scrape_metrics = set(CONTRACT["scrape_metrics"])
        self.stream_labels = set(CONTRACT["stream_labels"])
        self.metadata_keys = set(CONTRACT["metadata_keys"])
        self.values = {k: set(v) for k, v in CONTRACT["label_values"].items()}
        self.recorded = {}  # name -> allowed labels
        self.promql = []  # (where, expr)

    def problem(self, where, msg):
        self.problems.append(f"{where}: {msg}")

    # ------------------------------------------------------------------ names
    def metric_labels(self, name):
        """Own labels of a metric name, or None when veloki does not export it."""
        if name in self.metrics:
            return self.metrics[name]
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[: -len(suffix)]
            if name.endswith(suffix) and base in self.histograms:
                return self.metrics[base] | ({"le"} if suffix == "_bucket" else set())
        if name in self.recorded:
            return self.recorded[name]
        if name in self.scrape_metrics:
            return set()
        return None

    def check_value(self, where, label, op, value, own_labels):
        if label not in self.values or label not in own_labels or "$" in value:
            return
        if op in ("=", "!="):
            alternatives = [value] if value else []
        elif op in ("=~", "!~") and re.fullmatch(r"[A-Za-z0-9_|-]+", value):
            alternatives = value.split("|")
        else:
            return
        for alt in alternatives:
            if alt not in self.values[label]:
                self.problem(where, f'{label}{op}"{value}": "{alt}" is not a value veloki emits for {label}')

    def promql_names(self, where, expr):
        toks = tokens(substitute(expr))
        used_metrics, grouping = [], []
        i = 0
        while i < len(toks):
            kind, text = toks[i]
            nxt = toks[i + 1][1] if i + 1 < len(toks) else None
            if kind == "err":
                self.problem(where, f"unexpected character {text!r}")
            if kind != "ident":
                i += 1
                continue
            if text in GROUPING:
                if nxt == "(":
                    j = i + 2
                    while j < len(toks) and toks[j][1] != ")":
                        if toks[j][0] == "ident":
                            grouping.append(toks[j][1])
                        j += 1
                    i = j
                i += 1
                continue
            if text in KEYWORDS:
                i += 1
                continue
            if text in PROM_AGGS and nxt in ("by", "without"):
                i += 1  # sum by (...) (...)
                continue
            if nxt == "(":
                if text not in PROM_FUNCS and text not in PROM_AGGS:
                    self.problem(where, f"unknown function {text}()")
                i += 1
                continue
            own = self.metric_labels(text)
            if own is None:
                self.problem(where, f"metric {text} is not in contract.json (nor recorded by the rules)")
                own = set()
            used_metrics.append(own)
            allowed = own | self.scrape_labels | {"__name__"}
            i += 1
            if nxt == "{":
                i += 1
                while i < len(toks) and toks[i][1] != "}":
                    if toks[i][0] == "ident" and i + 2 < len(toks):
                        label, op, val = toks[i][1], toks[i + 1][1], toks[i + 2][1]
                        if label not in allowed:
                            self.problem(where, f"label {label} is not a label of {text}")
                        self.check_value(where, label, op, unquote(val), own)
                        i += 3
                    else:
                        i += 1
                i += 1
        allowed = set().union(*used_metrics) | self.scrape_labels if used_metrics else self.scrape_labels
        for label in grouping:
            if label not in allowed:
                self.problem(where, f"grouping label {label} is not a label of any metric in the expression")

    def logql(self, where, expr):
        toks = tokens(expr.replace("$__interval", "1m").replace("$__range", "1h").replace("$__auto", "1m"))
        allowed = self.stream_labels | self.metadata_keys
        i, selectors = 0, 0
        while i < len(toks):
            kind, text = toks[i]
            nxt = toks[i + 1][1] if i + 1 < len(toks) else None
            if text == "{":
                selectors += 1
                i += 1
                non_empty = False
                while i < len(toks) and toks[i][1] != "}":
                    if toks[i][0] == "ident":
                        label, op, val = toks[i][1], toks[i + 1][1], unquote(toks[i + 2][1])
                        if label not in self.stream_labels:
                            self.problem(where, f"{label} is not a stream label veloki sets")
                        self.check_value(where, label, op, val, self.stream_labels)
                        probe = substitute(val)
                        if (op == "=" and val) or (op == "=~" and not re.fullmatch(probe, "")):
                            non_empty = True
                        i += 3
                    else:
                        i += 1
                if not non_empty:
                    self.problem(where, "stream selector needs a matcher that does not match the empty value")
                i += 1
                continue
            if kind == "op" and text in ("|=", "!=", "|~", "!~") and i + 1 < len(toks) and toks[i + 1][0] == "str":
                i += 2  # line filter
                continue
            if text == "|" and nxt is not None:
                name = nxt
                if name in LOGQL_PARSERS:
                    self.problem(where, f"| {name}: veloki's labels and metadata need no parser stage (and Velero's text lines break | json)")
                elif toks[i + 1][0] == "ident":
                    if i + 3 >= len(toks):
                        self.problem(where, f"| {name}: incomplete label filter")
                        break
                    if name not in allowed:
                        self.problem(where, f"| {name}: not a stream label or structured-metadata key")
                    op, val = toks[i + 2][1], toks[i + 3]
                    if val[0] == "str":
                        own = self.stream_labels | self.metadata_keys
                        self.check_value(where, name, op, unquote(val[1]), own)
                    i += 4
                    continue
                i += 1
                continue
            if kind == "ident" and text in ("by", "without") and nxt == "(":
                j = i + 2
                while j < len(toks) and toks[j][1] != ")":
                    if toks[j][0] == "ident" and toks[j][1] not in allowed:
                        self.problem(where, f"grouping label {toks[j][1]} is not a stream label or metadata key")
                    j += 1
                i = j + 1
                continue
            if kind == "ident" and nxt == "(" and text not in LOGQL_FUNCS:
                self.problem(where, f"unknown LogQL function {text}()")
            i += 1
        if selectors == 0:
            self.problem(where, "no stream selector")

    # ------------------------------------------------------------------ sources
    def load_rules(self):
        doc = yaml.safe_load(RULES.read_text())
        records = []
        for group in doc["groups"]:
            for rule in group["rules"]:
                name = rule.get("record") or rule.get("alert")
                self.promql.append((f"{RULES.name}: {name}", rule["expr"]))
                if "record" in rule:
                    records.append(rule)
        # Labels a recorded series may carry: those it groups by plus those of its inputs.
        for rule in records:
            labels = set(re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", rule["expr"]))
            names = {l.strip() for group in labels for l in group.split(",") if l.strip()}
            for ident in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", rule["expr"]):
                own = self.metric_labels(ident)
                if own:
                    names |= own
            self.recorded[rule["record"]] = names

    def walk_panels(self, panels):
        for p in panels:
            yield p
            yield from self.walk_panels(p.get("panels", []))

    def check_dashboard(self, path):
        where = path.name
        try:
            dash = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            self.problem(where, f"invalid JSON: {e}")
            return
        variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
        ds_vars = {n: v["query"] for n, v in variables.items() if v.get("type") == "datasource"}
        if ds_vars.get("DS_PROMETHEUS") != "prometheus":
            self.problem(where, "needs a datasource variable DS_PROMETHEUS of type prometheus")
        if "__inputs" in dash:
            self.problem(where, "__inputs: use datasource variables, not import-time inputs")

        def check_ds(ctx, ds):
            if not isinstance(ds, dict):
                self.problem(ctx, f"datasource {ds!r} must be {{type, uid: ${{DS_...}}}}, never a name")
                return None
            uid, kind = ds.get("uid", ""), ds.get("type")
            if kind in ("grafana", "datasource") and uid in ("-- Grafana --", "-- Mixed --", "-- Dashboard --"):
                return kind
            m = re.fullmatch(r"\$\{(\w+)\}", uid)
            if not m or m.group(1) not in ds_vars:
                self.problem(ctx, f"datasource uid {uid!r} is not a datasource variable")
            elif ds_vars[m.group(1)] != kind:
                self.problem(ctx, f"datasource variable {uid} is a {ds_vars[m.group(1)]}, the query says {kind}")
            return kind

        for name, var in variables.items():
            if var.get("type") != "query":
                continue
            ctx = f"{where} variable {name}"
            kind = check_ds(ctx, var.get("datasource"))
            query = var.get("definition") or var["query"]["query"]
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
            if kind != "prometheus" or not m:
                self.problem(ctx, f"unsupported variable query {query!r}")
                continue
            self.promql.append((ctx, m.group(1)))
            self.promql_names(ctx, m.group(1))
            metric = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", m.group(1)).group()
            own = self.metric_labels(metric) or set()
            if m.group(2) not in own | self.scrape_labels:
                self.problem(ctx, f"label {m.group(2)} is not a label of {metric}")

        for ann in dash.get("annotations", {}).get("list", []):
            check_ds(f"{where} annotation {ann.get('name')}", ann.get("datasource"))

        ids = set()
        for p in self.walk_panels(dash.get("panels", [])):
            ctx = f"{where} panel {p.get('id')} {p.get('title')!r}"
            if p.get("id") in ids:
                self.problem(ctx, "duplicate panel id")
            ids.add(p.get("id"))
            if "gridPos" not in p:
                self.problem(ctx, "no gridPos")
            if p.get("type") == "row":
                continue
            panel_kind = check_ds(ctx, p.get("datasource"))
            for t in p.get("targets", []):
                tctx = f"{ctx} ref {t.get('refId')}"
                kind = check_ds(tctx, t.get("datasource", p.get("datasource")))
                if kind != panel_kind:
                    self.problem(tctx, "target and panel datasources differ")
                expr = t.get("expr", "")
                if not expr.strip():
                    self.problem(tctx, "empty query")
                elif kind == "prometheus":
                    self.promql.append((tctx, expr))
                    self.promql_names(tctx, expr)
                elif kind == "loki":
                    self.logql(tctx, expr)
        # A datasource by name anywhere (e.g. "datasource": "Loki") is a hard-coded name.
        for m in re.finditer(r'"datasource":\s*"([^"]*)"', path.read_text()):
            self.problem(where, f"hard-coded datasource name {m.group(1)!r}")
        return dash

    def run_promtool(self, promtool):
        rules = {"groups": [{"name": "syntax", "rules": [
            {"record": f"check:expr_{i}", "expr": substitute(expr)} for i, (_, expr) in enumerate(self.promql)]}]}
        with tempfile.TemporaryDirectory() as tmp:
            f = pathlib.Path(tmp) / "exprs.yaml"
            f.write_text(yaml.safe_dump(rules))
            r = subprocess.run([promtool, "check", "rules", str(f)], capture_output=True, text=True)
            if r.returncode == 0:
                return
            # Find the culprits one by one for a precise report.
            for where, expr in self.promql:
                f.write_text(yaml.safe_dump({"groups": [{"name": "one", "rules": [
                    {"record": "check:expr", "expr": substitute(expr)}]}]}))
                r = subprocess.run([promtool, "check", "rules", str(f)], capture_output=True, text=True)
                if r.returncode != 0:
                    out = r.stdout + r.stderr
                    m = re.search(r"could not parse expression: (.*)", out)
                    self.problem(where, f"promtool: {m.group(1) if m else out.strip()}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--promtool", default="promtool")
    args = ap.parse_args()
    c = Checker()
    c.load_rules()
    for where, expr in list(c.promql):
        c.promql_names(where, expr)
    uids, total = {}, 0
    for path in DASHBOARDS:
        total += path.stat().st_size
        dash = c.check_dashboard(path)
        if dash:
            if dash.get("uid") in uids:
                c.problem(path.name, f"uid {dash['uid']} also used by {uids[dash['uid']]}")
            uids[dash.get("uid")] = path.name
    if total > MAX_DASHBOARD_BYTES:
        c.problem("dashboards", f"{total} bytes: too big for one ConfigMap applied with kubectl apply")
    c.run_promtool(args.promtool)
    if c.problems:
        print("\n".join(c.problems), file=sys.stderr)
        print(f"check_dashboards: {len(c.problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_dashboards: {len(DASHBOARDS)} dashboards, {len(c.promql)} PromQL expressions "
          f"(syntax-checked by promtool), LogQL and names checked against contract.json: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
