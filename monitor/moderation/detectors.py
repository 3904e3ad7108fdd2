"""The built-in stateful detectors, each a small function listed once in DETECTORS.

A detector looks at one post (with its tags and the shared windowed state)
and returns a Flag or None: an effect, never a mutation of the post. The
:class:`monitor.moderation.moderator.Moderator` applies the effects.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from monitor.model import Flag, Post, Tags
from monitor.moderation.config import ModerationConfig
from monitor.moderation.neardup import NearDuplicateIndex
from monitor.moderation.window import MemoryWindow
from monitor.textutil import domain_of, extract_hashtags, extract_links

__all__ = ["DETECTORS", "Detector", "ModerationState", "Observed", "registrable_domain"]

_MULTI_PART_SUFFIXES = frozenset({"co", "com", "org", "net", "ac", "gov", "edu", "ne", "or"})


def registrable_domain(host: str) -> str:
    """'get.4o-back.app' -> '4o-back.app'; 'news.bbc.co.uk' -> 'bbc.co.uk' (good enough here)."""
    parts = host.split(".")
    if len(parts) >= 3 and len(parts[-1]) == 2 and parts[-2] in _MULTI_PART_SUFFIXES:
        return ".".join(parts[-3:])
    return ".".join(parts[-2:])


@dataclass(slots=True)
class ModerationState:
    """All windowed state of the detectors; bounded by the config, driven by event time."""

    config: ModerationConfig
    trusted: frozenset[str]
    near_duplicates: NearDuplicateIndex
    domains: MemoryWindow
    authors: MemoryWindow
    salt: bytes
    #: the last (author, key): each post's author is asked for by two detectors in a row
    last_author: tuple[str, str] = ("", "")

    @classmethod
    def create(cls, config: ModerationConfig, trusted: frozenset[str], salt: bytes) -> ModerationState:
        return cls(
            config=config,
            trusted=trusted,
            near_duplicates=NearDuplicateIndex(
                config.window_seconds, min_jaccard=config.near_duplicate_min_jaccard,
                max_clusters=config.max_clusters, max_singletons=config.max_singletons,
                min_words=config.near_duplicate_min_words),
            domains=MemoryWindow(config.window_seconds, max_keys=config.max_domains,
                                 max_events=max(config.link_promotion_min_posts * 4, 100)),
            authors=MemoryWindow(config.author_burst_seconds, max_keys=config.max_authors,
                                 max_events=config.author_burst_max_posts + 1),
            salt=salt,
        )

    def is_trusted(self, domain: str) -> bool:
        """The domain or one it is under is trusted (``news.bbc.co.uk`` under ``bbc.co.uk``).

        Looks up each dot suffix instead of scanning the trusted list: a
        post's links cost a few set lookups, however long the list."""
        trusted = self.trusted
        if domain in trusted:
            return True
        dot = domain.find(".")
        while dot >= 0:
            if domain[dot + 1:] in trusted:
                return True
            dot = domain.find(".", dot + 1)
        return False

    def author_key(self, author: str | None) -> str | None:
        """The author as the windows keep it: salted and hashed, never the handle."""
        if not author:
            return None
        last, key = self.last_author
        if author != last:
            key = hashlib.blake2b(author.encode(), key=self.salt, digest_size=8).hexdigest()
            self.last_author = (author, key)
        return key

    def promoted_domains(self, links: tuple[str, ...]) -> list[str]:
        """The untrusted registrable domains a post links to, sorted (a stable replay order)."""
        hosts = {domain_of(u) for u in links}
        return sorted({registrable_domain(h) for h in hosts if h and not self.is_trusted(h)})

    def memory_bytes(self) -> dict[str, int]:
        return {"near_duplicates": self.near_duplicates.memory_bytes(),
                "domains": self.domains.memory_bytes(), "authors": self.authors.memory_bytes()}


