"""The worker's agent run by Faust's own test support: no broker, the real processor."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.codec import decode_post, decode_tagged, encode_post
from monitor.processor import Processor
from monitor.scaleout.agent import WorkerConfig, build_app
from monitor.scaleout.step import StepResult, WorkerStep
from monitor.scaleout.topics import Topics
from monitor.sinks.metrics import Metrics
from monitor.tagging import Tagger

STREAM = Path(__file__).parents[2] / "samples" / "stream.jsonl"


class Kept:
    """An ``emit`` that keeps every batch's records, as the topics would receive them."""

    def __init__(self) -> None:
        self.tagged: list[tuple[bytes, bytes]] = []
        self.flags: list[tuple[bytes, bytes]] = []
        self.batches = 0

    async def __call__(self, result: StepResult) -> None:
        self.batches += 1
        self.tagged += [(r.key, r.value) for r in result.tagged]
        self.flags += [(r.key, r.value) for r in result.flags]

    async def wait_tagged(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.tagged) < count:
                await asyncio.sleep(0.01)


@pytest.fixture
def posts() -> list[bytes]:
    lines = STREAM.read_bytes().splitlines()[:200]
    return [encode_post(decode_post(line)) for line in lines]


def total(metrics: Metrics, name: str) -> float:
    return sum(s.value for f in metrics.registry.collect() for s in f.samples if s.name == name)


def make(tagger: Tagger, tmp_path: Path, batch_size: int = 64) -> tuple[Any, Kept, Metrics]:
    metrics = Metrics(tagger.ruleset)
    kept = Kept()
    _app, agent = build_app("kafka://127.0.0.1:9", Topics(),
                            WorkerStep(Processor(tagger), metrics),
                            WorkerConfig(batch_size=batch_size, batch_wait=0.05,
                                         data_dir=tmp_path / "faust"), emit=kept)
    return agent, kept, metrics


async def test_every_post_is_tagged_once_keyed_by_its_id(tagger: Tagger, tmp_path: Path,
                                                          posts: list[bytes]) -> None:
    agent, kept, metrics = make(tagger, tmp_path)
    async with agent.test_context() as ctx:
        for value in posts:
            await ctx.put(value, key=b"ignored", wait=False)
        unique = {decode_post(v).id for v in posts}
        await kept.wait_tagged(len(unique))
    assert sorted(k.decode() for k, _ in kept.tagged) == sorted(unique)
    for key, value in kept.tagged:
        assert decode_tagged(value).post.id == key.decode()
    assert kept.batches < len(posts) / 10  # batched, not one post at a time
    assert total(metrics, "social_posts_processed_total") == len(unique)
    assert total(metrics, "social_posts_duplicate_total") == len(posts) - len(unique)


async def test_a_post_redelivered_after_a_crash_is_not_tagged_twice(
        tagger: Tagger, tmp_path: Path, posts: list[bytes]) -> None:
    agent, kept, _ = make(tagger, tmp_path)
    async with agent.test_context() as ctx:
        await ctx.put(posts[0], wait=False)
        await kept.wait_tagged(1)
        await ctx.put(posts[0], wait=False)
        await ctx.put(posts[1], wait=False)
        await kept.wait_tagged(2)
        await asyncio.sleep(0.2)
    assert [k for k, _ in kept.tagged] == [decode_post(p).id.encode() for p in posts[:2]]


async def test_flags_go_to_the_flags_records_with_the_post_fields(
        tagger: Tagger, tmp_path: Path, posts: list[bytes]) -> None:
    agent, kept, _ = make(tagger, tmp_path)
    async with agent.test_context() as ctx:
        for value in posts:
            await ctx.put(value, wait=False)
        await kept.wait_tagged(len({decode_post(v).id for v in posts}))
    flagged = {decode_tagged(v).post.id: decode_tagged(v) for _, v in kept.tagged
               if decode_tagged(v).all_flags}
    assert flagged, "the sample has flagged posts"
    assert sum(len(t.all_flags) for t in flagged.values()) == len(kept.flags)
    for key, value in kept.flags:
        record = orjson.loads(value)
        assert record["id"] == key.decode() and record["id"] in flagged
        assert record["kind"] in {f.kind for f in flagged[record["id"]].all_flags}


async def test_a_record_that_does_not_decode_is_counted_and_the_batch_goes_on(
        tagger: Tagger, tmp_path: Path, posts: list[bytes]) -> None:
    agent, kept, metrics = make(tagger, tmp_path)
    async with agent.test_context() as ctx:
        await ctx.put(b"{not json", wait=False)
        await ctx.put(posts[0], wait=False)
        await kept.wait_tagged(1)
    assert metrics.registry.get_sample_value(
        "social_posts_rejected_total", {"source": "kafka", "reason": "invalid_json"}) == 1


class FailsTwice(Kept):
    """An ``emit`` whose broker refuses the first two attempts."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    async def __call__(self, result: StepResult) -> None:
        self.attempts += 1
        if self.attempts <= 2:
            raise ConnectionError("broker away")
        await super().__call__(result)


async def test_a_batch_the_broker_refused_is_retried_before_it_is_acknowledged(
        tagger: Tagger, tmp_path: Path, posts: list[bytes]) -> None:
    metrics = Metrics(tagger.ruleset)
    emit = FailsTwice()
    _app, agent = build_app("kafka://127.0.0.1:9", Topics(),
                            WorkerStep(Processor(tagger), metrics),
                            WorkerConfig(batch_size=64, data_dir=tmp_path / "faust"), emit=emit)
    async with agent.test_context() as ctx:
        event = await ctx.put(posts[0], wait=False)
        async with asyncio.timeout(5):
            while emit.attempts < 1:
                await asyncio.sleep(0.01)
        assert not event.message.acked  # refused: its offset must not be committed
        await emit.wait_tagged(1, timeout=10)
        assert emit.attempts == 3
        await asyncio.sleep(0.1)
        assert event.message.acked
    assert metrics.registry.get_sample_value("social_sink_errors_total", {"sink": "kafka"}) == 2
