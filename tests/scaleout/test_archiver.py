"""``TopicArchiver`` against a real broker: one copy per post, offsets behind the fsync."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from monitor.codec import decode_post, encode_tagged
from monitor.privacy import Pseudonymizer
from monitor.processor import Processor
from monitor.scaleout.archiver import TopicArchiver
from monitor.scaleout.topics import ensure_topics
from monitor.sinks.archive import ArchiveWriter
from monitor.sinks.metrics import Metrics
from monitor.tagging import Tagger
from tests.support.monitor_process import verified_ids
from tests.support.tansu import Tansu

STREAM = Path(__file__).parents[2] / "samples" / "stream.jsonl"
GROUP = "archive-test"


async def produce_tagged(broker: Tansu, tagger: Tagger, count: int) -> set[str]:
    """``count`` tagged posts, then the first ten again (a redelivery) and one bad record."""
    posts = [decode_post(line) for line in STREAM.read_bytes().splitlines()[:count]]
    tagged = Processor(tagger).process(posts).tagged
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    try:
        for item in [*tagged, *tagged[:10]]:
            await producer.send(topic="tagged", key=item.post.id.encode(),
                                value=encode_tagged(item))
        await producer.send_and_wait("tagged", b"{broken", key=b"x")
    finally:
        await producer.stop()
    return {t.post.id for t in tagged}


async def committed(broker: Tansu, partitions: int) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=GROUP)
    await consumer.start()
    try:
        offsets = [await consumer.committed(TopicPartition("tagged", p))
                   for p in range(partitions)]
        return sum(o or 0 for o in offsets)
    finally:
        await consumer.stop()


async def test_every_post_once_and_offsets_committed_only_when_durable(
        tmp_path: Path, tansu: Tansu, tagger: Tagger) -> None:
    await ensure_topics(tansu.bootstrap, ["tagged"], 2, 1)
    expected = await produce_tagged(tansu, tagger, 200)
    records = len(expected) + 10 + 1
    archive = ArchiveWriter(tmp_path / "archive", pseudonymizer=Pseudonymizer(b"k" * 32))
    metrics = Metrics(tagger.ruleset)
    commits: list[int] = []
    consumer = AIOKafkaConsumer(bootstrap_servers=tansu.bootstrap, group_id=GROUP,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    archiver = TopicArchiver(consumer, archive, metrics, flush_interval=0.2)
    original_commit = consumer.commit

    async def commit(offsets: dict[TopicPartition, int]) -> None:
        """aiokafka's commit, checking first that nothing written is still unflushed."""
        assert archive.pending_posts == 0, "offsets committed before the fsync"
        commits.append(sum(offsets.values()))
        await original_commit(offsets)

    consumer.commit = commit  # type: ignore[method-assign]
    consumer.subscribe(["tagged"], listener=archiver.listener())
    await consumer.start()
    task = asyncio.create_task(archiver.run())
    try:
        async with asyncio.timeout(30):
            while archiver.stats.consumed < records or await committed(tansu, 2) < records:
                await asyncio.sleep(0.1)
        archiver.stop()
        stats = await task
    finally:
        await consumer.stop()
    assert stats.rejected == 1
    assert metrics.registry.get_sample_value(
        "social_posts_rejected_total", {"source": "kafka", "reason": "invalid_json"}) == 1
    assert commits
    assert sum(sample.value for family in metrics.registry.collect()
               for sample in family.samples
               if sample.name == "social_archive_posts_total") == len(expected)
    ids = await verified_ids(tmp_path / "archive")
    assert sorted(ids) == sorted(expected)
