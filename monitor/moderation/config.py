"""Thresholds and memory bounds of the stateful detectors: one typed place for defaults.

A ruleset's ``moderation:`` section overrides them (rules/README.md), so
each campaign tunes its own floods and promotions.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

__all__ = ["DEFAULT_TRUSTED_DOMAINS", "SECTIONS", "ModerationConfig"]

#: Big platforms and reference sites: linking them is not promotion.
DEFAULT_TRUSTED_DOMAINS: tuple[str, ...] = (
    "x.com", "twitter.com", "bsky.app", "bsky.social", "reddit.com", "redd.it",
    "mastodon.social", "youtube.com", "youtu.be", "instagram.com", "tiktok.com",
    "threads.net", "wikipedia.org", "github.com", "openai.com", "archive.org",
    "medium.com", "substack.com", "imgur.com", "google.com",
    # the community shares its conversations and petitions through these
    "chatgpt.com", "chat.openai.com", "chng.it", "change.org",
)


@dataclass(slots=True)
class ModerationConfig:
    """Every detector's threshold and every structure's bound."""

    enabled: bool = True
    #: seconds a flood, a promotion or a burst is counted over
    window_seconds: float = 600.0
    # near-duplicate floods
    near_duplicate_min_posts: int = 8
    near_duplicate_min_jaccard: float = 0.6
    near_duplicate_min_words: int = 4
    #: a cluster this large is flagged even without a link or mention in it
    near_duplicate_large_cluster: int = 50
    max_clusters: int = 5_000
    max_singletons: int = 20_000
    # link promotion
    link_promotion_min_posts: int = 20
    max_domains: int = 10_000
    trusted_domains: tuple[str, ...] = field(default=DEFAULT_TRUSTED_DOMAINS)
    # per-author bursts
    author_burst_max_posts: int = 10
    author_burst_seconds: float = 60.0
    max_authors: int = 50_000
    # hashtag stuffing
    hashtag_stuffing_min_hashtags: int = 8
    hashtag_stuffing_max_words: int = 6


#: YAML section -> {key: ModerationConfig field}, for the loader and the docs.
SECTIONS: dict[str, dict[str, str]] = {
    "": {"enabled": "enabled", "window": "window_seconds"},
    "near_duplicate": {"min_posts": "near_duplicate_min_posts",
                       "min_jaccard": "near_duplicate_min_jaccard",
                       "min_words": "near_duplicate_min_words",
                       "large_cluster": "near_duplicate_large_cluster",
                       "max_clusters": "max_clusters", "max_singletons": "max_singletons"},
    "link_promotion": {"min_posts": "link_promotion_min_posts", "max_domains": "max_domains"},
    "author_burst": {"max_posts": "author_burst_max_posts", "seconds": "author_burst_seconds",
                     "max_authors": "max_authors"},
    "hashtag_stuffing": {"min_hashtags": "hashtag_stuffing_min_hashtags",
                         "max_words": "hashtag_stuffing_max_words"},
}

_FIELD_TYPES = {f.name: f.type for f in fields(ModerationConfig)}
