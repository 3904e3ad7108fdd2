"""Acceptance: SIGTERM or SIGINT to a running ``monitor run`` mid-stream drains the
queue, closes the archive (manifest written, verify passes) and exits 0.

``data/slow_stream.jsonl``: 60 bluesky posts a quarter second apart, replayed in
real time, so the stream is still going when the signal arrives.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest

from monitor.archive_export import iter_day
from monitor.cli import main

if TYPE_CHECKING:
    from conftest import MonitorProcess

STREAM = Path(__file__).parent / "data" / "slow_stream.jsonl"
DAY = "2025-08-21"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_stream_drains_closes_the_archive_and_exits_0(
        start_monitor: Callable[..., MonitorProcess], tmp_path: Path,
        sig: signal.Signals) -> None:
    archive = tmp_path / "archive"
    process = start_monitor("--source", f"replay:{STREAM}?speed=realtime", "--exit-when-done",
                            "--archive-dir", str(archive), "--batch-size", "4")
    before = process.scrape_until(
        lambda m: m.value("social_posts_processed_total", source="bluesky", lang="en") >= 8)
    received = before.value("social_posts_received_total", source="bluesky")

    process.signal(sig)
    assert process.wait(timeout=15) == 0, process.stderr

    assert process.wait_for_log(r"stopping: draining \d+ queued posts")
    done = process.wait_for_log(r"done in .* processed (\d+) \|.* archived (\d+) \|")
    processed, archived = int(done.group(1)), int(done.group(2))
    assert received <= processed < 60  # nothing received before the signal was lost ...
    assert archived == processed        # ... and everything processed is durable
    manifest = orjson.loads((archive / DAY / "manifest.json").read_bytes())
    assert manifest["posts"] == processed
    ids = [t.post.id for t in iter_day(archive / DAY)]
    assert ids == [f"slow-{i:03d}" for i in range(processed)]  # a prefix of the stream, in order
    assert main(["archive", "verify", str(archive)]) == 0
    assert not re.search(r"Traceback|KeyboardInterrupt", process.stderr)
