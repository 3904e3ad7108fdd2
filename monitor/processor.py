"""Post in, TaggedPost out: the one processor both runtimes call.

Plain, synchronous and deterministic: no asyncio, no I/O, no metrics. It
deduplicates by post id within a bounded window, tags in batches, and
isolates a post that breaks tagging so the rest of its batch goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from monitor import __version__
from monitor.model import Post, TaggedPost, Tags
from monitor.moderation.moderator import Moderator
from monitor.tagging.refresh import FORCED_STEP_SECONDS, Refresh
from monitor.tagging.ruleset import Ruleset

if TYPE_CHECKING:
    from monitor.tagging import Tagger

__all__ = ["BatchResult", "Processor", "RecentIds", "tag_isolated"]

log = logging.getLogger(__name__)


class RecentIds:
    """Remembers at least the last ``capacity // 2`` ids, never more than ``capacity``.

    Two generations of sets: when the young one fills, the old one is
    dropped. Memory is bounded and lookups stay O(1), at the price of
    forgetting ids older than the window (the archive dedups per day).
    """

    def __init__(self, capacity: int = 200_000) -> None:
        if capacity < 2:
            raise ValueError(f"capacity={capacity}: remember at least 2 ids")
        self._half = capacity // 2
        self._young: set[str] = set()
        self._old: set[str] = set()

    def seen(self, key: str) -> bool:
        """True if ``key`` was seen in the window; records it otherwise."""
        if key in self._young or key in self._old:
            return True
        if len(self._young) >= self._half:
            self._old, self._young = self._young, set()
        self._young.add(key)
        return False

    def __len__(self) -> int:
        return len(self._young) + len(self._old)


@dataclass(slots=True)
class BatchResult:
    """What one batch became: tagged posts, duplicates skipped, posts that failed."""

    tagged: list[TaggedPost] = field(default_factory=list)
    duplicates: list[Post] = field(default_factory=list)
    failed: list[tuple[Post, str]] = field(default_factory=list)


class Processor:
    """Dedup, tagging and moderation; swap the rules whole to reload them.

    ``rules``: a compiled :class:`Tagger`, or a :class:`Ruleset` compiled the
    first time this process has to tag (when a tagging process does the
    tagging: only if it dies), which spares this process the compiled rules
    and spaCy itself (~140 MiB).
    """

    def __init__(self, rules: Tagger | Ruleset, *, moderator: Moderator | None = None,
                 version: str = __version__, dedup_window: int = 100_000,
                 refresh_every: int = 50_000) -> None:
        self.ruleset: Ruleset = rules if isinstance(rules, Ruleset) else rules.ruleset
        self._tagger: Tagger | None = None if isinstance(rules, Ruleset) else rules
        self.moderator = moderator
        self.version = version
        #: swaps in a freshly compiled tagger every ``refresh_every`` posts (bounds spaCy's
        #: vocabulary), built a step at a time: see refresh_step()
        self.refresh = Refresh(refresh_every)
        self._recent = RecentIds(dedup_window)

    @property
    def tagger(self) -> Tagger:
        """The compiled rules; compiled here on first use if given as a :class:`Ruleset`."""
        if self._tagger is None:
            from monitor.tagging import Tagger, compile_ruleset

            log.info("compiling ruleset '%s' in this process", self.ruleset.name)
            self._tagger = Tagger(compile_ruleset(self.ruleset))
        return self._tagger

    @property
    def compiled(self) -> bool:
        """Whether this process holds the compiled rules."""
        return self._tagger is not None

    def swap_rules(self, rules: Tagger | Ruleset) -> None:
        """Use another ruleset from the next batch on (a reload).

        The moderator is rebuilt only if the new ruleset changes its settings,
        since rebuilding forgets the windows (floods in progress).
        """
        old = self.ruleset
        new = rules if isinstance(rules, Ruleset) else rules.ruleset
        if self.moderator is not None and (
                old.moderation != new.moderation
                or old.campaign.trusted_domains != new.campaign.trusted_domains):
            self.moderator = Moderator(new.moderation, new.campaign.trusted_domains)
            log.info("moderation settings changed: detector windows start afresh")
        self.ruleset = new
        self._tagger = None if isinstance(rules, Ruleset) else rules
        self.refresh.cancel()

    def process(self, posts: Sequence[Post]) -> BatchResult:
        """Tag a batch. Never raises for one bad post: it lands in ``failed``."""
        result, fresh = self.admit(posts)
        if not fresh:
            return result
        return self.complete(result, fresh, *self.tag(fresh))

    def tag(self, fresh: Sequence[Post], lap: Callable[[str], None] | None = None,
            ) -> tuple[Sequence[Tags | None], str, str]:
        """Step two of :meth:`process`: the tags (None: a post that could not be
        tagged) and the name and hash of the ruleset that gave them.

        ``lap``: told when the refresh step ends ("refresh"), then passed to
        :meth:`Tagger.tag_batch` (``monitor bench --stages``)."""
        self.refresh_step(FORCED_STEP_SECONDS)
        if lap is not None:
            lap("refresh")
        tagger = self.tagger  # one ruleset for the whole batch, even if swapped meanwhile
        tagged = tag_isolated(tagger, [(p.text, p.lang, p.hashtags) for p in fresh],
                              [p.id for p in fresh], lap)
        self.refresh.counted(tagger, len(fresh))
        return tagged, tagger.ruleset.name, tagger.ruleset.hash

    def refresh_step(self, budget: float) -> None:
        """Build some of a pending tagger refresh (about ``budget`` seconds), swapping it in
        when done: the runtime calls it while idle (``refresh.pending``)."""
        if (tagger := self.refresh.step(budget)) is not None:
            self._tagger = tagger

    def admit(self, posts: Sequence[Post]) -> tuple[BatchResult, list[Post]]:
        """Step one of :meth:`process`: the batch's duplicates set aside, the rest to tag."""
        result = BatchResult()
        fresh: list[Post] = []
        for post in posts:
            if self._recent.seen(post.id):
                result.duplicates.append(post)
            else:
                fresh.append(post)
        return result, fresh

    def complete(self, result: BatchResult, fresh: Sequence[Post],
                 all_tags: Sequence[Tags | None], ruleset_name: str,
                 ruleset_hash: str) -> BatchResult:
        """The last step of :meth:`process`: tags (None: the post could not be tagged)
        become TaggedPosts, moderated in arrival order."""
        tagged = []
        for post, tags in zip(fresh, all_tags, strict=True):
            if tags is None:
                result.failed.append((post, "tagging_error"))
            else:
                tagged.append(TaggedPost(post, tags, ruleset_name, ruleset_hash, self.version))
        if self.moderator is not None and tagged:
            flags = self.moderator.moderate([t.post for t in tagged], [t.tags for t in tagged])
            for item, extra in zip(tagged, flags, strict=True):
                item.flags = extra
        result.tagged = tagged
        return result


def tag_isolated(tagger: Tagger, items: Sequence[tuple[str, str | None, tuple[str, ...]]],
                 ids: Sequence[str], lap: Callable[[str], None] | None = None,
                 ) -> Sequence[Tags | None]:
    """Tag a batch; if it fails, one by one, so only the post that breaks tagging is lost
    (None in its place). ``lap``: see :meth:`Tagger.tag_batch`."""
    try:
        return tagger.tag_batch(items, lap)
    except Exception:  # isolate the post that broke the batch
        log.exception("tagging a batch of %d failed; retrying one by one", len(items))
    out: list[Tags | None] = []
    for post_id, item in zip(ids, items, strict=True):
        try:
            out.append(tagger.tag_batch([item])[0])
        except Exception as exc:
            log.warning("post %s could not be tagged: %s", post_id, exc)
            out.append(None)
    return out
