"""Smoke: the README's run on the bundled sample stream with the shipped keep4o ruleset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from monitor.cli import main

if TYPE_CHECKING:
    from conftest import MonitorProcess

SAMPLE = Path(__file__).parents[2] / "samples" / "stream.jsonl"


def test_the_bundled_sample_runs_with_the_default_ruleset(
        start_monitor: Callable[..., MonitorProcess], tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    process = start_monitor("--source", f"replay:{SAMPLE}?speed=max", "--exit-when-done",
                            "--archive-dir", str(archive), rules=False)
    assert process.wait(timeout=120) == 0, process.stderr

    assert process.wait_for_log(r"ruleset 'keep4o' \(")
    ids = {orjson.loads(line)["id"] for line in SAMPLE.read_bytes().splitlines() if line.strip()}
    manifests = [orjson.loads(p.read_bytes()) for p in archive.glob("*/manifest.json")]
    assert sum(m["posts"] for m in manifests) == len(ids)
    assert {m["ruleset"]["name"] for m in manifests} == {"keep4o"}
    assert main(["archive", "verify", str(archive)]) == 0
