"""What a Moderator remembers of each post, and its windows rebuilt by replaying that.

The scale-out worker keeps these records in a changelog-backed table so the
worker taking a partition over after a crash goes on with the same windows:
a flood split by the crash is flagged after it exactly as without it.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import timedelta

import numpy as np
import pytest

from monitor.model import Flag, Post
from monitor.moderation.moderator import Moderator
from monitor.moderation.remembered import Remembered
from tests.moderation.conftest import OFF_CAMPAIGN
from tests.moderation.synth import replay, to_posts

BATCH = 64


@pytest.fixture(scope="module")
def stream() -> tuple[list[Post], frozenset[str]]:
    """3,000 ordinary posts over six hours, a 120-post flood 2 h 40 in."""
    made = replay(3_000, 120, flood_after=timedelta(hours=2, minutes=40))
    return to_posts(made.records), made.flood_ids


def run(moderator: Moderator, posts: list[Post],
        remember: list[Remembered] | None = None) -> list[tuple[Flag, ...]]:
    out: list[tuple[Flag, ...]] = []
    for i in range(0, len(posts), BATCH):
        batch = posts[i:i + BATCH]
        out += moderator.moderate(batch, [OFF_CAMPAIGN] * len(batch), remember)
    return out


def middle_of_the_flood(posts: list[Post], flood: frozenset[str]) -> int:
    return [i for i, p in enumerate(posts) if p.id in flood][40]


def test_a_flood_split_by_a_crash_is_flagged_after_replay_as_without_it(
        stream: tuple[list[Post], frozenset[str]], moderator: Callable[..., Moderator]) -> None:
    posts, flood = stream
    crash = middle_of_the_flood(posts, flood)
    uninterrupted = run(moderator(), posts)

    remembered: list[Remembered] = []
    run(moderator(), posts[:crash], remembered)
    assert len(remembered) == crash
    restored = moderator()
    assert restored.replay(Remembered.from_json(r.to_json()) for r in remembered) == crash
    after = run(restored, posts[crash:])
    assert after == uninterrupted[crash:]

    flood_after = [i for i, p in enumerate(posts[crash:]) if p.id in flood]
    flagged = sum(1 for i in flood_after if after[i])
    assert flagged == len(flood_after) == 80
    # Without the replay the windows start empty and the flood's next posts pass.
    empty = run(moderator(), posts[crash:])
    assert sum(1 for i in flood_after if empty[i]) < flagged - 5


def test_a_record_holds_no_text_and_no_handle(post: Callable[..., Post],
                                              moderator: Callable[..., Moderator]) -> None:
    item = post("Get GPT-4o back at https://gpt4o-back.app/?ref=x1 unlimited #keep4o",
                author="maria")
    remembered: list[Remembered] = []
    moderator().moderate([item], [OFF_CAMPAIGN], remembered)
    (record,) = remembered
    raw = record.to_json()
    assert b"maria" not in raw and b"unlimited" not in raw
    assert record.domains == ("gpt4o-back.app",) and record.signature is not None
    assert len(raw) < 400
    back = Remembered.from_json(raw)
    assert back.time == record.time and back.author == record.author
    assert back.signature is not None and np.array_equal(back.signature, record.signature)


def test_too_short_a_text_is_remembered_without_signature(
        post: Callable[..., Post], moderator: Callable[..., Moderator]) -> None:
    remembered: list[Remembered] = []
    moderator().moderate([post("hi")], [OFF_CAMPAIGN], remembered)
    assert remembered[0].signature is None
    assert Remembered.from_json(remembered[0].to_json()).signature is None


@pytest.mark.parametrize("raw", [
    pickle.dumps({"t": 1.0, "a": None, "d": [], "s": None}),
    b'{"t": "soon", "a": null, "d": [], "s": null}',
    b'{"t": 1.0, "a": 7, "d": [], "s": null}',
    b'{"t": 1.0, "a": null, "d": [1], "s": null}',
    b'{"t": 1.0, "a": null, "d": []}',
    b'{"t": 1.0, "a": null, "d": [], "s": "not base64!"}',
    b'{"t": 1.0, "a": null, "d": [], "s": "AAAA"}',
    b"[1, 2]",
])
def test_anything_but_a_record_is_refused(raw: bytes) -> None:
    with pytest.raises(ValueError, match=r"record|signature"):
        Remembered.from_json(raw)


def test_replay_is_a_no_op_when_moderation_is_off(moderator: Callable[..., Moderator]) -> None:
    record = Remembered(0.0, "ab", ("x.app",), None)
    off = moderator(enabled=False)
    assert off.replay([record]) == 0 and len(off.state.domains) == 0
