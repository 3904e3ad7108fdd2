"""The MQTT sink against a real Mosquitto: topics, payloads, privacy, QoS 1, outages, bounds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import orjson
import pytest
import zstandard
from prometheus_client import CollectorRegistry

from monitor.cli import UsageError, build_parser
from monitor.codec import encode_tagged
from monitor.commands.run import settings_from_args
from monitor.model import Flag, LabelScore, Post, TaggedPost, Tags
from monitor.privacy import ENV_KEY, Pseudonymizer
from monitor.sinks.base import Sink
from monitor.sinks.mqtt import ENV_PASSWORD, ENV_USERNAME, MqttSink, parse_mqtt_url
from tests.support.binaries import require_binary
from tests.support.mosquitto import Mosquitto, free_port, password_broker

ROOT = Path(__file__).resolve().parents[2]
KEY = b"m" * 32
HANDLE = "alice.example.social"
NOON = datetime(2025, 8, 8, 12, 0, tzinfo=UTC)
#: Short timings so outage tests take seconds, not minutes.
FAST = {"backoff": (0.05, 0.2), "publish_timeout": 3.0, "close_timeout": 3.0}


def make(n: int, *, source: str = "bluesky", author: str | None = HANDLE,
         flags: tuple[Flag, ...] = ()) -> TaggedPost:
    post = Post(id=f"{source}:{n}", source=source, text=f"post {n} #keep4o",
                created_at=NOON + timedelta(seconds=n), author=author, lang="en",
                url=f"https://example.com/p/{n}")
    tags = Tags(lang="en", themes=(LabelScore("grief", 2.0, ("grief.r1",)),),
                claim=LabelScore("model_quality", 1.5, ("model_quality.r1",)),
                flags=flags, relevance=0.75, rule_hits=("grief.r1",))
    return TaggedPost(post, tags, "keep4o", "abc123", "0.1.0")


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


class Subscriber:
    """Collects every message under ``topic`` (QoS 1) in the background."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.messages: list[aiomqtt.Message] = []

    async def _collect(self) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            async for message in self.client.messages:
                self.messages.append(message)

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[aiomqtt.Message]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.messages

    async def wait_for_ids(self, ids: set[str], timeout: float = 10.0) -> list[str]:
        """Post ids received (in order, repeats included) once ``ids`` are all in."""
        deadline = time.monotonic() + timeout
        while not ids <= set(self.ids()) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.ids()

    def ids(self) -> list[str]:
        return [orjson.loads(m.payload)["id"] for m in self.messages]  # type: ignore[arg-type]

    def payloads(self, kind: str) -> list[dict]:
        return [orjson.loads(m.payload) for m in self.messages  # type: ignore[arg-type]
                if f"/{kind}/" in m.topic.value]


