#!/usr/bin/env python3
"""Evaluates every query of the bftws Grafana dashboard and every loaded alerting rule against a
running Prometheus, and fails on a metric name that no target exports, on a query Prometheus
refuses, and on a rule whose evaluation fails.

    check.py PROMETHEUS_URL DASHBOARD_JSON

Grafana variables become what "All" selects ($namespace, $deployment -> .*) and
$__rate_interval a window that spans many 1 s scrapes. Metric names are the bftws_* and
cometbft_* identifiers outside label matchers: every series the chart uses is one of those.
"""
import json
import re
import sys
import time
import urllib.parse
import urllib.request

# Queries allowed to return nothing on a healthy devnet: nothing has been rejected or failed.
MAY_BE_EMPTY = ('result!="committed"',)
# Rules that must not fire on a healthy 4-1 devnet.
MUST_NOT_FIRE = {
    "BftwsQuorumAtRisk",
    "BftwsL1HeightStalled",
    "BftwsBundlesRejected",
    "BftwsCommitLatencyHigh",
    "BftwsL1ReceiptUnverified",
}


def get(base, path, **params):
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
    except urllib.error.HTTPError as err:
        body = json.load(err)
    if body.get("status") != "success":
        raise ValueError(f"{body.get('errorType')}: {body.get('error')}")
    return body["data"]


def metric_names(expr):
    without_matchers = re.sub(r"\{[^}]*\}", "", expr)
    return set(re.findall(r"\b(?:bftws|cometbft)_[A-Za-z0-9_]+", without_matchers))


def substitute(expr):
    for variable, value in (("$__rate_interval", "1m"), ("$namespace", ".*"), ("$deployment", ".*")):
        expr = expr.replace(variable, value)
    assert "$" not in expr.replace("$labels", "").replace("$value", ""), f"unknown variable in {expr}"
    return expr


def wait_for_scrapes(base, timeout_s=60):
    """Until every target is up and the sessions' counters have a rate; reports targets if not."""
    deadline = time.monotonic() + timeout_s
    while True:
        targets = get(base, "/api/v1/targets")["activeTargets"]
        down = [f"{t['scrapeUrl']}: {t['health']} {t.get('lastError', '')}" for t in targets if t["health"] != "up"]
        rated = get(base, "/api/v1/query", query="sum(rate(bftws_ops_total[1m]))")["result"]
        if not down and rated:
            return None
        if time.monotonic() > deadline:
            return f"after {timeout_s} s: targets not up: {down}; ops rate: {rated}"
        time.sleep(1)


def main():
    base, dashboard_path = sys.argv[1], sys.argv[2]
    dashboard = json.load(open(dashboard_path))
    not_ready = wait_for_scrapes(base)
    if not_ready:
        print(f"Prometheus never saw the devnet's sessions: {not_ready}", file=sys.stderr)
        return 1
    exported = set(get(base, "/api/v1/label/__name__/values"))
    problems = []

    queries = [(f"panel '{p['title']}'", t["expr"]) for p in dashboard["panels"] for t in p["targets"]]
    variables = [(f"variable ${v['name']}", v["query"]["query"]) for v in dashboard["templating"]["list"]
                 if v.get("type") == "query"]
    for where, expr in variables:
        inner = re.fullmatch(r"label_values\((.*),\s*[A-Za-z_]+\)", expr)
        if not inner:
            problems.append(f"{where}: not a label_values(...) query: {expr}")
            continue
        queries.append((where, inner.group(1)))

    rules = [r for g in get(base, "/api/v1/rules")["groups"] for r in g["rules"]]
    if {r["name"] for r in rules} != MUST_NOT_FIRE:
        problems.append(f"loaded rules {sorted(r['name'] for r in rules)} are not the expected {sorted(MUST_NOT_FIRE)}")
    queries += [(f"rule {r['name']}", r["query"]) for r in rules]

    checked_names = set()
    for where, expr in queries:
        names = metric_names(expr)
        if not names:
            problems.append(f"{where}: references no bftws_/cometbft_ metric: {expr}")
        for name in sorted(names - exported):
            problems.append(f"{where}: unknown series {name} (no target exports it)")
        checked_names |= names
        try:
            result = get(base, "/api/v1/query", query=substitute(expr))["result"]
        except ValueError as err:
            problems.append(f"{where}: Prometheus refuses the query: {err}\n    {expr}")
            continue
        empty = not result and not where.startswith("rule ")
        if empty and not any(marker in expr for marker in MAY_BE_EMPTY):
            problems.append(f"{where}: no data on a devnet that ran sessions: {expr}")

    # Rules: evaluated by Prometheus itself; wait for a few evaluations, then none may have failed.
    time.sleep(3)
    for rule in (r for g in get(base, "/api/v1/rules")["groups"] for r in g["rules"]):
        if rule.get("health") != "ok":
            problems.append(f"rule {rule['name']}: health {rule.get('health')}: {rule.get('lastError')}")
        if rule["name"] in MUST_NOT_FIRE and rule.get("state") != "inactive":
            problems.append(f"rule {rule['name']} is {rule.get('state')} on a healthy devnet")

    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    print(f"prometheus-check: ok: {len(queries)} dashboard and rule queries over {len(checked_names)} metric names "
          f"evaluate in Prometheus against what the nodes export ({', '.join(sorted(checked_names))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