@dataclass(slots=True)
class Observed:
    """One post as the detectors see it, with what the batch precomputed."""

    post: Post
    tags: Tags
    now: float
    links: tuple[str, ...]
    hashtags: tuple[str, ...]
    signature: np.ndarray | None


Detector = Callable[[ModerationState, Observed], Flag | None]


def _content_spam(item: Observed) -> bool:
    return any(f.kind == "spam" for f in item.tags.flags)


def _on_campaign(item: Observed) -> bool:
    """About the campaign: a theme, claim or reason, or its hashtag and core terms together
    (a slogan like "4o mattered. Our voices matter. #keep4o" carries no theme)."""
    tags = item.tags
    return bool(tags.themes or tags.claim or tags.reasons) or tags.relevance >= 0.5


def near_duplicate(state: ModerationState, item: Observed) -> Flag | None:
    """The same text, give or take links, mentions and emoji, posted many times in the window."""
    config = state.config
    posts, authors = state.near_duplicates.observe(item.post.text,
                                                   state.author_key(item.post.author), item.now,
                                                   item.signature)
    if posts < config.near_duplicate_min_posts:
        return None
    # Coordinated on-topic posting ("Day 100 without 4o #keep4o") is collective action,
    # not spam: a cluster is a flood when it promotes (an untrusted link, or a content
    # spam rule agrees) or, when very large, when it is not about the campaign at all.
    promotes = _content_spam(item) or any(not state.is_trusted(domain_of(u)) for u in item.links)
    if not promotes and (posts < config.near_duplicate_large_cluster or _on_campaign(item)):
        return None
    return Flag("spam", "medium", "moderation.near_duplicate",
                item.post.text[:120], {"cluster_size": posts, "authors": authors})


def link_promotion(state: ModerationState, item: Observed) -> Flag | None:
    """One untrusted domain pushed by many posts in the window."""
    worst, worst_count = "", 0
    for domain in state.promoted_domains(item.links):
        count = state.domains.add(domain, item.now)
        if count > worst_count:
            worst, worst_count = domain, count
    if worst_count < state.config.link_promotion_min_posts:
        return None
    if _on_campaign(item) and not _content_spam(item):
        return None  # people sharing an article about the campaign are not promoting it
    return Flag("spam", "medium", "moderation.link_promotion", worst,
                {"domain": worst, "posts": worst_count})


def author_burst(state: ModerationState, item: Observed) -> Flag | None:
    """One author posting faster than the configured rate (the author is hashed)."""
    key = state.author_key(item.post.author)
    if key is None:
        return None
    count = state.authors.add(key, item.now)
    if count <= state.config.author_burst_max_posts:
        return None
    return Flag("spam", "low", "moderation.author_burst", "",
                {"posts": count, "seconds": state.config.author_burst_seconds})


def hashtag_stuffing(state: ModerationState, item: Observed) -> Flag | None:
    """Many hashtags, little text."""
    config = state.config
    if len(item.hashtags) < config.hashtag_stuffing_min_hashtags:
        return None
    words = [w for w in item.post.text.split()
             if not w.startswith(("#", "＃", "@", "http")) and any(c.isalpha() for c in w)]
    if len(words) > config.hashtag_stuffing_max_words:
        return None
    return Flag("spam", "low", "moderation.hashtag_stuffing", "",
                {"hashtags": len(item.hashtags), "words": len(words)})


#: Every built-in detector, in the order they run.
DETECTORS: tuple[Detector, ...] = (near_duplicate, link_promotion, author_burst, hashtag_stuffing)


def observed(post: Post, tags: Tags, signature: np.ndarray | None) -> Observed:
    """Precompute what several detectors need once per post."""
    links = post.links or extract_links(post.text)
    hashtags = tuple(dict.fromkeys((*(h.lower() for h in post.hashtags),
                                    *extract_hashtags(post.text))))
    return Observed(post, tags, post.created_at.timestamp(), links, hashtags, signature)
