#!/usr/bin/env python3
"""Generate deploy/kubernetes/prometheusrule.yaml from deploy/prometheus/veloki-rules.yaml.

The plain rules file is the one source of truth: promtool checks and unit-tests it, Prometheus
setups without the Operator load it as it is, and the PrometheusRule embeds it verbatim under
`spec:` (comments included).

    python3 deploy/prometheus/sync_rules.py           # write the PrometheusRule
    python3 deploy/prometheus/sync_rules.py --check   # exit 1 when it is out of date
"""
import pathlib
import sys

import yaml

HERE = pathlib.Path(__file__).resolve().parent
SOURCE = HERE / "veloki-rules.yaml"
TARGET = HERE.parent / "kubernetes" / "prometheusrule.yaml"

HEADER = """\
# GENERATED from deploy/prometheus/veloki-rules.yaml by deploy/prometheus/sync_rules.py.
# Do not edit: change the rules file, then run the script (deploy/test.sh checks they agree).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: veloki
  labels:
    app.kubernetes.io/name: veloki
spec:
"""


def render() -> str:
    text = SOURCE.read_text()
    lines = text.splitlines()
    # Drop the file's leading comment block (it describes the file itself, not the rules).
    start = next(i for i, line in enumerate(lines) if line.startswith("groups:"))
    body = "\n".join(("  " + line) if line else "" for line in lines[start:])
    rendered = HEADER + body + "\n"
    # The embedded rules must be exactly the source rules.
    if yaml.safe_load(rendered)["spec"] != yaml.safe_load(text):
        sys.exit("sync_rules: embedding changed the rules (indentation?)")
    return rendered


def main() -> int:
    rendered = render()
    if "--check" in sys.argv[1:]:
        if not TARGET.exists() or TARGET.read_text() != rendered:
            print(
                f"{TARGET.relative_to(HERE.parent.parent)} is out of date with "
                f"{SOURCE.relative_to(HERE.parent.parent)}; run: python3 deploy/prometheus/sync_rules.py",
                file=sys.stderr,
            )
            return 1
        return 0
    TARGET.write_text(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
