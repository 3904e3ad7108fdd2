"""Real Prometheus and Alertmanager on loopback, and the time-scaled configs they load.

The shipped rules (``deploy/prometheus/alerts.yml``) use windows of minutes
and hours; an end-to-end test cannot wait that long. :func:`scale_rules`
divides every duration the rules contain by one factor and changes nothing
else, so the test runs the shipped logic on a faster clock:

* range and subquery selectors ``[5m]``, ``[1h:5m]`` and ``offset 5m``, in
  ``expr`` and in the queries inside annotations;
* ``for:`` and a group's ``interval:``.

With factor 60 a shipped minute is a test second: ``[5m]`` -> ``[5s]``,
``[1h] offset 5m`` -> ``[1m] offset 5s``, ``for: 2m`` -> ``for: 2s``. Counts
(floors, ratios) stay as they are, so the replayed stream must be paced at
the same factor (``replay:FILE?speed=60x``). Metric and rule names are not
touched (``flag:social_flags:increase5m`` keeps its name).
:func:`scale_alertmanager` does the same to the shipped routing's waits and
points every webhook at the test's receiver.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.processes import terminate

__all__ = [
    "DURATION",
    "Service",
    "format_duration",
    "free_port",
    "parse_duration",
    "scale_alertmanager",
    "scale_promql",
    "scale_rules",
    "start_alertmanager",
    "start_prometheus",
]

#: A Prometheus duration: one or more number+unit pairs, e.g. 90s, 1h30m, 500ms.
DURATION = r"(?:\d+(?:ms|[smhdwy]))+"
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
            "w": 7 * 86_400_000, "y": 365 * 86_400_000}
_PART = re.compile(r"(\d+)(ms|[smhdwy])")
_RANGE = re.compile(rf"\[({DURATION})(?::({DURATION})?)?\]")
_OFFSET = re.compile(rf"\boffset\s+(-?)({DURATION})")
_AM_TIMINGS = ("group_wait", "group_interval", "repeat_interval")


def parse_duration(text: str) -> int:
    """'1h30m' -> milliseconds; ValueError for anything else."""
    if not re.fullmatch(DURATION, text):
        raise ValueError(f"{text!r} is not a Prometheus duration (e.g. 5m, 1h30m, 500ms)")
    return sum(int(n) * _UNIT_MS[unit] for n, unit in _PART.findall(text))


def format_duration(ms: int) -> str:
    """Milliseconds -> the shortest exact form Prometheus reads: 5000 -> '5s', 500 -> '500ms'."""
    for unit in ("h", "m", "s"):
        if ms and ms % _UNIT_MS[unit] == 0:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


def _scaled(text: str, factor: int) -> str:
    ms = parse_duration(text)
    if ms % factor:
        raise ValueError(f"duration {text} does not divide by {factor}; pick another factor")
    return format_duration(ms // factor)


def scale_promql(expr: str, factor: int) -> str:
    """Divide every range, subquery and offset duration in a PromQL text by ``factor``."""

    def range_(m: re.Match[str]) -> str:
        step = m.group(2)
        if m.group(0).count(":") == 0:
            return f"[{_scaled(m.group(1), factor)}]"
        return f"[{_scaled(m.group(1), factor)}:{_scaled(step, factor) if step else ''}]"

    def offset(m: re.Match[str]) -> str:
        return f"offset {m.group(1)}{_scaled(m.group(2), factor)}"

    return _OFFSET.sub(offset, _RANGE.sub(range_, expr))


def scale_rules(text: str, factor: int) -> str:
    """A rule file's YAML with every duration divided by ``factor`` (see the module doc)."""
    doc = yaml.safe_load(text)
    for group in doc["groups"]:
        if "interval" in group:
            group["interval"] = _scaled(group["interval"], factor)
        for rule in group["rules"]:
            rule["expr"] = scale_promql(rule["expr"], factor)
            if "for" in rule:
                rule["for"] = _scaled(rule["for"], factor)
            for name, value in rule.get("annotations", {}).items():
                rule["annotations"][name] = scale_promql(value, factor)
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)


def scale_alertmanager(text: str, factor: int, webhook_url: str) -> str:
    """The Alertmanager config with route timings divided by ``factor``, webhooks at one URL."""
    doc = yaml.safe_load(text)

    def walk(route: dict[str, Any]) -> None:
        for name in _AM_TIMINGS:
            if name in route:
                route[name] = format_duration(parse_duration(route[name]) // factor)
        for child in route.get("routes", []):
            walk(child)

    walk(doc["route"])
    for receiver in doc.get("receivers", []):
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook_url
    return yaml.safe_dump(doc, sort_keys=False)


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (expressions) as literal blocks, so a scaled file reads well."""


_Dumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def free_port() -> int:
    """A loopback port that was free a moment ago (bind port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Service:
    """A started binary: its process, its log and its HTTP base URL."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str
    _log: Any = field(default=None, repr=False)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def get_json(self, path: str, timeout: float = 5.0) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; always closes the log."""
        terminate(self.process)
        if self._log is not None:
            self._log.close()
            self._log = None


def _start(name: str, argv: list[str], log_path: Path, url: str, *,
           ready_path: str = "/-/ready", timeout: float = 20.0) -> Service:
    """Start ``argv`` with output to ``log_path``; wait until ``url + ready_path`` answers 200."""
    log = log_path.open("wb")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    service = Service(name, process, log_path, url, log)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            service.stop()
            raise RuntimeError(f"{name} exited with {process.returncode} at start-up:\n"
                               f"{service.log_tail()}")
        with contextlib.suppress(OSError, urllib.error.URLError), \
                urllib.request.urlopen(url + ready_path, timeout=1) as response:
            if response.status == 200:
                return service
        if time.monotonic() > deadline:
            service.stop()
            raise RuntimeError(f"{name} was not ready on {url}{ready_path} within {timeout:.0f} s:"
                               f"\n{service.log_tail()}")
        time.sleep(0.1)


def start_alertmanager(binary: str, workdir: Path, config: str) -> Service:
    """A single Alertmanager (clustering off) on a free loopback port, config text given."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "alertmanager.yml"
    config_path.write_text(config, encoding="utf-8")
    port = free_port()
    argv = [binary, f"--config.file={config_path}", f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
            "--log.level=debug"]
    return _start("alertmanager", argv, workdir / "alertmanager.log", f"http://127.0.0.1:{port}")


def start_prometheus(binary: str, workdir: Path, *, target: str, rule_files: list[Path],
                     alertmanager: str, interval: str = "1s",
                     job: str = "social-monitor") -> Service:
    """Prometheus scraping ``target`` (HOST:PORT) every ``interval``, evaluating ``rule_files``
    as often, and sending alerts to ``alertmanager`` (HOST:PORT)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval,
                   "scrape_timeout": interval},
        "rule_files": [str(p) for p in rule_files],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}],
    }
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    port = free_port()
    argv = [binary, f"--config.file={config_path}", f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}"]
    return _start("prometheus", argv, workdir / "prometheus.log", f"http://127.0.0.1:{port}")
