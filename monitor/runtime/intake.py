"""A source's stream as both runtimes take it in: posts out, rejections counted.

``monitor run`` and ``monitor collect`` count what a source sends the same
way (the same metrics, so one dashboard serves both); this is that counting.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Protocol

from monitor.model import Post
from monitor.sinks.metrics import Metrics
from monitor.sources.base import Rejected, Source

__all__ = ["Counts", "accepted"]

log = logging.getLogger(__name__)


class Counts(Protocol):
    """The totals a runtime reports at the end of a run."""

    received: int
    rejected: int


async def accepted(source: Source, stats: Counts, metrics: Metrics) -> AsyncIterator[Post]:
    """The source's posts; each rejection is counted (``stats`` and
    ``social_posts_rejected_total``) and logged at debug, not passed on."""
    async for item in source.stream():
        stats.received += 1
        if isinstance(item, Rejected):
            stats.rejected += 1
            metrics.record_rejected(item.source, item.reason)
            log.debug("rejected %s: %s %s", item.where, item.reason, item.detail)
            continue
        metrics.record_received(item.source)
        yield item
