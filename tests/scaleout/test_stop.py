"""A worker told to stop while the broker refuses its output: it acknowledges nothing.

``stream.take_events`` acknowledges a batch in a ``finally`` when its
generator closes, cancellation included, so a stop that cancelled the agent
mid-retry would commit an undelivered batch. Faust does not get there: its
app stops the consumer first, which waits (``stream_wait_empty``) until
every message taken is acknowledged, so the agent keeps retrying and the
stop waits for the delivery. This test holds Faust to that, in process,
against Tansu.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiokafka import AIOKafkaProducer

from monitor.codec import decode_post, encode_post
from monitor.processor import Processor
from monitor.scaleout.agent import WorkerConfig, build_app
from monitor.scaleout.step import StepResult, WorkerStep
from monitor.scaleout.topics import Topics, ensure_topics
from monitor.sinks.metrics import Metrics
from monitor.tagging import Tagger
from tests.support.tansu import Tansu

STREAM = Path(__file__).parents[2] / "samples" / "stream.jsonl"
POSTS = 20


class Refusing:
    """An ``emit`` whose broker refuses until told otherwise."""

    def __init__(self) -> None:
        self.refusing = True
        self.attempts = 0
        self.delivered: set[bytes] = set()

    async def __call__(self, result: StepResult) -> None:
        self.attempts += 1
        if self.refusing:
            raise ConnectionError("broker refuses")
        self.delivered.update(r.key for r in result.tagged)


async def test_a_stop_waits_for_the_refused_batch_and_commits_nothing_before(
        tansu: Tansu, tagger: Tagger, tmp_path: Path) -> None:
    topics = Topics("stop-posts", "stop-tagged", "stop-flags", partitions=1)
    await ensure_topics(tansu.bootstrap, topics.names, 1, 1)
    producer = AIOKafkaProducer(bootstrap_servers=tansu.bootstrap)
    await producer.start()
    try:
        for line in STREAM.read_bytes().splitlines()[:POSTS]:
            await producer.send_and_wait(topics.posts, encode_post(decode_post(line)))
    finally:
        await producer.stop()
    emit = Refusing()
    app, _agent = build_app(tansu.url, topics, WorkerStep(Processor(tagger),
                                                         Metrics(tagger.ruleset)),
                            # all POSTS in the one batch, however slowly the fetches come
                            WorkerConfig(group="stop", session_timeout=6, batch_wait=2.0,
                                         data_dir=tmp_path / "faust"), emit=emit)
    await app.start()
    stopping: asyncio.Future[None] | None = None
    try:
        async with asyncio.timeout(60):
            while emit.attempts < 2:
                await asyncio.sleep(0.1)
        stopping = asyncio.ensure_future(app.stop())
        await asyncio.sleep(4)  # past Faust's commit interval (2.8 s)
        assert not stopping.done(), "the stop waits for the batch in flight"
        assert await tansu.committed("stop", topics.posts) is None
        emit.refusing = False
        async with asyncio.timeout(30):
            await stopping
    finally:
        if stopping is None:
            await app.stop()
    assert len(emit.delivered) == POSTS
    assert await tansu.committed("stop", topics.posts) == POSTS
