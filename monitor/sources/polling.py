"""What the polling sources (reddit, rss) share: the poll loop and the health they report."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import aiohttp

from monitor.sources.backoff import Backoff
from monitor.sources.base import SourceContext
from monitor.sources.http import SourceFailure, network_failure

__all__ = ["PollHealth", "poll_forever"]

T = TypeVar("T")


class PollHealth:
    """Reports ``up`` and ``down`` on their edges only, and a reconnect once up after a fall.

    Nothing is reported before the first answer or failure; a recovery counts
    as a reconnect only when the source had been up before it went down.
    """

    def __init__(self, context: SourceContext, name: str, where: str,
                 log: logging.Logger) -> None:
        self.context, self.name, self.where, self.log = context, name, where, log
        #: last health reported (None: nothing yet)
        self.up: bool | None = None
        self._was_up = False

    def mark_down(self) -> None:
        if self.up is not False:
            self.context.up(self.name, False)
            self.up = False

    def mark_up(self) -> None:
        if self.up is False and self._was_up:
            self.context.reconnected(self.name)
            self.log.info("%s: %s: reachable again", self.name, self.where)
        if not self.up:
            self.context.up(self.name, True)
        self.up = self._was_up = True


async def poll_forever(poll: Callable[[], AsyncIterator[T]], *, every: float, backoff: Backoff,
                       rng: random.Random,
                       wait_after: Callable[[SourceFailure], Awaitable[None]]) -> AsyncIterator[T]:
    """Run ``poll`` for ever, passing its items on, ``every`` seconds (+-10 %) apart.

    A poll that fails (a SourceFailure, or a network error as a ``connect`` or
    ``timeout`` one) is followed by ``wait_after(failure)`` and retried at once
    after it; a poll that succeeds resets ``backoff``.
    """
    while True:
        try:
            async for item in poll():
                yield item
        except SourceFailure as failure:
            await wait_after(failure)
            continue
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            await wait_after(network_failure(exc))
            continue
        backoff.reset()
        await asyncio.sleep(every * rng.uniform(0.9, 1.1))
