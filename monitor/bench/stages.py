"""Where a post's CPU time goes: each stage of the pipeline timed alone, on the same posts.

The pipeline's rate says how far it is from the floor; this says which stage
to work on, without a sampling profiler. The posts go through the stages in
the pipeline's order and batch size, each batch's output feeding the next
stage, and the CPU time of this process (all its threads) is read around
each stage's call alone. One process: tagging runs here, as it does without
a tagging process. What no stage holds (the event loop, queues, the pipe to
a tagging process) is what the pipeline's own figure has on top.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from monitor.codec import DecodeError, decode_post
from monitor.memory import tune_for_streams
from monitor.model import Post
from monitor.moderation.moderator import Moderator
from monitor.processor import Processor
from monitor.sinks.archive import ArchiveWriter
from monitor.sinks.metrics import Metrics
from monitor.tagging import default_rules_path, load_ruleset

__all__ = ["STAGES", "StageCosts", "stage_costs"]

#: The stages, in the order a post meets them.
STAGES = ("decode", "dedup", "tag", "moderate", "metrics", "archive")
#: Posts per batch, as LocalRuntime takes them from its queue under load.
BATCH = 256


@dataclass(slots=True)
class StageCosts:
    """CPU-seconds each stage spent on ``posts`` posts; ``rejected`` lines did not decode,
    ``archived`` posts were made durable. ``tag_steps``: the tag stage's seconds split
    by the tagger's steps (they add up to ``seconds["tag"]``)."""

    posts: int
    rejected: int
    seconds: dict[str, float]
    archived: int
    tag_steps: dict[str, float]

    def us_per_post(self) -> dict[str, float]:
        """Each stage's microseconds of CPU a post, in :data:`STAGES` order."""
        n = max(1, self.posts)
        return {stage: self.seconds[stage] / n * 1e6 for stage in STAGES}

    def tag_steps_us_per_post(self) -> dict[str, float]:
        """The same for the tagger's steps, in the order they run."""
        n = max(1, self.posts)
        return {step: seconds / n * 1e6 for step, seconds in self.tag_steps.items()}


class _Laps:
    """CPU time between a tagger's ``lap`` calls, summed per step name.

    Tagging is where the floor's own work (tokenizing) meets the rules' and
    the other libraries': one figure for the stage could not say which part
    of it a change could still shrink."""

    def __init__(self, steps: tuple[str, ...]) -> None:
        self.seconds = dict.fromkeys(steps, 0.0)
        #: when the last step ended
        self.mark = 0.0

    def start(self, at: float) -> None:
        """Count from ``at`` (a ``time.process_time()`` reading)."""
        self.mark = at

    def __call__(self, step: str) -> None:
        now = time.process_time()
        self.seconds[step] += now - self.mark
        self.mark = now


def _batches(path: Path) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                batch.append(line)
                if len(batch) == BATCH:
                    yield batch
                    batch = []
    if batch:
        yield batch


def stage_costs(path: Path, rules: Path | None = None) -> StageCosts:
    """Run every post of ``path`` through each stage in turn; CPU time per stage."""
    # spaCy: only in the process that tags
    from monitor.tagging import Tagger, compile_ruleset
    from monitor.tagging.tagger import TAG_STEPS

    rs = load_ruleset(rules or default_rules_path())
    tagger = Tagger(compile_ruleset(rs))
    processor = Processor(tagger, moderator=Moderator(rs.moderation, rs.campaign.trusted_domains))
    metrics = Metrics(rs)
    seconds = dict.fromkeys(STAGES, 0.0)
    #: "refresh": the step of a pending tagger refresh each batch pays, and the bookkeeping
    laps = _Laps(("refresh", *TAG_STEPS))
    clock = time.process_time
    posts = rejected = 0
    tune_for_streams()  # as monitor run does
    with tempfile.TemporaryDirectory(prefix="monitor-stages-") as tmp:
        archive = ArchiveWriter(Path(tmp) / "archive", key_file=Path(tmp) / "pseudonym.key")
        for lines in _batches(path):
            t0 = clock()
            decoded: list[Post] = []
            for line in lines:
                try:
                    decoded.append(decode_post(line))
                except DecodeError:
                    rejected += 1
            for post in decoded:
                metrics.record_received(post.source)
            received = time.monotonic()  # the processing histogram's start, as if queued now
            t1 = clock()
            result, fresh = processor.admit(decoded)
            t2 = clock()
            laps.start(t2)
            tagged = processor.tag(fresh, laps) if fresh else ([], rs.name, rs.hash)
            laps("refresh")  # what came after the last step: counting for the next refresh
            t3 = laps.mark  # so the steps add up to the stage
            result = processor.complete(result, fresh, *tagged)
            t4 = clock()
            metrics.record_tagged(result.tagged, [received] * len(result.tagged))
            if result.duplicates:
                metrics.record_duplicates(p.source for p in result.duplicates)
            t5 = clock()
            archive.write_batch(result.tagged)
            archive.maybe_flush()
            t6 = clock()
            posts += len(decoded)
            for stage, start, end in zip(STAGES, (t0, t1, t2, t3, t4, t5), (t1, t2, t3, t4, t5, t6),
                                         strict=True):
                seconds[stage] += end - start
        t0 = clock()
        archive.close()  # the last flush, and the days' manifests
        seconds["archive"] += clock() - t0
    return StageCosts(posts, rejected, seconds, archive.durable_posts, laps.seconds)
