"""``mqtt://HOST[:PORT]/TOPIC[?client_id=NAME]``: posts published to an MQTT topic.

Each message's payload is one post in the codec's JSON format
(:func:`monitor.codec.decode_post`); a payload that is not is a counted
rejection. The topic may hold the wildcards ``+`` and ``#``
(``mqtt://broker:1883/social/posts/#``; ``%23`` works too).

No loss across disconnects: the source subscribes at QoS 1 in a persistent
session (``clean_session=False``) under a fixed client identifier derived
from the broker and topic (``social-monitor-src-<hash>``; set another with
``?client_id=`` when two monitors read the same topic), so the broker keeps
the QoS 1 messages published while the monitor is away (a broker restart
too, with Mosquitto's ``persistence true``) and delivers them after the
reconnect.

Messages are acknowledged by hand, only once the consumer has taken the
post (the runtime queued it): the broker then holds back all but its
in-flight window (Mosquitto: 20 messages), which keeps this process's
buffer bounded however fast posts are published. A message taken but not
yet archived when the process dies is lost; one not yet acknowledged is
delivered again and dropped as a duplicate by its id.

Credentials come only from ``MONITOR_MQTT_USERNAME`` and
``MONITOR_MQTT_PASSWORD`` and are never logged; a URL holding them is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.reasoncodes import ReasonCode

from monitor.codec import DecodeError, decode_post
from monitor.model import Post
from monitor.sources import SourceError
from monitor.sources.backoff import Backoff
from monitor.sources.base import Rejected, SourceContext
from monitor.sources.names import collector
from monitor.sources.secret import Secret

__all__ = ["ENV_PASSWORD", "ENV_USERNAME", "MqttSource", "client_identifier"]

log = logging.getLogger(__name__)

ENV_USERNAME = "MONITOR_MQTT_USERNAME"
ENV_PASSWORD = "MONITOR_MQTT_PASSWORD"
#: Messages of QoS 0 (not flow-controlled by the broker) held before the client drops them.
_INCOMING_LIMIT = 1000
#: CONNACK codes that mean the credentials were refused: MQTT 3.1.1's 4 and 5, which
#: paho reports as the MQTT 5 reason codes 134 and 135.
_AUTH_CODES = frozenset({4, 5, 134, 135})


def client_identifier(host: str, port: int, topic: str) -> str:
    """The fixed client id of a subscription: the same after every restart."""
    digest = hashlib.sha256(f"{host}:{port}/{topic}".encode()).hexdigest()[:16]
    return f"social-monitor-src-{digest}"


class MqttSource:
    """Posts from one MQTT topic; see the module docstring."""

    name = "mqtt"
    finite = False

    def __init__(self, host: str, port: int, topic: str, *, client_id: str | None = None,
                 context: SourceContext | None = None, backoff: Backoff | None = None,
                 keepalive: int = 30, timeout: float = 10.0) -> None:
        if not topic or "\x00" in topic:
            raise SourceError("mqtt: name a topic, e.g. mqtt://127.0.0.1:1883/social/posts")
        self.host, self.port, self.topic = host, port, topic
        self.client_id = client_id or client_identifier(host, port, topic)
        self.context = context or SourceContext()
        self.backoff = backoff or Backoff(base=0.5, cap=60.0)
        self.keepalive, self.timeout = keepalive, timeout
        env = self.context.environ
        self._username = env.get(ENV_USERNAME) or None
        password = env.get(ENV_PASSWORD) or None
        self._password = Secret(password) if password is not None else None
        if self._password is not None and self._username is None:
            raise SourceError(f"mqtt: {ENV_PASSWORD} is set but {ENV_USERNAME} is not; set both")
        host_part = f"[{host}]" if ":" in host else host
        self.url = f"mqtt://{host_part}:{port}/{topic}"
        self.collector = collector("mqtt")
        self._client: aiomqtt.Client | None = None

    @classmethod
    def from_uri(cls, uri: str, context: SourceContext | None = None) -> MqttSource:
        """``mqtt://HOST[:PORT]/TOPIC[?client_id=NAME]``."""
        rest = uri.split("://", 1)[1] if "://" in uri else ""
        netloc, _, path = rest.partition("/")
        path, _, query = path.partition("?")
        try:
            parts = urlsplit(f"mqtt://{netloc}")
            port = parts.port or 1883
        except ValueError:
            raise SourceError(f"{uri}: the port must be a number 1-65535, "
                              "e.g. mqtt://127.0.0.1:1883/social/posts") from None
        if "@" in netloc:
            # the URL holds a secret: do not echo it back
            raise SourceError(f"mqtt source for host {parts.hostname!r} holds credentials; put "
                              f"them in {ENV_USERNAME} and {ENV_PASSWORD} instead")
        if not uri.lower().startswith("mqtt://") or not parts.hostname:
            raise SourceError(f"{uri}: use mqtt://HOST[:PORT]/TOPIC")
        options = {k: v[-1] for k, v in parse_qs(query).items()}
        if unknown := set(options) - {"client_id"}:
            raise SourceError(f"{uri}: unknown option(s) {', '.join(sorted(unknown))}; "
                              "only client_id= is understood")
        topic = unquote(path)
        if not topic:
            raise SourceError(f"{uri}: name a topic, e.g. mqtt://{netloc}/social/posts")
        return cls(parts.hostname, port, topic, client_id=options.get("client_id"),
                   context=context)

    def __repr__(self) -> str:
        return f"MqttSource({self.url}, client_id={self.client_id!r})"

    @property
    def buffered(self) -> int:
        """Messages received from the broker and not yet passed on."""
        client = self._client
        return len(client.messages) if client is not None else 0

    def _new_client(self) -> aiomqtt.Client:
        client = aiomqtt.Client(
            self.host, self.port, identifier=self.client_id, clean_session=False,
            username=self._username,
            password=self._password.reveal() if self._password is not None else None,
            keepalive=self.keepalive, timeout=self.timeout, max_queued_incoming_messages=_INCOMING_LIMIT,
            logger=logging.getLogger(f"{__name__}.paho"),
        )
        # aiomqtt has no option for it: acknowledge each QoS 1 message ourselves, once
        # the consumer took it (paho's documented manual_ack mode).
        client._client.manual_ack_set(True)
        return client

    async def stream(self) -> AsyncIterator[Post | Rejected]:
        context, name = self.context, self.name
        sessions = 0
        try:
            while True:
                kind = "connect"
                client = self._new_client()
                try:
                    async with client:
                        self._client = client
                        granted = await client.subscribe(self.topic, qos=1)
                        if _refused(granted):
                            raise _SubscribeRefused(self.topic)
                        context.up(name, True)
                        if sessions:
                            context.reconnected(name)
                        sessions += 1
                        log.info("mqtt: subscribed to %s as %s", self.url, self.client_id)
                        self.backoff.reset()
                        async for message in client.messages:
                            yield self.decode(message)
                            # the consumer took it: now the broker may forget it
                            client._client.ack(message.mid, message.qos)
                except _SubscribeRefused:
                    kind = "auth"
                    log.warning("mqtt: %s refused the subscription to %r", self.url, self.topic)
                except MqttConnectError as exc:  # a negative CONNACK
                    kind = "auth" if _code(exc.rc) in _AUTH_CODES else "connect"
                    log.warning("mqtt: %s: %s", self.url, _describe(exc))
                except aiomqtt.MqttError as exc:
                    kind = "timeout" if "timed out" in str(exc) else "connect"
                    log.warning("mqtt: %s: %s", self.url, _describe(exc))
                finally:
                    self._client = None
                    _forget_disconnect(client)
                context.up(name, False)
                context.error(name, kind)
                delay = self.backoff.next_delay()
                log.info("mqtt: reconnecting to %s in %.1fs", self.url, delay)
                await asyncio.sleep(delay)
        finally:
            context.up(name, False)

    def decode(self, message: aiomqtt.Message) -> Post | Rejected:
        """One message's payload: a Post, or a counted rejection naming the topic."""
        payload = message.payload
        if isinstance(payload, bytearray):
            payload = bytes(payload)
        elif isinstance(payload, int | float) or payload is None:
            payload = b"" if payload is None else str(payload).encode()
        try:
            post = decode_post(payload, default_source=self.name)  # type: ignore[arg-type]
        except DecodeError as exc:
            return Rejected(self.name, exc.reason, exc.detail, str(message.topic))
        if post.collector is None:
            post.collector = self.collector
        if post.source_url is None:
            post.source_url = self.url
        if post.retrieved_at is None:
            post.retrieved_at = datetime.now(UTC)
        return post


class _SubscribeRefused(Exception):
    pass


def _forget_disconnect(client: aiomqtt.Client) -> None:
    """Mark a lost connection's error as seen: aiomqtt keeps it in a future that nobody
    awaits when the drop came while the consumer was busy, and asyncio would log it."""
    future = getattr(client, "_disconnected", None)
    if isinstance(future, asyncio.Future) and future.done() and not future.cancelled():
        future.exception()


def _code(rc: Any) -> int:
    if isinstance(rc, ReasonCode):
        return rc.value
    return int(rc) if isinstance(rc, int) else -1


def _refused(granted: Any) -> bool:
    """True when the SUBACK refused the subscription (return code 0x80)."""
    codes = granted if isinstance(granted, list | tuple) else [granted]
    return any(_code(c) >= 0x80 for c in codes)


def _describe(exc: BaseException) -> str:
    """A short reason, from the exception chain, never holding credentials."""
    text = str(exc) or exc.__class__.__name__
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({cause})"
    return text
