"""Runs the stateful detectors over a batch and applies their effects once.

Flags are merged per kind: a post carries at most one flag of each kind
(see :func:`merge_flags`).
A detector that raises is logged and counted and the others still run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence

from monitor.model import SEVERITIES, Flag, Post, Tags
from monitor.moderation.config import ModerationConfig
from monitor.moderation.detectors import (
    DETECTORS,
    Detector,
    ModerationState,
    author_burst,
    link_promotion,
    near_duplicate,
    observed,
)
from monitor.moderation.neardup import EMPTY, minhash_batch
from monitor.moderation.remembered import Remembered

__all__ = ["Moderator", "merge_flags"]

log = logging.getLogger(__name__)
_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def merge_flags(content: Iterable[Flag], stateful: Iterable[Flag]) -> tuple[Flag, ...]:
    """One flag per kind: a kind the content rules raised is not raised again (their flag
    carries the evidence); among detectors, the most severe flag of a kind is kept."""
    raised = {f.kind for f in content}
    best: dict[str, Flag] = {}
    for flag in stateful:
        if flag.kind in raised:
            continue
        have = best.get(flag.kind)
        if have is None or _RANK[flag.severity] > _RANK[have.severity]:
            best[flag.kind] = flag
    return tuple(best.values())


class Moderator:
    """Windowed detectors (floods, promotion, bursts, stuffing) with bounded memory."""

    def __init__(self, config: ModerationConfig | None = None,
                 trusted_domains: Iterable[str] = (),
                 detectors: Sequence[Detector] = DETECTORS, salt: bytes | None = None) -> None:
        self.config = config or ModerationConfig()
        trusted = frozenset(d.lower() for d in (*self.config.trusted_domains, *trusted_domains))
        self.state = ModerationState.create(self.config, trusted, salt or os.urandom(16))
        self.detectors = tuple(detectors)
        self.errors = 0

    def moderate(self, posts: Sequence[Post], tags: Sequence[Tags],
                 remember: list[Remembered] | None = None) -> list[tuple[Flag, ...]]:
        """The stateful flags of each post, in order; posts must be in arrival order.

        ``remember``: receives each post's :class:`Remembered` inputs to the
        windows (none when moderation is disabled), for :meth:`replay`.
        """
        if not self.config.enabled or not posts:
            return [() for _ in posts]
        state = self.state
        signatures = minhash_batch(state.near_duplicates.word_sets([p.text for p in posts]))
        out: list[tuple[Flag, ...]] = []
        for post, post_tags, signature in zip(posts, tags, signatures, strict=True):
            item = observed(post, post_tags, signature)
            if remember is not None:
                remember.append(Remembered(
                    item.now, state.author_key(post.author), tuple(state.promoted_domains(item.links)),
                    None if signature[0] == EMPTY else signature))
            found: list[Flag] = []
            for detector in self.detectors:
                try:
                    flag = detector(self.state, item)
                except Exception:
                    self.errors += 1
                    log.exception("detector %s failed on post %s", detector.__name__, post.id)
                    continue
                if flag is not None:
                    found.append(flag)
            out.append(merge_flags(post_tags.flags, found) if found else ())
        return out

    def replay(self, items: Iterable[Remembered]) -> int:
        """Rebuild the windows from remembered posts, in their arrival order, as if
        :meth:`moderate` had seen them (with the same salt); returns how many."""
        if not self.config.enabled:
            return 0
        state = self.state
        clusters = near_duplicate in self.detectors
        domains = link_promotion in self.detectors
        authors = author_burst in self.detectors
        count = 0
        for item in items:
            count += 1
            if clusters and item.signature is not None:
                state.near_duplicates.observe("", item.author, item.time, item.signature)
            if domains:
                for domain in item.domains:
                    state.domains.add(domain, item.time)
            if authors and item.author is not None:
                state.authors.add(item.author, item.time)
        return count

    def memory_bytes(self) -> dict[str, int]:
        """Estimated bytes per structure, to check against the configured bounds."""
        return self.state.memory_bytes()
