"""``monitor bench``: the floor and the full pipeline on the same posts, one session.

Each phase runs in its own fresh process, so one phase's memory (spaCy's
vocabulary, the archive's buffers) neither helps nor burdens the next, and
the peak RSS reported is the pipeline's own. Rates are posts per
CPU-second of that process (all its threads): on a machine shared with
other work, wall time measures the neighbours as much as the monitor.
"""

from __future__ import annotations

import multiprocessing
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from monitor.bench.floor import floor_rate
from monitor.bench.pipeline import paced_latencies, pipeline_rate
from monitor.bench.synth import write_jsonl

__all__ = ["BenchReport", "run_bench"]

#: The paced load of the latency phase, posts per second (issue 8).
PACED_RATE = 5_000
#: Most posts the latency phase replays (10 s at 5,000/s).
PACED_POSTS = 50_000


@dataclass(slots=True)
class BenchReport:
    """The figures ``monitor bench`` prints; ``--json`` prints the first seven keys."""

    posts: int
    floor_posts_per_s: float
    pipeline_posts_per_s: float
    ratio: float
    p50_ms: float
    p99_ms: float
    peak_rss_mb: float
    pipeline_wall_posts_per_s: float
    archived: int
    paced_posts: int

    def summary(self) -> dict[str, Any]:
        """The issue's JSON object: exactly these keys."""
        keys = ("posts", "floor_posts_per_s", "pipeline_posts_per_s", "ratio", "p50_ms",
                "p99_ms", "peak_rss_mb")
        return {k: v for k, v in asdict(self).items() if k in keys}


def _in_child(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` in a freshly spawned process and return its result."""
    with ProcessPoolExecutor(max_workers=1,
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def run_bench(posts: int | None = None, file: Path | None = None,
              rules: Path | None = None, progress: Callable[[str], None] = lambda _: None,
              tagger_process: bool = False, vocabulary: str = "campaign") -> BenchReport:
    """Generate ``posts`` synthetic posts (or read ``file``) and measure every phase."""
    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp:
        if file is None:
            file = Path(tmp) / "posts.jsonl"
            progress(f"writing {posts:,} synthetic posts ({vocabulary} vocabulary) to {file}")
            write_jsonl(str(file), posts or 0, vocabulary=vocabulary)
        progress("floor: orjson + blank spaCy tokenizer")
        floor_posts, floor_cpu = _in_child(floor_rate, file)
        progress("pipeline: replay at max speed -> processor -> metrics -> archive")
        run = _in_child(pipeline_rate, file, rules, tagger_process)
        paced = min(floor_posts, PACED_POSTS)
        progress(f"latency: {paced:,} posts paced at {PACED_RATE:,}/s")
        latencies = _in_child(paced_latencies, file, PACED_RATE, paced, rules, tagger_process)
    floor = floor_posts / floor_cpu if floor_cpu > 0 else float("inf")
    pipeline = run.posts / run.cpu_seconds if run.cpu_seconds > 0 else float("inf")
    return BenchReport(
        posts=floor_posts,
        floor_posts_per_s=round(floor, 1),
        pipeline_posts_per_s=round(pipeline, 1),
        ratio=round(pipeline / floor, 4),
        p50_ms=round(_quantile(latencies, 0.50) * 1000, 3),
        p99_ms=round(_quantile(latencies, 0.99) * 1000, 3),
        peak_rss_mb=round(run.peak_rss_mb, 1),
        pipeline_wall_posts_per_s=round(run.posts / run.wall_seconds, 1),
        archived=run.archived,
        paced_posts=len(latencies),
    )
