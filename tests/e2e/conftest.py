"""Run the real ``monitor`` process, read its live /metrics, signal it, check its archive.

``start_monitor(*args)`` starts ``python -m monitor run ARGS`` in the test's
folder with metrics on a port the monitor picks itself (``127.0.0.1:0``,
read back from its log), so parallel runs never collide. A process still
running at teardown is killed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

TESTS = Path(__file__).parents[1]
RULES = TESTS / "runtime" / "rules"
REPLAY_DATA = TESTS / "data" / "replay"
E2E_DATA = Path(__file__).parent / "data"
KEY_HEX = "6b" * 32  # MONITOR_PSEUDONYM_KEY for every run: no key file needed
_SERVING = re.compile(r"serving metrics on (http://\S+/metrics)")


@dataclass
class MonitorProcess:
    """One ``monitor run`` child process and what it wrote to stderr."""

    proc: subprocess.Popen[str]
    cwd: Path
    lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    def start_reading(self) -> None:
        def pump() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.lines.append(line.rstrip("\n"))

        self._reader = threading.Thread(target=pump, daemon=True)
        self._reader.start()

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def wait_for_log(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := compiled.search(line):
                    return match
            if self.proc.poll() is not None and (self._reader is None
                                                 or not self._reader.is_alive()):
                break
            time.sleep(0.02)
        raise AssertionError(f"no log line matching {pattern!r}; stderr:\n{self.stderr}")

    @property
    def metrics_url(self) -> str:
        return self.wait_for_log(_SERVING.pattern).group(1)

    def scrape(self) -> Scrape:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            return Scrape(response.read().decode())

    def scrape_until(self, ready: Callable[[Scrape], bool], timeout: float = 20.0) -> Scrape:
        """Scrape until ``ready(scrape)`` holds; return that scrape."""
        deadline = time.monotonic() + timeout
        scrape = Scrape("")
        while time.monotonic() < deadline:
            try:
                scrape = self.scrape()
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError(f"the monitor exited ({self.proc.returncode}) before "
                                         f"its metrics were ready; stderr:\n{self.stderr}"
                                         ) from None
                raise
            if ready(scrape):
                return scrape
            time.sleep(0.05)
        raise AssertionError(f"metrics never got ready; last scrape:\n{scrape.text}\n"
                             f"stderr:\n{self.stderr}")

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        code = self.proc.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=5)
        return code


class Scrape:
    """One /metrics exposition, parsed."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [s for family in text_string_to_metric_families(text)
                        for s in family.samples]
        self.families = {family.name for family in text_string_to_metric_families(text)}

    def value(self, name: str, **labels: str) -> float:
        """The sample with exactly these labels; 0.0 when absent."""
        return next((s.value for s in self.samples if s.name == name and s.labels == labels),
                    0.0)

    def by(self, name: str, label: str, **where: str) -> dict[str, float]:
        """{value of ``label``: sample value} over samples matching ``where``, zeros left out."""
        return {s.labels[label]: s.value for s in self.samples
                if s.name == name and s.value and where.items() <= s.labels.items()}


def monitor_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "monitor", "run", *args]


def start(cwd: Path, *args: str) -> MonitorProcess:
    env = {**os.environ, "MONITOR_PSEUDONYM_KEY": KEY_HEX, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(monitor_command(*args), cwd=cwd, env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    process = MonitorProcess(proc, cwd)
    process.start_reading()
    return process


@pytest.fixture
def start_monitor(tmp_path: Path) -> Iterator[Callable[..., MonitorProcess]]:
    """``start_monitor(*run_args)``; the fixture ruleset and a free port unless given."""
    started: list[MonitorProcess] = []

    def launch(*args: str, rules: bool = True) -> MonitorProcess:
        extra = ["--rules", str(RULES)] if rules else []
        process = start(tmp_path, *args, *extra, "--metrics-addr", "127.0.0.1:0")
        started.append(process)
        return process

    yield launch
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(timeout=10)


def too_large_line() -> bytes:
    """A well-formed post of about 300 KB: over the 256 KiB record limit."""
    record = {"id": "zzpostid-huge", "text": "4o " * 100_000,
              "created_at": "2025-08-13T10:00:04Z"}
    return json.dumps(record).encode() + b"\n"


def write_mixed_replay(path: Path) -> Path:
    """tests/data/replay/mixed.jsonl with an over-256-KiB line inserted after line 8."""
    lines = (REPLAY_DATA / "mixed.jsonl").read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([*lines[:8], too_large_line(), *lines[8:]]))
    return path


@pytest.fixture(scope="session")
def mixed_expected() -> dict[str, Any]:
    return json.loads((REPLAY_DATA / "mixed.expected.json").read_text(encoding="utf-8"))


@dataclass
class FinishedRun:
    """A finished ``monitor run`` over the mixed file, with its last live scrape."""

    code: int
    stderr: str
    archive: Path
    metrics: Scrape


@pytest.fixture(scope="session")
def mixed_run(tmp_path_factory: pytest.TempPathFactory,
              mixed_expected: dict[str, Any]) -> FinishedRun:
    """``monitor run --source replay:MIXED?speed=max --exit-when-done``, scraped before exit.

    A second source, ``data/keepalive.jsonl`` (two mastodon posts 4 s apart,
    another day, replayed in real time), keeps the process up after the
    mixed file is done, long enough to scrape /metrics once every count of
    the mixed file (source ``replay``) has arrived.
    """
    folder = tmp_path_factory.mktemp("mixed_run")
    mixed = write_mixed_replay(folder / "mixed.jsonl")
    archive = folder / "archive"
    process = start(folder, "--source", f"replay:{mixed}?speed=max",
                    "--source", f"replay:{E2E_DATA / 'keepalive.jsonl'}?speed=realtime",
                    "--exit-when-done", "--rules", str(RULES), "--archive-dir", str(archive),
                    "--metrics-addr", "127.0.0.1:0")
    valid = len(mixed_expected["valid_ids"])
    rejected = sum(mixed_expected["rejected"].values())

    def settled(scrape: Scrape) -> bool:
        processed = sum(scrape.by("social_posts_processed_total", "lang", source="replay")
                        .values())
        refused = sum(scrape.by("social_posts_rejected_total", "reason", source="replay")
                      .values())
        return (processed == valid and refused == rejected
                and scrape.value("social_archive_posts_total", source="replay") == valid)

    try:
        metrics = process.scrape_until(settled)
        code = process.wait(timeout=30)
    finally:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(timeout=10)
    return FinishedRun(code, process.stderr, archive, metrics)
