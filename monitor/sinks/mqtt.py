"""Publish flags and tagged posts to an MQTT broker, so organizers' own bots can react.

``mqtt://HOST[:PORT]/PREFIX`` (``mqtts://`` for TLS) gets, at QoS 1:

- ``PREFIX/flags/<kind>``: one JSON message per flag: the flag (``kind``,
  ``severity``, ``rule``, ``evidence``) and the post's ``id``, ``source``,
  ``created_at``, ``url``, ``lang``, ``themes`` and (pseudonymized) ``author``;
- ``PREFIX/tagged/<source>``: every tagged post, exactly the archive's record
  (:func:`monitor.codec.encode_tagged`), the raw payload never included;
  ``<source>`` is a bounded platform name (else ``other``).

Delivery is at least once. Messages wait in one bounded buffer (default
10,000): while the broker is reachable a full buffer slows the pipeline down
(for at most ``publish_timeout``); while it is not, the sink reconnects with
capped exponential backoff and a full buffer drops its oldest message,
counted in ``social_mqtt_dropped_total{reason="buffer_full"}`` with a
warning. :meth:`MqttSink.close` delivers what is buffered for at most
``close_timeout`` seconds, then disconnects.

Credentials come only from the environment (``MONITOR_MQTT_USERNAME``,
``MONITOR_MQTT_PASSWORD``) and are never logged; a URL holding them is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import re
import secrets
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import orjson
from prometheus_client import CollectorRegistry, Counter

from monitor.codec import encode_tagged, tagged_to_dict
from monitor.model import TaggedPost
from monitor.sources.base import platform_label

__all__ = [
    "DEFAULT_BUFFER",
    "DROP_REASONS",
    "ENV_PASSWORD",
    "ENV_USERNAME",
    "KINDS",
    "MqttSink",
    "MqttTarget",
    "parse_mqtt_url",
]

log = logging.getLogger(__name__)

#: Environment variables holding the broker's credentials (never the config file).
ENV_USERNAME = "MONITOR_MQTT_USERNAME"
ENV_PASSWORD = "MONITOR_MQTT_PASSWORD"
#: Messages held while the broker is slow or away; then the oldest are dropped.
DEFAULT_BUFFER = 10_000
#: ``kind`` label values of ``social_mqtt_published_total``.
KINDS: tuple[str, ...] = ("flag", "tagged")
#: ``reason`` label values of ``social_mqtt_dropped_total``.
DROP_REASONS: tuple[str, ...] = ("buffer_full", "shutdown")

_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_SEGMENT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_WARN_EVERY = 10.0  # seconds between two "dropping" warnings


@dataclass(frozen=True, slots=True)
class MqttTarget:
    """Where to publish: a broker address, TLS or not, and the topic prefix."""

    host: str
    port: int
    prefix: str
    tls: bool = False

    def topic(self, *segments: str) -> str:
        return "/".join((self.prefix, *segments) if self.prefix else segments)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}/{self.prefix}"


def parse_mqtt_url(url: str) -> MqttTarget:
    """``mqtt[s]://HOST[:PORT][/PREFIX]`` to a target; ValueError says what to fix."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError(f"MQTT URL {url!r}: the port must be a number 1-65535, "
                         "e.g. mqtt://127.0.0.1:1883/social") from None
    if parts.username is not None or parts.password is not None:
        # The URL holds a secret: do not echo it back.
        raise ValueError(f"MQTT URL for host {parts.hostname!r} holds credentials; put them in "
                         f"{ENV_USERNAME} and {ENV_PASSWORD} instead")
    if parts.scheme not in _DEFAULT_PORTS:
        raise ValueError(f"MQTT URL {url!r}: use mqtt://HOST[:PORT]/PREFIX, or mqtts:// for TLS")
    if not parts.hostname:
        raise ValueError(f"MQTT URL {url!r} has no host; e.g. mqtt://127.0.0.1:1883/social")
    if parts.query or parts.fragment:
        raise ValueError(f"MQTT URL {url!r}: no '?' or '#' part is understood")
    prefix = parts.path.strip("/")
    if prefix and not all(_SEGMENT.fullmatch(s) for s in prefix.split("/")):
        raise ValueError(f"MQTT URL {url!r}: prefix {prefix!r} must be '/'-separated segments "
                         "of letters, digits, '_', '.', '-' (no wildcards, no empty segment)")
    return MqttTarget(parts.hostname, port or _DEFAULT_PORTS[parts.scheme], prefix,
                      parts.scheme == "mqtts")


@dataclass(slots=True)
class _Message:
    topic: str
    payload: bytes
    kind: str


