"""``kafka://`` URLs: brokers, an optional topic, and clear refusals."""

from __future__ import annotations

import pytest

from monitor.scaleout.url import parse_kafka_url


def test_brokers_and_topic() -> None:
    target = parse_kafka_url("kafka://k1:9093,k2/posts", topic=True)
    assert target.servers == ("k1:9093", "k2:9092")
    assert target.topic == "posts"
    assert target.bootstrap == "k1:9093,k2:9092"
    assert target.faust_broker == "kafka://k1:9093;kafka://k2:9092"
    assert str(target) == "kafka://k1:9093,k2:9092/posts"


def test_a_broker_url_without_topic() -> None:
    assert parse_kafka_url("kafka://127.0.0.1:9092", topic=False).topic is None


@pytest.mark.parametrize(("url", "topic", "message"), [
    ("http://k1:9092/posts", None, "not a Kafka URL"),
    ("kafka:///posts", None, "names no broker"),
    ("kafka://k1:9092", True, "names no topic"),
    ("kafka://k1:9092/posts", False, "--posts-topic"),
    ("kafka://user:pw@k1:9092/posts", None, "credentials"),
    ("kafka://k1:99999/posts", None, "out of range"),
    ("kafka://k1:9092/no spaces", None, "not a valid topic name"),
])
def test_refusals_say_what_to_write(url: str, topic: bool | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_kafka_url(url, topic=topic)
