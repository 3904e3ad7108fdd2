"""End to end: every query of every panel, evaluated by a real Prometheus scraping a real
`monitor run`.

Prometheus (scrape and rule evaluation every second, the shipped
deploy/prometheus/alerts.yml loaded unchanged) scrapes `monitor run` replaying
the bundled sample stream (two days of posts) at 7200x, so the run lasts about
24 s. Once 80% of the stream is in, the test fixes that moment and evaluates
every panel target and annotation of the checked-in dashboards there: range
targets with /api/v1/query_range over the run, instant targets with
/api/v1/query. Template variables are substituted twice, with ".*" (All) and
with the busiest concrete source and language; Grafana's interval macros
with fixed windows (tests/grafana/queries.py). Each expression must parse and
return data, except the few listed in EMPTY_OK, whose metric cannot have
samples in this run: those must still parse, and their metric family must be
exposed. About 40 s in all.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.grafana.queries import (
    ROOT,
    PanelQuery,
    load_dashboards,
    metric_names,
    panel_queries,
    substitute,
)
from tests.support.binaries import require_binary
from tests.support.processes import terminate
from tests.support.prometheus import Service, free_port, start_prometheus

ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
#: Two days of posts (samples/stream.jsonl) in about 24 s.
SPEED = 7200
#: Posts in the sample stream, and how many must be in Prometheus before evaluating.
SAMPLE_POSTS = 3000
EVALUATE_AT = int(SAMPLE_POSTS * 0.8)
MONITOR_START = 60.0
STREAM_WAIT = 90.0
_ALERTS_REASON = ("ALERTS has series only while an alert is pending or firing; the sample's "
                  "csam_risk flags fire CsamRiskFlagged only if one is scraped before the "
                  "evaluation moment")
#: (dashboard uid, panel title, refId) -> why its result may be empty in this run.
EMPTY_OK: dict[tuple[str, str, str], str] = {
    ("social-moderation", "Rejected input per minute by reason", "A"):
        "social_posts_rejected_total: the bundled sample has no malformed records",
    ("social-pipeline", "Source reconnects and errors", "A"):
        "social_source_reconnects_total: a replay never reconnects",
    ("social-pipeline", "Source reconnects and errors", "B"):
        "social_source_errors_total: a replay has no source errors",
    ("social-pipeline", "Sink errors", "A"):
        "social_sink_errors_total: no output sink in this run (no --mqtt-publish)",
    ("social-moderation", "Alerts firing now", "A"): _ALERTS_REASON,
    ("social-moderation", "annotation: Alerts firing", "-"): _ALERTS_REASON,
    ("social-pipeline", "annotation: Alerts firing", "-"): _ALERTS_REASON,
}
#: The same, only with a concrete source or language selected.
EMPTY_OK_CONCRETE: dict[tuple[str, str, str], str] = {
    ("social-pipeline", "Sources up", "A"):
        "social_source_up is labelled with the collector (here 'replay'), while the posts it "
        "replays keep their platforms (bluesky, x, ...): a live bluesky collector has "
        "source_up{source=\"bluesky\"}",
}


@dataclass
class Live:
    """A finished evaluation window: Prometheus, the moment, and the monitor's /metrics."""

    prometheus: Service
    started: float
    at: float
    exposition: str

    def api(self, path: str, **params: str) -> dict[str, Any]:
        """GET an API path; a 4xx answer (a parse error) is returned, not raised."""
        url = f"{self.prometheus.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read())

    def run(self, query: PanelQuery, variables: dict[str, str]) -> dict[str, Any]:
        expr = substitute(query.expr, variables)
        if query.instant:
            return self.api("/api/v1/query", query=expr, time=f"{self.at:.3f}")
        return self.api("/api/v1/query_range", query=expr, start=f"{self.started:.3f}",
                        end=f"{self.at:.3f}", step="2")


