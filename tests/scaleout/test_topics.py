"""Topics are created on a real broker with the partition count the settings ask for."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from monitor.scaleout.topics import TopicError, Topics, ensure_topics
from tests.support.mosquitto import free_port
from tests.support.tansu import Tansu


async def partitions(broker: Tansu, names: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(names)}
    finally:
        await admin.close()


async def test_missing_topics_are_created_with_matching_partitions(tansu: Tansu) -> None:
    topics = Topics(partitions=3)
    await ensure_topics(tansu.bootstrap, topics.names, 3, 1)
    await ensure_topics(tansu.bootstrap, topics.names, 3, 1)  # idempotent
    assert await partitions(tansu, list(topics.names)) == {
        "posts": 3, "tagged": 3, "flags": 3}


async def test_an_existing_topic_with_another_count_is_refused_with_the_fix(
        tansu: Tansu) -> None:
    await ensure_topics(tansu.bootstrap, ["posts"], 2, 1)
    with pytest.raises(TopicError, match=r"'posts' has 2 partitions.*--partitions 2"):
        await ensure_topics(tansu.bootstrap, ["posts"], 4, 1)


async def test_an_unreachable_broker_is_named() -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    with pytest.raises(TopicError, match=f"cannot reach the Kafka broker at {bootstrap}"):
        await ensure_topics(bootstrap, ["posts"], 1, 1, timeout_ms=1_000)


def test_topic_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="must differ"):
        Topics(posts="x", tagged="x")
    with pytest.raises(ValueError, match="at least 1"):
        Topics(partitions=0)
