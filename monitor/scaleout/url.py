"""``kafka://HOST:PORT[,HOST:PORT...][/TOPIC]``: where the brokers are, and maybe a topic."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

__all__ = ["KafkaTarget", "parse_kafka_url"]

_HOSTPORT = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+)(?::\d{1,5})?")
#: Kafka's own rule for topic names
_TOPIC = re.compile(r"[A-Za-z0-9._\-]{1,249}")
DEFAULT_PORT = 9092


@dataclass(frozen=True, slots=True)
class KafkaTarget:
    """Bootstrap servers (``host:port`` each) and the topic the URL named, if any."""

    servers: tuple[str, ...]
    topic: str | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port,host:port`` as aiokafka takes it."""
        return ",".join(self.servers)

    @property
    def faust_broker(self) -> str:
        """``kafka://host:port;host:port`` as Faust takes it."""
        return ";".join(f"kafka://{s}" for s in self.servers)

    def __str__(self) -> str:
        return f"kafka://{self.bootstrap}" + (f"/{self.topic}" if self.topic else "")


def parse_kafka_url(url: str, *, topic: bool | None = None) -> KafkaTarget:
    """Parse ``url``; ``topic=True`` requires a topic, ``False`` refuses one, None allows both.

    Credentials in the URL are refused: a URL ends up in logs.
    """
    example = "kafka://127.0.0.1:9092" + ("/posts" if topic else "")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "kafka":
        raise ValueError(f"{url!r} is not a Kafka URL; write it as {example}")
    hosts, _, path = rest.partition("/")
    if "@" in hosts:
        raise ValueError(f"{url.split('@')[-1]!r}: credentials do not belong in the URL "
                         "(it is logged); SASL is not supported yet")
    servers = []
    for item in filter(None, hosts.split(",")):
        if not _HOSTPORT.fullmatch(item):
            raise ValueError(f"{url!r}: {item!r} is not HOST:PORT; write it as {example}")
        if item.rpartition(":")[2].isdigit() and not item.endswith("]"):
            port = int(item.rpartition(":")[2])
            if not 0 < port < 65536:
                raise ValueError(f"{url!r}: port {port} is out of range")
            servers.append(item)
        else:
            servers.append(f"{item}:{DEFAULT_PORT}")
    if not servers:
        raise ValueError(f"{url!r} names no broker; write it as {example}")
    name = unquote(path.strip("/")) or None
    if name is not None and not _TOPIC.fullmatch(name):
        raise ValueError(f"{url!r}: {name!r} is not a valid topic name "
                         "(letters, digits, '.', '_', '-'; at most 249)")
    if topic is True and name is None:
        raise ValueError(f"{url!r} names no topic; write it as {example}")
    if topic is False and name is not None:
        raise ValueError(f"{url!r}: give the broker only ({example}); topics are set with "
                         "--posts-topic, --tagged-topic and --flags-topic")
    return KafkaTarget(tuple(servers), name)
