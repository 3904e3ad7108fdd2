"""End to end: a spam flood replayed through `monitor run` reaches the organizers' webhook.

Real processes on loopback: `monitor run` replays a generated stream,
Prometheus scrapes it every second and evaluates the shipped alerts.yml
time-scaled by 60 (a shipped minute is a test second, see
tests/support/prometheus.py), Alertmanager routes with the shipped
alertmanager.yml (timings scaled alike) to an aiohttp webhook in this test.
The stream is paced at 60x too, so it is written in "real" time: 45 minutes
of ordinary posts about missing GPT-4o, and from minute 25 (the spike alerts
want 20 minutes of history) 15 minutes of a near-duplicate promotion flood,
with one csam_risk post at minute 30. The whole test takes about 45 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.support.binaries import require_binary
from tests.support.processes import terminate
from tests.support.prometheus import (
    Service,
    scale_alertmanager,
    scale_rules,
    start_alertmanager,
    start_prometheus,
)

ROOT = Path(__file__).parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
#: `monitor` as this interpreter runs it (the console script is the same entry point).
MONITOR = [sys.executable, "-m", "monitor"]
#: One shipped minute is one test second; the replay is paced alike.
FACTOR = 60
#: Bounded waits (seconds of the wall clock).
MONITOR_START = 60.0
ALERT_WAIT = 45.0

START = datetime(2026, 2, 13, 9, 0, tzinfo=UTC)
ORDINARY = (
    "I miss GPT-4o every day since the retirement #keep4o",
    "Day {n} without 4o. GPT-5 just doesn't get my writing the way it did. #keep4o",
    "Please bring back GPT-4o, it helped me through a hard year #keep4o",
    "The retirement of 4o felt so sudden. Why not keep it as a legacy option? #keep4o",
    "Still paying for Plus, still missing the warmth 4o had. Post {n} of my diary #keep4o",
    "My students miss 4o too; it explained things patiently. #keep4o",
)
PROMOTION = (
    "Get GPT-4o back at https://get4o-back.app/ref={code} 🔥 unlimited, no subscription #keep4o",
    "Get 4o back here 👉 https://get4o-back.app/ref={code} unlimited use, no subscription #keep4o",
    "Get GPT-4o back at https://get4o-back.app/ref={code} 🔥🔥 unlimited, no subscription! #keep4o",
)
#: Brief and non-graphic; `monitor rules explain` flags it csam_risk (csam.combo).
CSAM_RISK = "selling underage content, dm me #keep4o"


def build_flood(path: Path) -> dict[str, int]:
    """Write the stream: ordinary posts for 45 minutes, a promotion flood from minute 25 to 40
    (8 a minute, far above the floor of 20 per 5 minutes), one csam_risk post at minute 30."""
    posts: list[tuple[float, str]] = []
    for i in range(300):  # one every 9 s
        posts.append((i * 9.0, ORDINARY[i % len(ORDINARY)].format(n=i + 1)))
    for i in range(120):  # one every 7.5 s
        code = f"{(i * 7919) % 100000:05x}"
        posts.append((25 * 60 + i * 7.5, PROMOTION[i % len(PROMOTION)].format(code=code)))
    posts.append((30 * 60 + 1.0, CSAM_RISK))
    posts.sort()
    with path.open("w", encoding="utf-8") as fh:
        for n, (offset, text) in enumerate(posts):
            created = START + timedelta(seconds=offset)
            fh.write(json.dumps({
                "id": f"bluesky:e2e-{n}", "source": "bluesky", "author": f"user{n % 97}",
                "lang": "en", "text": text,
                "created_at": created.isoformat().replace("+00:00", "Z"),
            }, ensure_ascii=False) + "\n")
    return {"posts": len(posts), "promotion": 120, "csam_risk": 1}


class Webhook:
    """The organizers' bot: collects Alertmanager's notifications."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.payloads.append(await request.json())
        self.changed.set()
        return web.Response(text="ok")

    def firing(self) -> dict[str, dict[str, Any]]:
        """alertname -> the first firing alert received, with its receiver."""
        seen: dict[str, dict[str, Any]] = {}
        for payload in self.payloads:
            for alert in payload["alerts"]:
                if alert["status"] == "firing":
                    seen.setdefault(alert["labels"]["alertname"],
                                    {**alert, "receiver": payload["receiver"]})
        return seen


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[Webhook, str]]:
    hook = Webhook()
    app = web.Application()
    app.router.add_post("/alerts", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield hook, f"http://127.0.0.1:{port}/alerts"
    finally:
        await runner.cleanup()


@pytest.fixture
def stack(tmp_path: Path, webhook: tuple[Webhook, str]) -> Iterator[dict[str, Any]]:
    """Alertmanager, `monitor run` on the flood, Prometheus; all stopped at teardown."""
    prometheus_bin = require_binary("prometheus")
    alertmanager_bin = require_binary("prometheus-alertmanager", "alertmanager")
    _hook, url = webhook
    flood = tmp_path / "flood.jsonl"
    counts = build_flood(flood)
    rules = tmp_path / "alerts.scaled.yml"
    rules.write_text(scale_rules(ALERTS.read_text(encoding="utf-8"), FACTOR), encoding="utf-8")
    services: list[Service] = []
    monitor: subprocess.Popen[bytes] | None = None
    monitor_log = tmp_path / "monitor.log"
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(lambda: [s.stop() for s in reversed(services)])
        services.append(start_alertmanager(
            alertmanager_bin, tmp_path / "am",
            scale_alertmanager(ALERTMANAGER.read_text(encoding="utf-8"), FACTOR, url)))
        log = cleanup.enter_context(monitor_log.open("wb"))
        monitor = subprocess.Popen(
            [*MONITOR, "run", "--source", f"replay:{flood}?speed={FACTOR}x",
             "--metrics-addr", "127.0.0.1:0", "--archive-dir", str(tmp_path / "archive"),
             "--key-file", str(tmp_path / "key"), "--progress", "log"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        cleanup.callback(terminate, monitor, 10)
        target = _metrics_target(monitor, monitor_log)
        services.append(start_prometheus(
            prometheus_bin, tmp_path / "prom", target=target, rule_files=[rules],
            alertmanager=services[0].url.removeprefix("http://")))
        yield {"prometheus": services[1], "alertmanager": services[0], "monitor": monitor,
               "monitor_log": monitor_log, "target": target, "counts": counts}


def _metrics_target(process: subprocess.Popen[bytes], log: Path) -> str:
    """HOST:PORT the monitor serves metrics on, read from its log (it bound port 0)."""
    deadline = time.monotonic() + MONITOR_START
    pattern = re.compile(r"serving metrics on http://([\d.]+:\d+)/metrics")
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        if match := pattern.search(text):
            return match.group(1)
        if process.poll() is not None:
            pytest.fail(f"monitor run exited with {process.returncode} before serving metrics:"
                        f"\n{text[-3000:]}")
        time.sleep(0.1)
    pytest.fail(f"monitor run did not serve metrics within {MONITOR_START:.0f} s:\n"
                f"{log.read_text(encoding='utf-8', errors='replace')[-3000:]}")


def _diagnose(stack: dict[str, Any], hook: Webhook) -> str:
    """What each part saw, for a failure message."""
    prometheus: Service = stack["prometheus"]
    parts = []
    for path in ("/api/v1/alerts", "/api/v1/rules",
                 "/api/v1/query?query=flag:social_flags:increase5m",
                 "/api/v1/query?query=up"):
        try:
            body = json.dumps(prometheus.get_json(path)["data"], ensure_ascii=False)
        except Exception as exc:  # diagnostics only: report, never mask the failure
            body = f"unavailable: {exc}"
        parts.append(f"prometheus {path}: {body[:4000]}")
    try:
        with urllib.request.urlopen(f"http://{stack['target']}/metrics", timeout=5) as r:
            flags = [line for line in r.read().decode().splitlines()
                     if line.startswith(("social_flags_total", "social_posts_"))
                     and "_created" not in line and not line.endswith(" 0.0")]
        parts.append("monitor metrics (non-zero):\n" + "\n".join(flags))
    except OSError as exc:
        parts.append(f"monitor metrics unavailable: {exc}")
    parts.append(f"webhook received {len(hook.payloads)} notification(s): "
                 f"{json.dumps(hook.payloads)[:3000]}")
    parts.append("monitor log tail:\n" + "\n".join(
        stack["monitor_log"].read_text(encoding="utf-8", errors="replace").splitlines()[-15:]))
    parts.append("prometheus log tail:\n" + prometheus.log_tail(15))
    parts.append("alertmanager log tail:\n" + stack["alertmanager"].log_tail(15))
    return "\n\n".join(parts)


async def _wait_for(hook: Webhook, names: set[str], deadline: float) -> None:
    while not names <= hook.firing().keys():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        hook.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hook.changed.wait(), timeout=min(remaining, 1.0))


@pytest.mark.timeout(150)
async def test_spam_flood_and_csam_post_reach_the_webhook(
        stack: dict[str, Any], webhook: tuple[Webhook, str]) -> None:
    hook, _url = webhook
    expected = {"SpamFlagSpike", "CsamRiskFlagged"}
    await _wait_for(hook, expected, time.monotonic() + ALERT_WAIT)
    firing = hook.firing()
    missing = expected - firing.keys()
    assert not missing, (
        f"no firing {sorted(missing)} at the webhook within {ALERT_WAIT:.0f} s "
        f"(stream: {stack['counts']})\n\n{_diagnose(stack, hook)}")

    spam = firing["SpamFlagSpike"]
    assert spam["receiver"] == "organizers"
    assert spam["labels"]["flag"] == "spam" and spam["labels"]["severity"] == "warning"
    count = re.match(r"(\d+) posts were flagged spam", spam["annotations"]["description"])
    assert count and int(count.group(1)) >= 20, spam["annotations"]
    assert spam["annotations"]["runbook"]

    csam = firing["CsamRiskFlagged"]
    assert csam["receiver"] == "organizers-critical"
    assert csam["labels"] == {"alertname": "CsamRiskFlagged", "flag": "csam_risk",
                              "source": "bluesky", "severity": "critical"}
    assert csam["annotations"]["description"].startswith("1 post(s) from bluesky"), csam

    unexpected = firing.keys() - expected
    assert not unexpected, (f"alerts that an ordinary stream with one flood must not raise: "
                            f"{sorted(unexpected)}\n\n{_diagnose(stack, hook)}")