@contextlib.asynccontextmanager
async def subscribe(broker: Mosquitto, topic: str = "test/#", *, identifier: str | None = None,
                    clean_session: bool = True, resubscribe: bool = True,
                    **client: object) -> AsyncIterator[Subscriber]:
    async with aiomqtt.Client(broker.host, broker.port, identifier=identifier,
                              clean_session=clean_session, **client) as conn:  # type: ignore[arg-type]
        if resubscribe:
            await conn.subscribe(topic, qos=1)
        sub = Subscriber(conn)
        task = asyncio.create_task(sub._collect())
        try:
            yield sub
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    mosquitto = Mosquitto(tmp_path)
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture
def persistent_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker that keeps persistent sessions (and their queued messages) across restarts."""
    mosquitto = Mosquitto(tmp_path, persistence=True)
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


def sink_for(url: str, registry: CollectorRegistry, **kwargs: object) -> MqttSink:
    kwargs.setdefault("author", Pseudonymizer(KEY))
    kwargs.setdefault("environ", {})
    return MqttSink(url, registry=registry, **{**FAST, **kwargs})  # type: ignore[arg-type]


# -- the URL -------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "host", "port", "prefix", "tls"), [
    ("mqtt://127.0.0.1:1884/social", "127.0.0.1", 1884, "social", False),
    ("mqtt://broker.example/a/b/", "broker.example", 1883, "a/b", False),
    ("mqtts://broker.example/keep4o", "broker.example", 8883, "keep4o", True),
    ("mqtt://[::1]:1900", "::1", 1900, "", False),
])
def test_parse_url(url: str, host: str, port: int, prefix: str, tls: bool) -> None:
    target = parse_mqtt_url(url)
    assert (target.host, target.port, target.prefix, target.tls) == (host, port, prefix, tls)
    assert target.topic("flags", "spam") == "/".join(s for s in (prefix, "flags", "spam") if s)


@pytest.mark.parametrize(("url", "message"), [
    ("http://h/x", "mqtts://"),
    ("mqtt:///x", "no host"),
    ("mqtt://h:99999/x", "port"),
    ("mqtt://h/a/+/b", "no wildcards"),
    ("mqtt://h/a//b", "no empty segment"),
    ("mqtt://h/x?retain=1", "'?'"),
])
def test_bad_url_names_the_fix(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("?", r"\?").replace("+", r"\+")):
        parse_mqtt_url(url)


def test_credentials_in_the_url_are_refused_and_not_echoed() -> None:
    with pytest.raises(ValueError, match=ENV_USERNAME) as info:
        parse_mqtt_url("mqtt://bot:hunter2secret@broker.example/x")
    assert "hunter2secret" not in str(info.value)


def test_settings_are_checked_at_construction() -> None:
    registry = CollectorRegistry()
    with pytest.raises(ValueError, match=ENV_USERNAME):
        MqttSink("mqtt://h/x", registry=registry, author=None, environ={ENV_PASSWORD: "pw"})
    with pytest.raises(ValueError, match="buffer size 0"):
        MqttSink("mqtt://h/x", registry=CollectorRegistry(), author=None, buffer_size=0)


def test_is_a_sink_and_hides_credentials() -> None:
    sink = MqttSink("mqtt://h/x", registry=CollectorRegistry(), author=None,
                    environ={ENV_USERNAME: "bot", ENV_PASSWORD: "hunter2secret"})
    assert isinstance(sink, Sink)
    assert "hunter2secret" not in repr(sink) and "bot" not in repr(sink)


def test_config_key_and_flags(tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text('[mqtt]\npublish = "mqtt://127.0.0.1:1883/keep4o"\nbuffer = 500\n',
                      encoding="utf-8")
    parser = build_parser()
    settings = settings_from_args(parser.parse_args(["run", "--config", str(config)]))
    assert (settings.mqtt_publish, settings.mqtt_buffer) == ("mqtt://127.0.0.1:1883/keep4o", 500)
    settings = settings_from_args(parser.parse_args(
        ["run", "--config", str(config), "--mqtt-publish", "mqtts://b/x", "--mqtt-buffer", "7"]))
    assert (settings.mqtt_publish, settings.mqtt_buffer) == ("mqtts://b/x", 7)
    assert settings_from_args(parser.parse_args(["run"])).mqtt_publish is None
    config.write_text('[mqtt]\npassword = "x"\n', encoding="utf-8")
    with pytest.raises(UsageError, match="secret"):
        settings_from_args(parser.parse_args(["run", "--config", str(config)]))


# -- publishing ----------------------------------------------------------------------


async def test_publishes_flags_and_tagged_posts_pseudonymized(broker: Mosquitto) -> None:
    pseudonym = Pseudonymizer(KEY)
    flagged = make(1, flags=(Flag("spam", "medium", "spam.links", "link in bio"),
                             Flag("harassment", "high", "harassment.slur", "")))
    plain = make(2)
    unknown = make(3, source="myspace")  # not a known platform: topic segment 'other'
    registry = CollectorRegistry()
    async with subscribe(broker) as sub:
        sink = sink_for(broker.url("test"), registry)
        await sink.start()
        assert sink.connected
        await sink.write([flagged, plain, unknown])
        assert await sink.flush(5)
        await sink.close()
        messages = await sub.wait_for(5)

    assert sorted(m.topic.value for m in messages) == [
        "test/flags/harassment", "test/flags/spam",
        "test/tagged/bluesky", "test/tagged/bluesky", "test/tagged/other"]
    assert {m.qos for m in messages} == {1}
    for message in messages:
        assert HANDLE.encode() not in message.payload  # type: ignore[operator]
    tagged = {p["id"]: p for p in sub.payloads("tagged")}
    for post in (flagged, plain, unknown):
        assert tagged[post.post.id] == orjson.loads(encode_tagged(post, author=pseudonym))
        assert tagged[post.post.id]["author"] == pseudonym(HANDLE)
    flags = {p["kind"]: p for p in sub.payloads("flags")}
    assert flags["spam"] == {
        "kind": "spam", "severity": "medium", "rule": "spam.links", "evidence": "link in bio",
        "id": "bluesky:1", "source": "bluesky", "created_at": "2025-08-08T12:00:01Z",
        "url": "https://example.com/p/1", "lang": "en", "themes": ["grief"],
        "author": pseudonym(HANDLE),
    }
    assert flags["harassment"]["evidence"] == ""
    assert value(registry, "social_mqtt_published_total", kind="tagged") == 3
    assert value(registry, "social_mqtt_published_total", kind="flag") == 2
    assert value(registry, "social_mqtt_dropped_total", reason="buffer_full") == 0


async def test_no_pseudonymize_publishes_handles_as_given(broker: Mosquitto) -> None:
    async with subscribe(broker) as sub:
        sink = sink_for(broker.url("test"), CollectorRegistry(), author=None)
        await sink.start()
        await sink.write([make(1), make(2, author=None)])
        await sink.close()
        await sub.wait_for(2)
    authors = sorted(str(p["author"]) for p in sub.payloads("tagged"))
    assert authors == ["None", HANDLE]


async def test_empty_prefix_publishes_at_the_root(broker: Mosquitto) -> None:
    async with subscribe(broker, "#") as sub:
        sink = sink_for(f"mqtt://{broker.host}:{broker.port}", CollectorRegistry())
        await sink.start()
        await sink.write([make(1, source="x", flags=(Flag("nsfw", "high", "nsfw.r1"),))])
        await sink.close()
        messages = await sub.wait_for(2)
    assert sorted(m.topic.value for m in messages) == ["flags/nsfw", "tagged/x"]


async def test_a_full_buffer_waits_for_a_connected_broker(broker: Mosquitto) -> None:
    registry = CollectorRegistry()
    async with subscribe(broker) as sub:
        sink = sink_for(broker.url("test"), registry, buffer_size=5, inflight=2)
        await sink.start()
        await sink.write([make(n) for n in range(40)])  # one batch, eight buffers long
        await sink.close()
        ids = await sub.wait_for_ids({f"bluesky:{n}" for n in range(40)})
    assert sorted(set(ids)) == sorted(f"bluesky:{n}" for n in range(40))
    assert value(registry, "social_mqtt_dropped_total", reason="buffer_full") == 0
    assert value(registry, "social_mqtt_published_total", kind="tagged") == 40


# -- outages -------------------------------------------------------------------------


async def test_broker_restart_reconnects_and_delivers_the_rest(
        persistent_broker: Mosquitto) -> None:
    broker, registry = persistent_broker, CollectorRegistry()
    sub_id = "test-subscriber"  # a persistent session: the broker queues while it is away
    sink = sink_for(broker.url("test"), registry)
    async with subscribe(broker, identifier=sub_id, clean_session=False) as sub:
        await sink.start()
        await sink.write([make(n) for n in range(10)])
        assert await sink.flush(5)
        first = [orjson.loads(m.payload)["id"] for m in await sub.wait_for(10)]  # type: ignore[arg-type]
        broker.stop()
        for _ in range(100):  # the sink notices the broker is gone
            if not sink.connected:
                break
            await asyncio.sleep(0.05)
    assert not sink.connected
    started = time.monotonic()
    for n in range(10, 30, 5):  # the pipeline keeps going while the broker is down
        await sink.write([make(i) for i in range(n, n + 5)])
    assert time.monotonic() - started < 0.5, "write blocked while the broker was down"
    assert sink.pending == 20
    broker.start()
    await sink.write([make(n) for n in range(30, 40)])
    assert await sink.flush(10), "the sink did not reconnect and deliver"
    async with subscribe(broker, identifier=sub_id, clean_session=False,
                         resubscribe=False) as sub:
            expected = {f"bluesky:{n}" for n in range(10, 40)}
            rest = await sub.wait_for_ids(expected)
    await sink.close()
    assert first == [f"bluesky:{n}" for n in range(10)]
    # at least once: the broker may redeliver what it had in flight to the subscriber
    assert set(rest) - set(first) == expected
    assert value(registry, "social_mqtt_published_total", kind="tagged") >= 40
    assert value(registry, "social_mqtt_dropped_total", reason="buffer_full") == 0


async def test_buffer_overflow_drops_oldest_and_counts(
        persistent_broker: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    broker, registry = persistent_broker, CollectorRegistry()
    sub_id = "test-overflow"
    async with subscribe(broker, identifier=sub_id, clean_session=False):
        pass  # the subscription now outlives the connection
    broker.stop()
    sink = sink_for(broker.url("test"), registry, buffer_size=5)
    await sink.start()  # the broker is down: start returns, the sink keeps trying
    assert not sink.connected
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="monitor.sinks.mqtt"):
        for n in range(12):
            await sink.write([make(n)])
    assert time.monotonic() - started < 0.5, "write blocked on a full buffer"
    assert sink.pending == 5
    assert value(registry, "social_mqtt_dropped_total", reason="buffer_full") == 7
    assert "buffer full (5 messages" in caplog.text  # the first drop is logged at once
    broker.start()
    assert await sink.flush(10)
    await sink.close()
    async with subscribe(broker, identifier=sub_id, clean_session=False,
                         resubscribe=False) as sub:
        ids = [orjson.loads(m.payload)["id"] for m in await sub.wait_for(5)]  # type: ignore[arg-type]
    assert ids == [f"bluesky:{n}" for n in range(7, 12)]  # the newest survive, in order
    assert value(registry, "social_mqtt_published_total", kind="tagged") == 5


async def test_close_is_bounded_when_the_broker_never_comes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    sink = sink_for(f"mqtt://127.0.0.1:{free_port()}/test", registry, close_timeout=0.5)
    await sink.start()
    await sink.write([make(n, flags=(Flag("spam", "low", "spam.r1"),)) for n in range(3)])
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="monitor.sinks.mqtt"):
        await sink.close()
    assert time.monotonic() - started < 3
    assert value(registry, "social_mqtt_dropped_total", reason="shutdown") == 6
    assert "6 messages not delivered" in caplog.text
    with pytest.raises(RuntimeError, match="closed"):
        await sink.write([make(9)])


# -- credentials and TLS -------------------------------------------------------------


async def test_credentials_come_from_the_environment_and_are_never_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broker = password_broker(tmp_path)
    broker.start()
    try:
        with caplog.at_level(logging.DEBUG):
            wrong = sink_for(broker.url("test"), CollectorRegistry(), close_timeout=0.2,
                             environ={ENV_USERNAME: "bot", ENV_PASSWORD: "wrong-pass"})
            await wrong.start()
            assert not wrong.connected
            await wrong.close()
            async with subscribe(broker, username="bot", password="s3cret-pass") as sub:
                sink = sink_for(broker.url("test"), CollectorRegistry(),
                                environ={ENV_USERNAME: "bot", ENV_PASSWORD: "s3cret-pass"})
                await sink.start()
                assert sink.connected
                await sink.write([make(1)])
                await sink.close()
                assert len(await sub.wait_for(1)) == 1
        assert "not authori" in caplog.text.lower()
        assert "s3cret-pass" not in caplog.text and "wrong-pass" not in caplog.text
    finally:
        broker.stop()


def _make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    openssl = require_binary("openssl")
    ca_key, ca, key, csr, cert = (folder / n for n in
                                  ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    ext = folder / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n", encoding="ascii")
    for command in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
         "-keyout", ca_key, "-out", ca],
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", key, "-out", csr],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-days", "1", "-extfile", ext, "-out", cert],
    ):
        subprocess.run([openssl, *map(str, command)], check=True, capture_output=True)
    return ca, cert, key


async def test_mqtts_uses_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca, cert, key = _make_certificates(tmp_path)
    broker = Mosquitto(tmp_path, extra=(f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"))
    broker.start()
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # the sink trusts the system's CAs
    try:
        async with subscribe(broker, tls_context=ssl.create_default_context(cafile=ca)) as sub:
            sink = sink_for(broker.url("test", scheme="mqtts"), CollectorRegistry())
            await sink.start()
            assert sink.connected
            await sink.write([make(1)])
            await sink.close()
            assert [m.topic.value for m in await sub.wait_for(1)] == ["test/tagged/bluesky"]
        plain = sink_for(broker.url("test"), CollectorRegistry(), close_timeout=0.2)
        await plain.start()  # plain MQTT to a TLS listener does not connect
        assert not plain.connected
        await plain.close()
    finally:
        broker.stop()


# -- end to end and throughput -------------------------------------------------------


def _archive_records(root: Path) -> list[bytes]:
    lines: list[bytes] = []
    for path in sorted(root.rglob("*.jsonl.zst")):
        with path.open("rb") as fh:
            reader = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True)
            lines.extend(reader.read().splitlines())
    return lines


async def test_monitor_run_publishes_every_post_and_flag(broker: Mosquitto,
                                                         tmp_path: Path) -> None:
    source = tmp_path / "posts.jsonl"
    with (ROOT / "samples" / "stream.jsonl").open(encoding="utf-8") as fh:
        lines = [next(fh) for _ in range(1000)]
    source.write_text("".join(lines), encoding="utf-8")
    authors = {orjson.loads(line)["id"]: orjson.loads(line).get("author") for line in lines}
    handles = set(authors.values()) - {None}
    key = "k" * 32
    env = {**os.environ, ENV_KEY: key, "PYTHONPATH": str(ROOT)}
    env.pop(ENV_USERNAME, None)
    env.pop(ENV_PASSWORD, None)
    command = [sys.executable, "-m", "monitor", "run",
               "--source", f"replay:{source}?speed=max", "--exit-when-done",
               "--mqtt-publish", broker.url("test"), "--metrics-addr", "127.0.0.1:0",
               "--archive-dir", str(tmp_path / "archive"), "--progress", "off"]
    async with subscribe(broker) as sub:
        proc = await asyncio.create_subprocess_exec(*command, cwd=tmp_path, env=env,
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        output, _ = await asyncio.wait_for(proc.communicate(), timeout=240)
        assert proc.returncode == 0, output.decode(errors="replace")
        archived = _archive_records(tmp_path / "archive")
        flag_count = sum(len(orjson.loads(line)["flags"]) for line in archived)
        await sub.wait_for(len(archived) + flag_count, timeout=20)

    tagged = [m for m in sub.messages if m.topic.value.startswith("test/tagged/")]
    flags = [m for m in sub.messages if m.topic.value.startswith("test/flags/")]
    unique_posts = len({orjson.loads(line)["id"] for line in lines})
    assert len(archived) == unique_posts
    assert len(tagged) == unique_posts
    assert flag_count > 0 and len(flags) == flag_count
    # each tagged message is the archive's record, byte for byte
    assert sorted(m.payload for m in tagged) == sorted(archived)  # type: ignore[type-var]
    pseudonym = Pseudonymizer(key.encode())
    for message in flags:
        payload = orjson.loads(message.payload)  # type: ignore[arg-type]
        assert message.topic.value == f"test/flags/{payload['kind']}"
        record = orjson.loads(next(p for p in archived if orjson.loads(p)["id"] == payload["id"]))
        assert payload["author"] == record["author"]
    for message in (*tagged, *flags):
        payload = orjson.loads(message.payload)  # type: ignore[arg-type]
        handle = authors[payload["id"]]
        # the keyed pseudonym of the post's author, never the handle; None only without one
        assert payload["author"] == (None if handle is None else pseudonym(handle))
        assert payload["author"] not in handles
        # the author's handle appears nowhere but in the platform's own url and id, which
        # the archive keeps as they came
        handle = authors[payload["id"]]
        rest = {k: v for k, v in payload.items() if k not in ("author", "url", "id")}
        if handle is not None:
            mention = re.compile(rf"(?<![\w.@-]){re.escape(handle)}(?![\w.-])")
            assert not mention.search(orjson.dumps(rest).decode()), (
                f"raw handle {handle!r} in {message.topic.value}")
    assert {pseudonym(h) for h in handles} >= {orjson.loads(m.payload)["author"]  # type: ignore[arg-type]
                                               for m in tagged} - {None}
    assert {m.topic.value for m in tagged} <= {f"test/tagged/{s}" for s in
                                               ("bluesky", "mastodon", "x", "reddit", "rss",
                                                "mqtt", "replay", "kafka", "other")}


@pytest.mark.slow
async def test_publish_throughput(broker: Mosquitto,
                                  record_property: pytest.RecordProperty) -> None:
    """Messages/s at QoS 1 to a local Mosquitto, encoding included (printed; -s to see)."""
    registry = CollectorRegistry()
    sink = sink_for(broker.url("bench"), registry)
    await sink.start()
    posts = [make(n, flags=(Flag("spam", "low", "spam.r1", "x"),) if n % 10 == 0 else ())
             for n in range(20_000)]
    started = time.perf_counter()
    for i in range(0, len(posts), 256):
        await sink.write(posts[i:i + 256])
    assert await sink.flush(60)
    elapsed = time.perf_counter() - started
    await sink.close()
    sent = (value(registry, "social_mqtt_published_total", kind="tagged")
            + value(registry, "social_mqtt_published_total", kind="flag"))
    assert sent == 22_000
    rate = sent / elapsed
    record_property("mqtt_messages_per_second", round(rate))
    print(f"\nMQTT publish throughput: {rate:,.0f} messages/s at QoS 1 "
          f"({sent:.0f} in {elapsed:.2f}s)")
    assert rate > 500, "publishing is pathologically slow"