class MqttSink:
    """The MQTT output (a :class:`monitor.sinks.base.Sink`); see the module docstring.

    ``author`` maps a raw handle to what is published (the archive's
    :class:`~monitor.privacy.Pseudonymizer`); ``None`` publishes handles as
    they came, for ``--no-pseudonymize`` only. ``registry`` receives
    ``social_mqtt_published_total{kind}`` and ``social_mqtt_dropped_total{reason}``.
    """

    name = "mqtt"

    def __init__(
        self,
        url: str,
        *,
        registry: CollectorRegistry,
        author: Callable[[str], str] | None,
        buffer_size: int = DEFAULT_BUFFER,
        inflight: int = 64,
        publish_timeout: float = 10.0,
        close_timeout: float = 5.0,
        backoff: tuple[float, float] = (0.5, 30.0),
        keepalive: int = 30,
        identifier: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.target = parse_mqtt_url(url)
        if buffer_size < 1:
            raise ValueError(f"MQTT buffer size {buffer_size}: at least 1 message")
        if inflight < 1:
            raise ValueError(f"MQTT inflight window {inflight}: at least 1 message")
        if not 0 < backoff[0] <= backoff[1]:
            raise ValueError(f"MQTT backoff {backoff}: need 0 < min <= max seconds")
        env = os.environ if environ is None else environ
        self._username = env.get(ENV_USERNAME) or None
        self._password = env.get(ENV_PASSWORD) or None
        if self._password is not None and self._username is None:
            raise ValueError(f"{ENV_PASSWORD} is set but {ENV_USERNAME} is not; set both")
        self.buffer_size = buffer_size
        self.inflight = inflight
        self.publish_timeout = publish_timeout
        self.close_timeout = close_timeout
        self.backoff = backoff
        self.keepalive = keepalive
        self.identifier = identifier or f"social-monitor-{secrets.token_hex(6)}"
        self._author = author
        published = Counter("social_mqtt_published", "Messages the MQTT broker acknowledged.",
                            ["kind"], registry=registry)
        dropped = Counter("social_mqtt_dropped", "MQTT messages dropped undelivered, by reason.",
                          ["reason"], registry=registry)
        self._published = {kind: published.labels(kind) for kind in KINDS}
        self._dropped = {reason: dropped.labels(reason) for reason in DROP_REASONS}
        self._buffer: deque[_Message] = deque()
        self._inflight: dict[int, _Message] = {}
        self._seq = itertools.count()
        self._connected = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()
        self._has_data = asyncio.Event()
        self._space = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._drops_unlogged = 0
        self._last_warning = -_WARN_EVERY

    def __repr__(self) -> str:
        return f"MqttSink({self.target}, buffer_size={self.buffer_size})"

    @property
    def connected(self) -> bool:
        """True while a session with the broker is up."""
        return self._connected

    @property
    def pending(self) -> int:
        """Messages not yet acknowledged by the broker (buffered plus in flight)."""
        return len(self._buffer) + len(self._inflight)

    # -- the Sink protocol ---------------------------------------------------------

    async def start(self) -> None:
        """Connect (waiting at most ``publish_timeout``); a broker that is down is not an
        error: the sink keeps trying in the background and buffers meanwhile."""
        if self._task is not None:
            return
        self._first_attempt = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"mqtt:{self.target}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), self.publish_timeout)

    async def write(self, batch: Sequence[TaggedPost]) -> None:
        """Encode and buffer a batch; waits only while a connected broker catches up."""
        if self._closing:
            raise RuntimeError(f"{self!r} is closed")
        buffer = self._buffer
        for message in self._encode(batch):
            if len(buffer) >= self.buffer_size:
                self._idle.clear()
                self._has_data.set()
                await self._wait_for_room()
                if len(buffer) >= self.buffer_size:
                    buffer.popleft()
                    self._drop("buffer_full")
            buffer.append(message)
        if buffer:
            self._idle.clear()
            self._has_data.set()

    async def close(self) -> None:
        """Deliver what is buffered (at most ``close_timeout`` s), then disconnect."""
        if self._closing:
            return
        self._closing = True
        self._space.set()
        delivered = await self.flush(self.close_timeout)
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=2.0)
        self._requeue_inflight()
        if not delivered and (left := len(self._buffer)):
            self._dropped["shutdown"].inc(left)
            log.warning("mqtt %s: %d messages not delivered within %gs of shutdown; dropped",
                        self.target, left, self.close_timeout)
        self._buffer.clear()
        self._flush_drop_warning(force=True)

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every buffered message is acknowledged; False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # -- encoding ------------------------------------------------------------------

    def _encode(self, batch: Sequence[TaggedPost]) -> list[_Message]:
        target, author = self.target, self._author
        out: list[_Message] = []
        for tagged in batch:
            source = platform_label(tagged.post.source)
            out.append(_Message(target.topic("tagged", source),
                                encode_tagged(tagged, author=author), "tagged"))
            if not tagged.all_flags:
                continue
            record = tagged_to_dict(tagged, author=author)
            post = {name: record[name] for name in
                    ("id", "source", "created_at", "url", "lang", "themes", "author")}
            for flag in record["flags"]:
                kind = flag["kind"] if _SEGMENT.fullmatch(flag["kind"]) else "other"
                payload = {**flag, "evidence": flag.get("evidence", ""), **post}
                out.append(_Message(target.topic("flags", kind), orjson.dumps(payload), "flag"))
        return out

    # -- buffer --------------------------------------------------------------------

    async def _wait_for_room(self) -> None:
        """Backpressure, bounded: wait while connected, at most ``publish_timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.publish_timeout
        while (len(self._buffer) >= self.buffer_size and self._connected
               and not self._closing and (left := deadline - loop.time()) > 0):
            self._space.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._space.wait(), left)

    def _drop(self, reason: str, count: int = 1) -> None:
        self._dropped[reason].inc(count)
        self._drops_unlogged += count
        self._flush_drop_warning()

    def _flush_drop_warning(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self._drops_unlogged and (force or now - self._last_warning >= _WARN_EVERY):
            log.warning("mqtt %s: buffer full (%d messages; broker away or too slow): "
                        "dropped the %d oldest", self.target, self.buffer_size,
                        self._drops_unlogged)
            self._drops_unlogged = 0
            self._last_warning = now

    def _requeue_inflight(self) -> None:
        """Put unacknowledged messages back at the front, oldest first, within the bound."""
        for seq in sorted(self._inflight, reverse=True):
            message = self._inflight.pop(seq)
            if len(self._buffer) < self.buffer_size:
                self._buffer.appendleft(message)
            else:
                self._drop("buffer_full")  # it is older than everything buffered
        if self._buffer:
            self._has_data.set()

    # -- connection ----------------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        client = aiomqtt.Client(
            self.target.host, self.target.port,
            username=self._username, password=self._password,
            identifier=self.identifier, clean_session=True,
            keepalive=self.keepalive, timeout=self.publish_timeout,
            max_inflight_messages=self.inflight,
            tls_context=ssl.create_default_context() if self.target.tls else None,
        )
        client.pending_calls_threshold = self.inflight + 1  # our own window, not a leak
        return client

    async def _run(self) -> None:
        """Connect, publish until the session breaks, back off, repeat; cancelled by close."""
        low, high = self.backoff
        delay = low
        while True:
            started = time.monotonic()
            reason = "session ended"
            try:
                async with self._client() as client:
                    self._connected = True
                    self._first_attempt.set()
                    log.info("mqtt: connected to %s", self.target)
                    await self._session(client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = _reason(exc)
            finally:
                self._connected = False
                self._first_attempt.set()
                self._requeue_inflight()
                self._space.set()  # wake writers: the buffer now drops instead of waiting
            if time.monotonic() - started > high:
                delay = low  # the last session lasted: start the backoff afresh
            wait = delay * random.uniform(0.5, 1.0)
            log.warning("mqtt %s: %s; %d messages buffered, reconnecting in %.1fs",
                        self.target, reason, len(self._buffer), wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, high)

    async def _session(self, client: aiomqtt.Client) -> None:
        """Publish with ``inflight`` workers until the broker goes away (raises)."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._watch(client))
            for _ in range(self.inflight):
                group.create_task(self._publisher(client))

    @staticmethod
    async def _watch(client: aiomqtt.Client) -> None:
        """Raise MqttError when the connection drops (nothing is subscribed)."""
        async for _ in client.messages:
            pass

    async def _publisher(self, client: aiomqtt.Client) -> None:
        buffer, inflight, published = self._buffer, self._inflight, self._published
        while True:
            while not buffer:
                self._has_data.clear()
                await self._has_data.wait()
            message = buffer.popleft()
            self._space.set()
            seq = next(self._seq)
            inflight[seq] = message  # requeued by _run if the session breaks now
            await client.publish(message.topic, message.payload, qos=1,
                                 timeout=self.publish_timeout)
            del inflight[seq]
            published[message.kind].inc()
            if not buffer and not inflight:
                self._idle.set()


def _reason(exc: BaseException) -> str:
    """A short reason for a log line: the first leaf of an exception group."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or exc.__class__.__name__
    cause: Any = exc.__cause__
    if cause is not None and str(cause):
        text = f"{text} ({cause})"
    return text[:200]
