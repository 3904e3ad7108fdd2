"""``PostProducer`` against a real broker: posts keyed by id, cursors behind the acks."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from monitor.codec import decode_post
from monitor.scaleout.producer import DeliveryError, PostProducer
from monitor.scaleout.topics import ensure_topics
from monitor.sinks.metrics import Metrics
from monitor.sources import SourceContext, open_source
from monitor.sources.cursor import FileCursorStore
from monitor.tagging import Tagger
from tests.support.tansu import Tansu

STREAM = Path(__file__).parents[2] / "samples" / "stream.jsonl"


def replay(tmp_path: Path, lines: int) -> tuple[Path, str]:
    path = tmp_path / "posts.jsonl"
    path.write_bytes(b"\n".join(STREAM.read_bytes().splitlines()[:lines]) + b"\n")
    return path, f"replay:{path.resolve()}"


async def consume(broker: Tansu, topic: str, count: int) -> list[tuple[bytes, bytes]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    out: list[tuple[bytes, bytes]] = []
    try:
        while len(out) < count:
            for records in (await consumer.getmany(timeout_ms=5_000)).values():
                out += [(r.key, r.value) for r in records]
    finally:
        await consumer.stop()
    return out


async def test_posts_are_keyed_by_id_and_the_cursor_follows_the_acks(
        tmp_path: Path, tansu: Tansu, tagger: Tagger) -> None:
    path, key = replay(tmp_path, 300)
    await ensure_topics(tansu.bootstrap, ["posts"], 4, 1)
    cursors = FileCursorStore(tmp_path / "state")
    source = open_source(f"replay:{path}?resume=true", SourceContext(cursors=cursors))
    producer = AIOKafkaProducer(bootstrap_servers=tansu.bootstrap, acks="all")
    await producer.start()
    try:
        stats = await PostProducer(producer, "posts", [source], Metrics(tagger.ruleset),
                                   cursors, exit_when_done=True).run()
    finally:
        await producer.stop()
    assert stats.delivered == stats.received == 300
    assert FileCursorStore(tmp_path / "state").get(key) == "300"
    records = await consume(tansu, "posts", 300)
    assert len(records) == 300
    for record_key, value in records:
        assert decode_post(value).id == record_key.decode()


async def test_a_post_the_broker_never_took_keeps_the_cursor_before_it(
        tmp_path: Path, tansu: Tansu, tagger: Tagger) -> None:
    path, key = replay(tmp_path, 50)
    await ensure_topics(tansu.bootstrap, ["posts"], 1, 1)
    cursors = FileCursorStore(tmp_path / "state")
    source = open_source(f"replay:{path}?resume=true", SourceContext(cursors=cursors))
    producer = AIOKafkaProducer(bootstrap_servers=tansu.bootstrap, acks="all",
                                request_timeout_ms=1_000, retry_backoff_ms=100)
    await producer.start()
    await producer.partitions_for("posts")
    tansu.stop()
    metrics = Metrics(tagger.ruleset)
    try:
        with pytest.raises(DeliveryError, match="cursor stays before it"):
            await PostProducer(producer, "posts", [source], metrics, cursors,
                               exit_when_done=True).run()
    finally:
        await producer.stop()
    assert FileCursorStore(tmp_path / "state").get(key) is None
    assert metrics.registry.get_sample_value("social_sink_errors_total", {"sink": "kafka"}) == 1
