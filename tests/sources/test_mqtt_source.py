"""``mqtt://``: posts from an MQTT topic, against a real Mosquitto broker.

A missing ``mosquitto`` binary skips these tests locally and fails them in
CI (CI=true). Messages are published with plain aiomqtt at QoS 1, as any
upstream collector would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest

from monitor.codec import encode_post
from monitor.model import Post
from monitor.sources import SourceError, open_source
from monitor.sources.backoff import Backoff
from monitor.sources.base import Rejected, Source
from monitor.sources.mqtt import ENV_PASSWORD, ENV_USERNAME, MqttSource, client_identifier
from tests.support.fake_platforms import HookLog, take
from tests.support.monitor_process import MonitorProcess, verified_ids
from tests.support.mosquitto import Mosquitto, password_broker

TOPIC = "social/posts"
T0 = datetime(2025, 8, 13, 12, 0, tzinfo=UTC)


class _Longest(random.Random):
    """Full jitter that always draws its ceiling: a fixed, known reconnect delay."""

    def uniform(self, a: float, b: float) -> float:
        return b


def payload(n: int, **fields: object) -> bytes:
    post = Post(id=f"upstream:{n}", source="bluesky", text=f"post {n} #keep4o", created_at=T0)
    for name, value in fields.items():
        setattr(post, name, value)
    return encode_post(post)


def source_for(broker: Mosquitto, hooks: HookLog, *, delay: float = 0.1,
               **context: object) -> MqttSource:
    source = open_source(broker.url(TOPIC), hooks.context(**context))
    assert isinstance(source, MqttSource)
    source.backoff = Backoff(base=delay, cap=delay, rng=_Longest())
    return source


async def publish(broker: Mosquitto, *payloads: bytes, topic: str = TOPIC,
                  **credentials: str) -> None:
    async with aiomqtt.Client(broker.host, broker.port, **credentials) as client:
        for body in payloads:
            await client.publish(topic, body, qos=1)


@contextlib.asynccontextmanager
async def running(broker: Mosquitto) -> AsyncIterator[Mosquitto]:
    await asyncio.to_thread(broker.start)
    try:
        yield broker
    finally:
        await asyncio.to_thread(broker.stop)


async def subscribed(hooks: HookLog, sessions: int = 1) -> None:
    """Until the source has connected (and subscribed) ``sessions`` times."""
    async with asyncio.timeout(10):
        while hooks.ups.count(True) < sessions:
            await asyncio.sleep(0.01)


# -- URIs ---------------------------------------------------------------------------------


def test_the_topic_may_hold_wildcards_and_the_client_id_is_fixed() -> None:
    source = open_source("mqtt://broker.example:1884/social/posts/#")
    assert isinstance(source, MqttSource) and isinstance(source, Source)
    assert (source.name, source.finite) == ("mqtt", False)
    assert (source.host, source.port, source.topic) == ("broker.example", 1884, "social/posts/#")
    assert open_source("mqtt://broker.example/social/%2B/x").topic == "social/+/x"  # type: ignore[attr-defined]
    again = open_source("mqtt://broker.example:1884/social/posts/#")
    assert source.client_id == again.client_id == client_identifier(  # type: ignore[attr-defined]
        "broker.example", 1884, "social/posts/#")
    assert open_source("mqtt://b.example/t?client_id=mine").client_id == "mine"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("uri", "message"), [
    ("mqtt://broker.example:1884/", "name a topic"),
    ("mqtt://broker.example:99999/t", "port"),
    ("mqtt://broker.example/t?qos=2", "unknown option"),
])
def test_a_bad_uri_says_what_to_write(uri: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        open_source(uri)


def test_credentials_in_the_uri_are_refused_without_echoing_them() -> None:
    with pytest.raises(SourceError) as info:
        open_source("mqtt://bot:s3cret@broker.example/t")
    assert "s3cret" not in str(info.value) and ENV_USERNAME in str(info.value)


# -- against Mosquitto ----------------------------------------------------------------------


async def test_posts_are_decoded_and_bad_payloads_counted(tmp_path: Path) -> None:
    hooks = HookLog()
    async with running(Mosquitto(tmp_path)) as broker:
        source = source_for(broker, hooks)
        stream = source.stream()
        try:
            pending = asyncio.ensure_future(take(stream, 5))
            await subscribed(hooks)
            await publish(broker, payload(1), b"{not json", b'{"id": "x", "text": "hi"}',
                          payload(2, collector="upstream/1"), b"[]")
            got = await pending
        finally:
            await stream.aclose()
    assert [type(i).__name__ for i in got] == ["Post", "Rejected", "Rejected", "Post", "Rejected"]
    assert [i.reason for i in got if isinstance(i, Rejected)] == [
        "invalid_json", "missing_field:created_at", "not_object"]
    first, second = got[0], got[3]
    assert isinstance(first, Post) and isinstance(second, Post)
    assert (first.id, first.source, first.source_url) == ("upstream:1", "bluesky", broker.url(TOPIC))
    assert first.collector and first.collector.endswith(" mqtt") and first.retrieved_at
    assert second.collector == "upstream/1"  # an upstream collector's provenance is kept
    assert hooks.ups[0] is True and hooks.errors == []


class Reader:
    """A consumer that keeps pulling, as the runtime does; ``ids`` of the posts read."""

    def __init__(self, source: MqttSource) -> None:
        self.ids: list[str] = []
        self._task = asyncio.create_task(self._run(source))

    async def _run(self, source: MqttSource) -> None:
        async for item in source.stream():
            if isinstance(item, Post):
                self.ids.append(item.id)

    async def wait_for(self, wanted: set[str], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not wanted <= set(self.ids):
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def upstream(*numbers: int) -> set[str]:
    return {f"upstream:{n}" for n in numbers}


async def test_messages_published_while_the_monitor_is_stopped_arrive_after_it_restarts(
        tmp_path: Path) -> None:
    hooks = HookLog()
    async with running(Mosquitto(tmp_path)) as broker:
        reader = Reader(source_for(broker, hooks))
        await subscribed(hooks)
        await publish(broker, payload(1), payload(2))
        await reader.wait_for(upstream(1, 2))
        await reader.stop()  # the monitor stops; its session stays on the broker
        await publish(broker, *(payload(n) for n in range(3, 8)))
        again = Reader(source_for(broker, hooks))  # same URI: same client id
        await again.wait_for(upstream(*range(3, 8)))
        await again.stop()
    ids = reader.ids + again.ids
    # the last post read before the stop may come again (the processor drops it)
    assert list(dict.fromkeys(ids)) == [f"upstream:{n}" for n in range(1, 8)]
    assert len(ids) - len(set(ids)) <= 1


async def test_a_broker_restart_loses_no_message_published_while_disconnected(
        tmp_path: Path) -> None:
    hooks = HookLog()
    broker = Mosquitto(tmp_path, persistence=True)
    async with running(broker):
        reader = Reader(source_for(broker, hooks, delay=2.0))  # reconnects 2 s apart
        await subscribed(hooks)
        await publish(broker, *(payload(n) for n in range(1, 6)))
        await reader.wait_for(upstream(*range(1, 6)))
        await asyncio.to_thread(broker.stop)  # saves the persistent session
        async with asyncio.timeout(5):
            while hooks.ups[-1] is not False:
                await asyncio.sleep(0.01)
        await asyncio.to_thread(broker.start)
        await publish(broker, *(payload(n) for n in range(6, 16)))
        assert hooks.ups[-1] is False  # all ten went out while the monitor was away
        await reader.wait_for(upstream(*range(1, 16)))
        await reader.stop()
    # none lost; a post whose acknowledgement the stopping broker missed comes again
    # (the processor drops it), but those published while the monitor was away come once
    assert list(dict.fromkeys(reader.ids)) == [f"upstream:{n}" for n in range(1, 16)]
    assert [i for i in reader.ids if i in upstream(*range(6, 16))] == [
        f"upstream:{n}" for n in range(6, 16)]
    assert hooks.reconnects == 1 and "connect" in hooks.errors


async def test_a_slow_consumer_leaves_the_messages_with_the_broker(tmp_path: Path) -> None:
    hooks = HookLog()
    async with running(Mosquitto(tmp_path)) as broker:
        source = source_for(broker, hooks)
        stream = source.stream()
        try:
            pending = asyncio.ensure_future(take(stream, 1))
            await subscribed(hooks)
            await publish(broker, *(payload(n) for n in range(300)))
            got = await pending
            await asyncio.sleep(0.5)  # busy consumer
            assert source.buffered <= 20  # Mosquitto's in-flight window, not all 300
            got += await take(stream, 299)
        finally:
            await stream.aclose()
    assert [p.id for p in got] == [f"upstream:{n}" for n in range(300)]  # type: ignore[union-attr]


async def test_credentials_come_from_the_environment_and_are_never_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broker = password_broker(tmp_path)
    wrong, right = HookLog(), HookLog()
    with caplog.at_level(logging.DEBUG):
        async with running(broker):
            stream = source_for(broker, wrong, environ={
                ENV_USERNAME: "bot", ENV_PASSWORD: "wrong-pass"}).stream()
            try:
                with pytest.raises(TimeoutError):
                    await take(stream, 1, timeout=0.5)
            finally:
                await stream.aclose()
            source = source_for(broker, right, environ={
                ENV_USERNAME: "bot", ENV_PASSWORD: "s3cret-pass"})
            stream = source.stream()
            try:
                pending = asyncio.ensure_future(take(stream, 1))
                await subscribed(right)
                await publish(broker, payload(1), username="bot", password="s3cret-pass")
                (got,) = await pending
            finally:
                await stream.aclose()
    assert set(wrong.errors) == {"auth"} and True not in wrong.ups
    assert isinstance(got, Post) and right.errors == []
    assert "s3cret-pass" not in caplog.text and "wrong-pass" not in caplog.text
    assert "s3cret-pass" not in repr(source)
    with pytest.raises(SourceError, match=ENV_USERNAME):
        open_source(broker.url(TOPIC), HookLog().context(environ={ENV_PASSWORD: "x"}))


async def test_cancelling_disconnects_and_leaves_no_task(tmp_path: Path) -> None:
    hooks = HookLog()
    before = asyncio.all_tasks()
    async with running(Mosquitto(tmp_path)) as broker:
        source = source_for(broker, hooks)

        async def read() -> None:
            async for _ in source.stream():
                pass

        reader = asyncio.create_task(read())
        await subscribed(hooks)
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
    assert hooks.ups[-1] is False
    assert asyncio.all_tasks() - before - {asyncio.current_task()} == set()


# -- the whole monitor ------------------------------------------------------------------------

def monitor_process(folder: Path, source: str) -> MonitorProcess:
    """``monitor run --source mqtt://...``, without broker credentials."""
    return MonitorProcess(folder, source, unset=[ENV_USERNAME, ENV_PASSWORD])


