"""The interface of an extra output (MQTT, Kafka, ...) beside metrics and the archive."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from monitor.model import TaggedPost

__all__ = ["Sink"]


@runtime_checkable
class Sink(Protocol):
    """Receives every processed batch, concurrently with the other sinks.

    The runtime gives each sink its own bounded queue, so a slow sink slows
    the processor (backpressure) instead of growing memory; an exception from
    ``write`` is logged and counted and the stream goes on.
    """

    #: short name for logs and the ``sink`` metric label
    name: str

    async def start(self) -> None:
        """Connect; called once before the first batch."""
        ...

    async def write(self, batch: Sequence[TaggedPost]) -> None:
        """Deliver one batch; return when the sink has taken it."""
        ...

    async def close(self) -> None:
        """Deliver what is pending and disconnect; called once at shutdown."""
        ...
