"""The bench's synthetic posts: valid replay records, deterministic, with the vocabulary asked for."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import orjson
import pytest

from monitor.bench.synth import write_jsonl
from monitor.codec import post_from_mapping


def _posts(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize("vocabulary", ["campaign", "open"])
def test_every_record_is_a_post_and_a_seed_gives_the_same_file(tmp_path: Path,
                                                              vocabulary: str) -> None:
    first, again = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_jsonl(str(first), 2_000, vocabulary=vocabulary)
    write_jsonl(str(again), 2_000, vocabulary=vocabulary)
    assert first.read_bytes() == again.read_bytes()
    records = _posts(first)
    assert len(records) == 2_000
    posts = [post_from_mapping(r) for r in records]
    assert len({p.id for p in posts}) == 2_000
    assert all(a.created_at <= b.created_at for a, b in pairwise(posts))


def test_the_open_vocabulary_has_the_long_tail_the_campaign_lacks(tmp_path: Path) -> None:
    campaign, open_ = tmp_path / "campaign.jsonl", tmp_path / "open.jsonl"
    write_jsonl(str(campaign), 5_000)
    write_jsonl(str(open_), 5_000, vocabulary="open")

    def distinct(path: Path, field: str) -> int:
        if field == "words":
            return len({w.lower() for r in _posts(path) for w in str(r["text"]).split()
                        if w.isalpha()})
        return len({r[field] for r in _posts(path)})

    assert distinct(open_, "words") > 10 * distinct(campaign, "words")
    assert distinct(open_, "author") > 4_900 > distinct(campaign, "author")


def test_an_unknown_vocabulary_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="vocabulary 'tiny': one of campaign, open"):
        write_jsonl(str(tmp_path / "x.jsonl"), 10, vocabulary="tiny")
