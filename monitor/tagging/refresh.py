"""When to swap in a fresh tagger, and building it a step at a time between batches.

spaCy's vocabulary keeps every word it has seen, so a stream's tagger is
replaced by a fresh copy every ``every`` posts (:meth:`Tagger.fresh_steps`).
Built in one go, that copy stalled the stream ~0.45 s (keep4o, before its
phrase matchers were shared: ~0.4 s of blank pipelines and phrase
matchers, then ~0.06 s returning the old one's memory): every post waiting
meanwhile was late, every 50,000 posts. Here it is built a step at a time
(a language's blank pipeline each: English ~0.1 s), while the caller is
idle or a short budget per batch, and swapped in whole once done.

Posts are not the only clock: a lexeme costs ~450 bytes (with the
tokenizer's cache), and a stream of random tokens (spam does this) brings
tens a post, ~430 MiB per 25,000 posts at 40. So a refresh is also due once
the vocabulary has grown by ``max_new_words``, and at twice that the build
finishes at once: a stall of ~0.5 s, instead of tens of thousands of posts
more at 2 ms a batch while the vocabulary goes on growing.

Only the languages whose vocabulary grew by ``min_new_words`` are built
anew (a stream's new words are mostly in one or two of them; keep4o's
English pipeline is about half of the build), and a refresh that would free
less is skipped.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from monitor.memory import release_free_memory

if TYPE_CHECKING:  # not at run time: whoever has a tagger to count has imported spaCy
    from monitor.tagging.compiler import Steps
    from monitor.tagging.tagger import Tagger

__all__ = ["FORCED_STEP_SECONDS", "IDLE_STEP_SECONDS", "MAX_NEW_WORDS", "MIN_NEW_WORDS",
           "Refresh"]

log = logging.getLogger(__name__)

#: build time taken from each batch while a refresh is pending, so it ends on a stream
#: that never leaves the caller idle: ~5% of a batch of 256 posts
FORCED_STEP_SECONDS = 0.002
#: build time taken at once while the caller has nothing else to do
IDLE_STEP_SECONDS = 0.005
#: new lexemes that make a refresh due before ``every`` posts (~22 MiB); the campaign's
#: posts bring ~0.6 a post, 30,000 in 50,000 posts, a firehose's long tail ~1.9
MAX_NEW_WORDS = 50_000
#: a language's pipeline is built anew only if its vocabulary grew by this many (~0.45 MiB)
MIN_NEW_WORDS = 1_000


class Refresh:
    """Counts tagged posts and builds the next fresh tagger when they reach ``every``
    or its vocabulary has grown by ``max_new_words``.

    The caller calls :meth:`counted` after each batch and :meth:`step` when
    it can spare time; :meth:`step` returns the fresh tagger once, to be
    used from the next batch on. ``every=0`` never refreshes.
    """

    def __init__(self, every: int, max_new_words: int = MAX_NEW_WORDS,
                 min_new_words: int | None = None) -> None:
        """``min_new_words``: by default MIN_NEW_WORDS, or ``every`` if fewer (a short period
        is a small stream's or a test's, whose vocabulary grows by a few words a post)."""
        self.every = every
        self.max_new_words = max_new_words
        self.min_new_words = min(MIN_NEW_WORDS, every) if min_new_words is None else min_new_words
        self._since = 0
        #: grown past twice max_new_words: the next step finishes the build
        self._urgent = False
        self._build: Steps[Tagger] | None = None
        #: the languages being built anew
        self._stale: list[str] = []
        self._started = 0.0
        self._built_in = 0.0
        #: the old tagger was handed back: its memory is returned at the next step
        self._release = False

    @property
    def pending(self) -> bool:
        """Whether :meth:`step` has work to do."""
        return self._build is not None or self._release

    def counted(self, tagger: Tagger, posts: int) -> None:
        """``posts`` more were tagged by ``tagger``; start building its fresh copy when due."""
        if not self.every:
            return
        grown = tagger.vocabulary_growth()
        total = sum(grown.values())
        self._since += posts
        if self._build is None and (self._since >= self.every or total >= self.max_new_words):
            self._since = 0
            self._stale = [code for code, n in grown.items() if n >= self.min_new_words]
            if self._stale:  # else nothing worth a build: count again from here
                self._build = tagger.fresh_steps(self._stale)
                self._started, self._built_in = time.perf_counter(), 0.0
        self._urgent = self._build is not None and total >= 2 * self.max_new_words

    def cancel(self) -> None:
        """Forget a build in progress (the rules were reloaded: it would be of the old ones)."""
        self._build = None
        self._since = 0
        self._urgent = False

    def step(self, budget: float) -> Tagger | None:
        """Build for about ``budget`` seconds (at least one step); the fresh tagger once done.

        The caller drops its old tagger then; the step after returns its memory."""
        if self._release:
            self._release = False
            release_free_memory()
            return None
        if self._build is None:
            return None
        if self._urgent:
            budget = float("inf")
        start = time.perf_counter()
        try:
            while True:
                next(self._build)
                if time.perf_counter() - start >= budget:
                    self._built_in += time.perf_counter() - start
                    return None
        except StopIteration as done:
            self._built_in += time.perf_counter() - start
            self._build, self._release = None, True
            log.info("tagger refreshed (bounds spaCy's vocabulary): %s built in %.2f s over "
                     "%.1f s%s", ", ".join(self._stale), self._built_in,
                     time.perf_counter() - self._started,
                     ", at once: the vocabulary grew past twice max_new_words"
                     if self._urgent else "")
            self._urgent = False
            return done.value  # type: ignore[no-any-return]
        except Exception:  # the same rules compiled before: only a changed spaCy could fail
            self._build, self._urgent = None, False
            log.exception("refreshing the tagger failed; the current one goes on")
            return None
