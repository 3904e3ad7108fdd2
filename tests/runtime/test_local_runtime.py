"""The embedded runtime: sources -> bounded queue -> processor -> metrics and archive.

Everything here is wired for real (replay files, the fixture ruleset, a fresh
metrics registry, an archive on disk); the only sources written for the tests
are small classes implementing the :class:`monitor.sources.base.Source`
protocol, which is what any plugin source does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.archive_export import iter_day
from monitor.archive_verify import verify_archive
from monitor.model import Post
from monitor.privacy import Pseudonymizer
from monitor.processor import Processor
from monitor.runtime.local import LocalRuntime
from monitor.runtime.progress import Progress
from monitor.sinks.archive import ArchiveWriter
from monitor.sinks.base import Sink
from monitor.sinks.metrics import Metrics
from monitor.sources.base import Rejected, Source
from monitor.sources.replay import ReplaySource
from monitor.tagging import Tagger
from tests.support.sinks import Collecting

NOON = datetime(2025, 8, 13, 12, 0, tzinfo=UTC)


class GeneratedSource:
    """Posts made up on the spot, as fast as the runtime takes them.

    A real Source: ``stream()`` never awaits anything but the runtime taking
    the post, so it is always faster than the processor. ``on_post(i)`` runs
    before post ``i`` is handed over. A live source (``finite=False``) idles
    after its posts until the runtime cancels it.
    """

    name = "replay"

    def __init__(self, count: int, *, finite: bool = True, text: str = "I miss 4o #keep4o",
                 prefix: str = "gen", on_post: Callable[[int], None] | None = None,
                 fail_after: int | None = None) -> None:
        self.count = count
        self.prefix = prefix
        self.finite = finite
        self.text = text
        self.on_post = on_post
        self.fail_after = fail_after

    async def stream(self) -> AsyncIterator[Post | Rejected]:
        for i in range(self.count):
            if self.fail_after is not None and i == self.fail_after:
                raise ConnectionResetError("the feed went away")
            if self.on_post is not None:
                self.on_post(i)
            yield Post(id=f"{self.prefix}-{i}", source=self.name, text=self.text,
                       created_at=NOON + timedelta(milliseconds=i), author=f"author-{i % 5}",
                       lang="en")
        if not self.finite:
            await asyncio.Event().wait()


def runtime_for(sources: list[Source], processor: Processor, metrics: Metrics,
                archive: ArchiveWriter | None, **options: Any) -> LocalRuntime:
    options.setdefault("progress", Progress("off"))
    return LocalRuntime(sources, processor, metrics, archive, **options)


def manifest(archive_dir: Path, day: str) -> dict[str, Any]:
    return orjson.loads((archive_dir / day / "manifest.json").read_bytes())


def test_the_test_sources_implement_the_source_protocol() -> None:
    assert isinstance(GeneratedSource(1), Source)
    assert isinstance(Listed([]), Source)


async def test_replay_with_bad_lines_archives_each_valid_post_once_and_counts_every_reject(
        mixed_replay: Path, mixed_expected: dict[str, Any], processor: Processor,
        metrics: Metrics, archive: ArchiveWriter, archive_dir: Path,
        sample: Callable[..., float]) -> None:
    runtime = runtime_for([ReplaySource(mixed_replay)], processor, metrics, archive,
                          batch_size=4, exit_when_done=True)
    stats = await runtime.run()

    valid = mixed_expected["valid_ids"]
    rejected = mixed_expected["rejected"]
    day = archive_dir / mixed_expected["day"]
    assert manifest(archive_dir, mixed_expected["day"])["posts"] == len(valid)
    assert sorted(t.post.id for t in iter_day(day)) == sorted(valid)
    report = verify_archive(archive_dir)
    assert report.ok, report.problems
    assert report.posts == len(valid)

    for reason, count in rejected.items():
        assert sample(metrics, "social_posts_rejected_total", source="replay",
                      reason=reason) == count, reason
    assert sample(metrics, "social_posts_rejected_total", source="replay", reason="other") == 0
    received = len(valid) + mixed_expected["duplicates"] + sum(rejected.values())
    assert sample(metrics, "social_posts_received_total", source="replay") == received
    assert sample(metrics, "social_posts_duplicate_total", source="replay") == 1
    for lang, count in mixed_expected["processed_by_lang"].items():
        assert sample(metrics, "social_posts_processed_total", source="replay",
                      lang=lang) == count, lang
    assert sample(metrics, "social_archive_posts_total", source="replay") == len(valid)
    assert sample(metrics, "social_source_up", source="replay") == 0

    assert (stats.received, stats.rejected, stats.processed, stats.duplicates, stats.failed,
            stats.archived) == (received, sum(rejected.values()), len(valid), 1, 0, len(valid))


async def test_labels_of_the_ruleset_are_counted(mixed_replay: Path, processor: Processor,
                                                 metrics: Metrics,
                                                 sample: Callable[..., float]) -> None:
    await runtime_for([ReplaySource(mixed_replay)], processor, metrics, None,
                      exit_when_done=True).run()

    # zzpostid-0001 and -0002 miss 4o (en, es); -0005 paid for it, wants the weights, is
    # furious (a shadow theme); -0004 is an airdrop.
    assert sample(metrics, "social_themes_total", source="replay", theme="grief") == 2
    assert sample(metrics, "social_claims_total", source="replay", claim="access") == 1
    assert sample(metrics, "social_reasons_total", source="replay", reason="open_source") == 1
    assert sample(metrics, "social_flags_total", source="replay", flag="spam",
                  severity="low") == 1
    assert sample(metrics, "social_shadow_labels_total", layer="theme", label="anger") == 1
    assert sample(metrics, "social_rule_hits_total", rule="anger.furious") == 1
    assert sample(metrics, "social_rule_hits_total", rule="grief.miss") == 1
    assert sample(metrics, "social_rule_hits_total", rule="grief.extrano") == 1
    assert sample(metrics, "social_ingest_lag_seconds_count") == 5


async def test_a_source_far_faster_than_the_processor_is_held_to_the_queue_size(
        processor: Processor, metrics: Metrics, archive: ArchiveWriter,
        sample: Callable[..., float]) -> None:
    queue_size, count = 8, 600
    in_flight: list[int] = []
    depths: list[float] = []

    def watch(i: int) -> None:
        # posts 0..i-1 were handed over; whatever the processor has not finished is queued
        done = runtime.stats.processed + runtime.stats.duplicates + runtime.stats.failed
        in_flight.append(i - done)
        depths.append(sample(metrics, "social_queue_depth"))

    runtime = runtime_for([GeneratedSource(count, on_post=watch)], processor, metrics, archive,
                          queue_size=queue_size, batch_size=4, exit_when_done=True)
    stats = await runtime.run()

    assert max(in_flight) == queue_size  # the queue filled: the source had to wait ...
    assert max(depths) <= queue_size     # ... and never got further ahead than that
    assert stats.processed == count      # nothing was dropped to keep up
    assert archive.durable_posts == count


async def test_stop_drains_the_queue_and_closes_the_archive(
        processor: Processor, metrics: Metrics, archive: ArchiveWriter, archive_dir: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    count = 300

    def stop_midway(i: int) -> None:
        if i == 200:
            runtime.stop()  # what SIGINT and SIGTERM call

    live = GeneratedSource(count, finite=False, on_post=stop_midway)
    runtime = runtime_for([live], processor, metrics, archive, queue_size=1000, batch_size=16)
    with caplog.at_level(logging.INFO, logger="monitor.runtime.local"):
        stats = await asyncio.wait_for(runtime.run(), timeout=20)

    draining = [r.getMessage() for r in caplog.records if "draining" in r.getMessage()]
    assert draining == ["stopping: draining 200 queued posts"]
    assert stats.processed == count  # the 200 queued and the rest already handed over
    assert manifest(archive_dir, "2025-08-13")["posts"] == count
    assert verify_archive(archive_dir).ok


async def test_stop_under_backpressure_loses_no_received_post(
        processor: Processor, metrics: Metrics, archive: ArchiveWriter) -> None:
    def stop_midway(i: int) -> None:
        if i == 50:
            runtime.stop()

    live = GeneratedSource(1000, finite=False, on_post=stop_midway)
    runtime = runtime_for([live], processor, metrics, archive, queue_size=4, batch_size=2)
    stats = await asyncio.wait_for(runtime.run(), timeout=20)

    assert stats.received == stats.processed + stats.duplicates + stats.failed + stats.rejected


async def test_exit_when_done_waits_for_live_sources(processor: Processor, metrics: Metrics) -> None:
    finite, live = GeneratedSource(5), GeneratedSource(0, finite=False)
    live.name = "mastodon"
    runtime = runtime_for([finite, live], processor, metrics, None, exit_when_done=True)
    task = asyncio.create_task(runtime.run())
    await asyncio.sleep(0.3)
    assert not task.done()  # a live feed never ends by itself
    runtime.stop()
    stats = await asyncio.wait_for(task, timeout=5)
    assert stats.processed == 5


async def test_without_exit_when_done_a_finished_replay_keeps_serving(
        processor: Processor, metrics: Metrics) -> None:
    runtime = runtime_for([GeneratedSource(5)], processor, metrics, None)
    task = asyncio.create_task(runtime.run())
    await asyncio.sleep(0.3)
    assert not task.done()
    assert runtime.stats.processed == 5
    runtime.stop()
    await asyncio.wait_for(task, timeout=5)


async def test_an_idle_runtime_builds_the_pending_tagger_refresh(
        tagger: Tagger, metrics: Metrics) -> None:
    processor = Processor(tagger, refresh_every=5)  # due after the first batch
    live = GeneratedSource(5, finite=False)  # then no more batches: only idle time builds it
    runtime = runtime_for([live], processor, metrics, None)
    task = asyncio.create_task(runtime.run())
    async with asyncio.timeout(30):
        while processor.tagger is tagger:
            await asyncio.sleep(0.01)

    runtime.stop()
    stats = await asyncio.wait_for(task, timeout=5)

    assert stats.processed == 5
    assert not processor.refresh.pending  # and the old tagger's memory was returned


async def test_a_failing_source_is_logged_marked_down_and_the_run_goes_on(
        processor: Processor, metrics: Metrics, archive: ArchiveWriter, archive_dir: Path,
        sample: Callable[..., float], caplog: pytest.LogCaptureFixture) -> None:
    broken = GeneratedSource(100, fail_after=40)
    healthy = GeneratedSource(10, text="Release the weights", prefix="healthy")
    healthy.name = "mastodon"
    runtime = runtime_for([broken, healthy], processor, metrics, archive, exit_when_done=True)
    with caplog.at_level(logging.ERROR, logger="monitor.runtime.local"):
        stats = await asyncio.wait_for(runtime.run(), timeout=20)

    assert any("source replay failed" in r.getMessage() and r.exc_info for r in caplog.records)
    assert sample(metrics, "social_source_up", source="replay") == 0
    assert stats.processed == 40 + 10  # what the broken source gave before failing, and the rest
    assert sample(metrics, "social_source_up", source="mastodon") == 0  # done by now
    assert verify_archive(archive_dir).ok


class Listed:
    """A Source replaying a list of posts held in memory."""

    name, finite = "replay", True

    def __init__(self, posts: list[Post]) -> None:
        self.posts = posts

    async def stream(self) -> AsyncIterator[Post | Rejected]:
        for post in self.posts:
            yield post


async def test_a_post_that_breaks_tagging_is_counted_and_the_rest_archived(
        tagger_breaking_on: Callable[[str], Tagger], metrics: Metrics, archive: ArchiveWriter,
        archive_dir: Path, make_posts: Callable[..., list[Post]],
        sample: Callable[..., float]) -> None:
    posts = make_posts(6)
    bad = posts[3]
    bad.text = "this one breaks the tagger"
    processor = Processor(tagger_breaking_on(bad.text))
    stats = await runtime_for([Listed(posts)], processor, metrics, archive, batch_size=8,
                              exit_when_done=True).run()

    assert (stats.processed, stats.failed) == (5, 1)
    assert sample(metrics, "social_posts_rejected_total", source="replay",
                  reason="processing_error") == 1
    archived = {t.post.id for t in iter_day(archive_dir / "2025-08-13")}
    assert archived == {p.id for p in posts} - {bad.id}


async def test_every_sink_gets_every_tagged_post(processor: Processor, metrics: Metrics) -> None:
    sink = Collecting()
    assert isinstance(sink, Sink)
    runtime = runtime_for([GeneratedSource(50)], processor, metrics, None, sinks=[sink],
                          batch_size=8, queue_size=16, exit_when_done=True)
    stats = await asyncio.wait_for(runtime.run(), timeout=3)
    assert stats.processed == 50
    assert sink.ids == [f"gen-{i}" for i in range(50)]


async def test_a_midnight_that_passed_before_the_run_started_still_rolls_the_archive(
        processor: Processor, metrics: Metrics, archive_dir: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    archive = ArchiveWriter(archive_dir, pseudonymizer=Pseudonymizer(b"a-test-key-of-32-bytes-for-hmac!"),
                            today=yesterday)
    live = GeneratedSource(0, finite=False)
    runtime = runtime_for([live], processor, metrics, archive)
    with caplog.at_level(logging.INFO, logger="monitor.sinks.archive"):
        task = asyncio.create_task(runtime.run())
        await asyncio.sleep(1.5)  # the archive loop ticks every half second
        runtime.stop()
        await asyncio.wait_for(task, timeout=20)

    began = [r.getMessage() for r in caplog.records if "began" in r.getMessage()]
    assert began == [f"archive: UTC day {datetime.now(UTC).date()} began; flushing, "
                     "then the manifests of no day"]
