"""A source far faster than the processor: memory stays flat, the queue shows it, nothing drops.

``monitor run`` replays synthetic posts at ``speed=max`` (the reader decodes
tens of thousands of lines a second; tagging manages a few thousand) with a
small queue. While it runs, the test scrapes the real ``/metrics`` and reads
the process's RSS: ``social_queue_depth`` sits near the queue size and
never above it (the reader waits: backpressure, not buffering), RSS after
warm-up does not grow with the posts read, and at the end every post of the
input is in the archive, once, and ``monitor archive verify`` passes.
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

from monitor.bench.synth import write_jsonl
from tests.support.monitor_process import MonitorRun, archived_ids

POSTS = 20_000
QUEUE = 500
ARCHIVED = "social_archive_posts_total"


def test_a_source_faster_than_the_processor_is_held_back_not_buffered_or_dropped(
        tmp_path: Path) -> None:
    replay = tmp_path / "flood.jsonl"
    write_jsonl(str(replay), POSTS, seed=11)
    folder = tmp_path / "run"
    folder.mkdir()
    run = MonitorRun(folder, f"replay:{replay}?speed=max", {},
                     extra=("--queue-size", str(QUEUE), "--batch-size", "64"))
    depths: list[float] = []
    rss: list[tuple[float, int]] = []  # (posts archived, bytes)
    with run:
        process = psutil.Process(run.proc.pid)
        deadline = time.monotonic() + 240
        archived = 0.0
        while archived < POSTS:
            assert time.monotonic() < deadline, f"only {archived:g} archived\n{run.stderr}"
            depths.append(run.metric("social_queue_depth"))
            archived = sum(run.metric(ARCHIVED, source=s)
                           for s in ("bluesky", "x", "mastodon", "reddit"))
            rss.append((archived, process.memory_info().rss))
            time.sleep(0.2)
        assert run.stop(signal.SIGTERM) == 0, run.stderr

    ids = archived_ids(folder / "archive")
    assert len(ids) == len(set(ids)) == POSTS  # nothing dropped, nothing twice
    verified = subprocess.run([sys.executable, "-m", "monitor", "archive", "verify",
                               str(folder / "archive")], capture_output=True, text=True,
                              check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    assert max(depths) <= QUEUE
    busy = [d for d in depths if d > 0]
    assert busy and statistics.median(busy) >= QUEUE / 2, depths  # backpressure is visible
    warm = [size for done, size in rss if done >= POSTS * 0.25]
    late = [size for done, size in rss if done >= POSTS * 0.5]
    growth, late_growth = ((max(sizes) - sizes[0]) / 2**20 for sizes in (warm, late))
    print(f"\nqueue depth: max {max(depths):g}, median while busy {statistics.median(busy):g} "
          f"(queue {QUEUE}); RSS {warm[0] / 2**20:.0f} MB after 25% of {POSTS} posts, grew "
          f"{growth:.1f} MB by the end ({late_growth:.1f} MB over the second half; "
          f"{len(rss)} samples)")
    # new words grow spaCy's vocabulary a little: 12.9-15.5 MB over the second half in
    # six runs (a limit of 15 failed one CI run); 10,000 buffered posts would add ~30 MB
    assert late_growth < 20, f"RSS grew {late_growth:.1f} MB over the second half"