def _scalar(prometheus: Service, expr: str) -> float:
    try:
        answer = prometheus.get_json("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    except (OSError, ValueError):
        return 0.0
    result = answer.get("data", {}).get("result", [])
    return float(result[0]["value"][1]) if result else 0.0


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()
    except (OSError, urllib.error.URLError):
        return None


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    binary = require_binary("prometheus", "/usr/bin/prometheus")
    work = tmp_path_factory.mktemp("dashboards-e2e")
    port = free_port()
    target = f"127.0.0.1:{port}"
    prometheus = start_prometheus(binary, work / "prometheus", target=target,
                                  rule_files=[ALERTS], alertmanager=f"127.0.0.1:{free_port()}")
    log_path = work / "monitor.log"
    with log_path.open("wb") as log:
        monitor = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run",
             "--source", f"replay:samples/stream.jsonl?speed={SPEED}x",
             "--metrics-addr", target, "--archive-dir", str(work / "archive"),
             "--key-file", str(work / "key"), "--state-dir", str(work / "state"),
             "--progress", "log"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        started = time.time()
        deadline = time.monotonic() + MONITOR_START
        while _get(f"http://{target}/metrics") is None:
            assert monitor.poll() is None, log_path.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "monitor did not serve /metrics in time"
            time.sleep(0.2)
        deadline = time.monotonic() + STREAM_WAIT
        while _scalar(prometheus, "sum(social_posts_received_total)") < EVALUATE_AT:
            assert monitor.poll() is None, log_path.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, (
                f"fewer than {EVALUATE_AT} posts reached Prometheus in {STREAM_WAIT:.0f} s:\n"
                f"{prometheus.log_tail()}")
            time.sleep(0.5)
        at = time.time()
        exposition = _get(f"http://{target}/metrics") or ""
        yield Live(prometheus, started, at, exposition)
    finally:
        terminate(monitor, grace=15)
        prometheus.stop()


@pytest.fixture(scope="module")
def queries() -> list[PanelQuery]:
    return panel_queries(load_dashboards())


@pytest.fixture(scope="module")
def concrete(live: Live) -> dict[str, str]:
    """The busiest source and language of the run, as a user would pick them."""
    picks = {}
    for name, metric in (("source", "social_posts_received_total"),
                         ("lang", "social_posts_processed_total")):
        answer = live.api("/api/v1/query", query=f"topk(1, sum by ({name}) ({metric}))",
                          time=f"{live.at:.3f}")
        picks[name] = answer["data"]["result"][0]["metric"][name]
    return picks


def _has_data(answer: dict[str, Any]) -> bool:
    result = answer.get("data", {}).get("result", [])
    return any(series.get("values") or series.get("value") for series in result)


def _numbers(answer: dict[str, Any]) -> list[float]:
    values: list[float] = []
    for series in answer.get("data", {}).get("result", []):
        points = series.get("values") or [series["value"]]
        values.extend(float(v) for _, v in points)
    return values


def _exposed_names(exposition: str) -> set[str]:
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "histogram":
                names.update({f"{name}_bucket", f"{name}_count", f"{name}_sum"})
    return names


def test_every_panel_query_parses_and_returns_data(
        live: Live, queries: list[PanelQuery], concrete: dict[str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    assert len(queries) >= 40
    failures, flat, empty_ok = [], [], []
    for query in queries:
        for variables in ({"source": ".*", "lang": ".*"}, concrete):
            answer = live.run(query, variables)
            if answer.get("status") != "success":
                failures.append(f"{query}\n    with {variables}: {answer.get('error')}")
            elif not _has_data(answer):
                if query.key in EMPTY_OK or (variables is concrete
                                             and query.key in EMPTY_OK_CONCRETE):
                    empty_ok.append(query)
                else:
                    failures.append(f"{query}\n    with {variables}: no data")
            elif variables is concrete:
                continue
            elif all(math.isnan(v) or v == 0 for v in _numbers(answer)):
                flat.append(query)
    with capsys.disabled():
        print(f"\n{len(queries)} expressions x 2 variable sets evaluated at "
              f"{live.at - live.started:.1f} s into the run (variables: {concrete})")
        for query in sorted(set(empty_ok), key=str):
            print(f"  empty, allowed: {query.dashboard} / {query.panel} / {query.ref}")
        for query in sorted(set(flat), key=str):
            print(f"  only zero or NaN: {query.dashboard} / {query.panel} / {query.ref}")
    assert not failures, "\n".join(failures)


def test_the_allowed_empty_ones_parse_and_their_metric_is_exposed(
        live: Live, queries: list[PanelQuery]) -> None:
    by_key = {q.key: q for q in queries}
    listed = set(EMPTY_OK) | set(EMPTY_OK_CONCRETE)
    assert listed <= set(by_key), f"stale exceptions: {listed - set(by_key)}"
    exposed = _exposed_names(live.exposition)
    rules = live.api("/api/v1/rules", type="alert")["data"]["groups"]
    alerting = {rule["name"] for group in rules for rule in group["rules"]}
    for key in EMPTY_OK:
        query = by_key[key]
        answer = live.run(query, {"source": ".*", "lang": ".*"})
        assert answer["status"] == "success", f"{query}: {answer.get('error')}"
        for name in metric_names(query.expr):
            if name == "ALERTS":  # Prometheus' own series: the rules that feed it are loaded
                assert "CsamRiskFlagged" in alerting, alerting
            else:
                assert name in exposed, f"{query}: {name} is not in the monitor's /metrics"


def test_every_metric_a_panel_uses_is_in_the_monitors_metrics(
        live: Live, queries: list[PanelQuery]) -> None:
    exposed = _exposed_names(live.exposition)
    used = {name for q in queries for name in metric_names(q.expr)} - {"ALERTS"}
    assert used, "no metric found in the panel queries"
    assert not used - exposed, f"not in the monitor's /metrics: {sorted(used - exposed)}"
    assert "social_top_terms" in used


def test_the_variables_list_values(live: Live) -> None:
    for name, metric in (("source", "social_posts_received_total"),
                         ("lang", "social_posts_processed_total")):
        answer = live.api(f"/api/v1/label/{name}/values", **{"match[]": metric})
        assert answer["status"] == "success" and answer["data"], name
    assert {"bluesky", "x"} <= set(live.api("/api/v1/label/source/values")["data"])


def test_top_terms_are_bounded_in_prometheus(live: Live) -> None:
    answer = live.api("/api/v1/query", query="count by (lang) (social_top_terms)",
                      time=f"{live.at:.3f}")
    counts = {s["metric"]["lang"]: float(s["value"][1]) for s in answer["data"]["result"]}
    assert counts and max(counts.values()) <= 20
    assert "en" in counts
    assert "zh" not in counts and "ja" not in counts  # per-character languages are skipped


def test_the_run_used_the_sample_stream(live: Live) -> None:
    assert Path(ROOT / "samples" / "stream.jsonl").is_file()
    assert _scalar(live.prometheus, "sum(social_posts_received_total)") >= EVALUATE_AT