async def wait_subscribed(monitor: MonitorProcess, sessions: int = 1) -> None:
    """Until the source has subscribed ``sessions`` times (its log says so)."""
    await monitor.wait_for_log("mqtt: subscribed to", times=sessions)


def authored(*numbers: int) -> list[bytes]:
    return [payload(n, author=f"user{n}.example") for n in numbers]


async def test_monitor_run_archives_every_published_post_exactly_once(tmp_path: Path) -> None:
    """Live: publish, archive, restart the broker (persistent) and publish while the
    monitor reconnects, SIGTERM; a restart gets what was published while it was down
    and what comes after, each post once."""
    (tmp_path / "broker").mkdir()
    broker = Mosquitto(tmp_path / "broker", persistence=True)
    source = broker.url("posts")
    monitor = monitor_process(tmp_path, source)
    async with running(broker):
        try:
            await monitor.start()
            await wait_subscribed(monitor, 1)
            await publish(broker, *authored(*range(0, 10)), topic="posts")
            await monitor.wait_archived(10)
            await asyncio.to_thread(broker.stop)  # saves the monitor's persistent session
            await asyncio.to_thread(broker.start)
            await publish(broker, *authored(*range(10, 20)), topic="posts")
            await wait_subscribed(monitor, 2)
            await monitor.wait_archived(20)
            assert await monitor.stop() == 0, monitor.log

            await publish(broker, *authored(*range(20, 25)), topic="posts")  # while down
            monitor = monitor_process(tmp_path, source)
            await monitor.start()
            await wait_subscribed(monitor, 1)
            await publish(broker, *authored(*range(25, 30)), topic="posts")
            await monitor.wait_archived(10)
            assert await monitor.stop() == 0, monitor.log
        finally:
            monitor.kill()
    archived = await verified_ids(tmp_path / "archive")  # after archive verify passed
    assert sorted(archived) == sorted(upstream(*range(30)))  # every post, each exactly once
