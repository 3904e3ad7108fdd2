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
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from monitor.bench.floor import floor_rate
from monitor.bench.pipeline import paced_latencies, pipeline_rate
from monitor.bench.stages import StageCosts, stage_costs
from monitor.bench.synth import write_jsonl

__all__ = ["BenchReport", "NoPosts", "StagesReport", "run_bench", "run_stages"]

#: The paced load of the latency phase, posts per second (issue 8).
PACED_RATE = 5_000
#: Most posts the latency phase replays (10 s at 5,000/s).
PACED_POSTS = 50_000


class NoPosts(ValueError):
    """The file holds no line that decodes to a post: there is nothing to measure."""


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


@contextmanager
def _posts_file(posts: int | None, file: Path | None, vocabulary: str,
                progress: Callable[[str], None]) -> Iterator[Path]:
    """``file``, or ``posts`` synthetic posts written to a temporary one."""
    if file is not None:
        yield file
        return
    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp:
        path = Path(tmp) / "posts.jsonl"
        progress(f"writing {posts:,} synthetic posts ({vocabulary} vocabulary) to {path}")
        write_jsonl(str(path), posts or 0, vocabulary=vocabulary)
        yield path


def _floor(file: Path, progress: Callable[[str], None]) -> tuple[int, float]:
    """The floor's (posts, CPU-seconds), in a fresh process; NoPosts if there are none."""
    progress("floor: orjson + blank spaCy tokenizer")
    posts, seconds = _in_child(floor_rate, file)
    if not posts:
        raise NoPosts(str(file))
    return posts, seconds


def run_bench(posts: int | None = None, file: Path | None = None,
              rules: Path | None = None, progress: Callable[[str], None] = lambda _: None,
              tagger_process: bool = False, vocabulary: str = "campaign") -> BenchReport:
    """Generate ``posts`` synthetic posts (or read ``file``) and measure every phase."""
    with _posts_file(posts, file, vocabulary, progress) as file:
        floor_posts, floor_cpu = _floor(file, progress)
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


@dataclass(slots=True)
class StagesReport:
    """``monitor bench --stages``: the floor and each stage's cost, in CPU microseconds a post."""

    posts: int
    floor_us_per_post: float
    stages_us_per_post: dict[str, float]
    rejected: int
    #: the tag stage split by the tagger's steps
    tag_steps_us_per_post: dict[str, float]

    @property
    def total_us_per_post(self) -> float:
        return sum(self.stages_us_per_post.values())

    def summary(self) -> dict[str, Any]:
        return {"posts": self.posts, "floor_us_per_post": self.floor_us_per_post,
                "stages_us_per_post": self.stages_us_per_post,
                "tag_steps_us_per_post": self.tag_steps_us_per_post,
                "total_us_per_post": round(self.total_us_per_post, 2)}


def run_stages(posts: int | None = None, file: Path | None = None, rules: Path | None = None,
               progress: Callable[[str], None] = lambda _: None,
               vocabulary: str = "campaign") -> StagesReport:
    """The floor and every pipeline stage alone, each phase in a fresh process."""
    with _posts_file(posts, file, vocabulary, progress) as file:
        floor_posts, floor_cpu = _floor(file, progress)
        progress("stages: decode, dedup, tag, moderate, metrics, archive, each timed alone")
        costs: StageCosts = _in_child(stage_costs, file, rules)
    return StagesReport(
        posts=costs.posts,
        floor_us_per_post=round(floor_cpu / max(1, floor_posts) * 1e6, 2),
        stages_us_per_post={k: round(v, 2) for k, v in costs.us_per_post().items()},
        rejected=costs.rejected,
        tag_steps_us_per_post={k: round(v, 2) for k, v in costs.tag_steps_us_per_post().items()},
    )
