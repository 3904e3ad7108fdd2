"""Fixtures for the stateful moderation detectors: posts on an explicit clock, tags, moderators.

The detectors run on event time (each post's ``created_at``), so every test
places its posts on a timeline with ``at=`` seconds after a fixed instant and
never sleeps. Tags are built directly (what the content rules would have
said), or come from the real tagger on the shipped ruleset for an
integration flavour (``shipped_tagger``, compiled once per session).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from monitor.model import Flag, LabelScore, Post, Tags
from monitor.moderation.config import ModerationConfig
from monitor.moderation.moderator import Moderator
from monitor.tagging import Ruleset, Tagger, default_rules_path, load_ruleset, load_tagger

HERE = Path(__file__).parent
#: A small ruleset whose ``moderation:`` section overrides every default it can.
RULES = HERE / "rules"
#: Where every test's timeline starts: a UTC noon.
T0 = datetime(2026, 2, 21, 12, 0, tzinfo=UTC)
#: A fixed salt, so hashed authors are reproducible within a test.
SALT = b"moderation-tests"

#: What the content rules say about a post on the campaign's topics (a theme).
ON_CAMPAIGN = Tags("en", themes=(LabelScore("collective_action", 2.0, ("ca.petition",)),),
                   relevance=1.0)
#: What they say about a post with no theme, claim or reason.
OFF_CAMPAIGN = Tags("en", relevance=0.2)
#: What they say about a post a content spam rule already flagged.
CONTENT_SPAM = Tags("en", flags=(Flag("spam", "low", "spam.referral", "?ref="),))


@pytest.fixture
def post() -> Callable[..., Post]:
    """``post(text, at=seconds, author=..., **fields)``: a Post at T0 + ``at`` seconds."""
    serial = count(1)

    def make(text: str, *, at: float = 0.0, author: str | None = "someone", **fields: Any) -> Post:
        fields.setdefault("id", f"test:{next(serial)}")
        fields.setdefault("source", "bluesky")
        return Post(text=text, created_at=T0 + timedelta(seconds=at), author=author, **fields)

    return make


@pytest.fixture
def moderator() -> Callable[..., Moderator]:
    """``moderator(**config_overrides)``: a Moderator with the default config but what is given."""

    def make(*, trusted_domains: tuple[str, ...] = (), **overrides: Any) -> Moderator:
        return Moderator(ModerationConfig(**overrides), trusted_domains, salt=SALT)

    return make


@pytest.fixture
def moderate() -> Callable[..., list[tuple[Flag, ...]]]:
    """``moderate(moderator, posts, tags=OFF_CAMPAIGN)``: each post's stateful flags, one batch.

    ``tags`` is one Tags for every post or a list, one per post.
    """

    def run(moderator: Moderator, posts: list[Post],
            tags: Tags | list[Tags] = OFF_CAMPAIGN) -> list[tuple[Flag, ...]]:
        per_post = tags if isinstance(tags, list) else [tags] * len(posts)
        return moderator.moderate(posts, per_post)

    return run


@pytest.fixture(scope="session")
def shipped_ruleset() -> Ruleset:
    """The shipped keep4o ruleset, loaded (not compiled): its moderation config and domains."""
    return load_ruleset(default_rules_path())


@pytest.fixture(scope="session")
def shipped_tagger() -> Iterator[Tagger]:
    """The real tagger on the shipped ruleset, compiled once (a few seconds)."""
    yield load_tagger()
