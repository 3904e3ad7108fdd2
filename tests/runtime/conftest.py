"""A fully wired embedded runtime for tests: real tagger, fresh metrics, real archive.

The ruleset is the small fixture in ``tests/runtime/rules/`` (not the shipped
keep4o, which is still being tuned). Every test gets a fresh metrics registry
and its own archive folder, so values read back belong to that test alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.model import Post
from monitor.privacy import Pseudonymizer
from monitor.processor import Processor
from monitor.sinks.archive import ArchiveWriter
from monitor.sinks.metrics import Metrics
from monitor.tagging import Tagger, load_tagger

RULES = Path(__file__).parent / "rules"
REPLAY_DATA = Path(__file__).parents[1] / "data" / "replay"
#: A fixed pseudonym key, so archived authors are reproducible across runs.
KEY = b"runtime-tests-pseudonym-key-0001"
#: Event time of the posts the tests build (a UTC noon, far from midnight).
NOON = datetime(2025, 8, 13, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def tagger() -> Tagger:
    """The fixture ruleset, compiled once for the whole session (tagging is pure)."""
    return load_tagger(RULES)


class BreaksOn(Tagger):
    """The real tagger, except that any batch holding the text ``bad`` raises.

    Stands in for a tagger bug (a spaCy crash on odd input, say); it records
    the size of every batch it was given in ``calls``.
    """

    def __init__(self, inner: Tagger, bad: str) -> None:
        super().__init__(inner.compiled)
        self.bad = bad
        self.calls: list[int] = []

    def tag_batch(self, items, lap=None):  # type: ignore[no-untyped-def]
        self.calls.append(len(items))
        if any(text == self.bad for text, _, _ in items):
            raise RuntimeError(f"cannot tag {self.bad!r}")
        return super().tag_batch(items, lap)


@pytest.fixture
def tagger_breaking_on(tagger: Tagger) -> Callable[[str], BreaksOn]:
    """``tagger_breaking_on(text)``: the fixture tagger, failing on that one text."""
    return lambda bad: BreaksOn(tagger, bad)


@pytest.fixture
def metrics(tagger: Tagger) -> Metrics:
    """Metrics on a fresh registry."""
    return Metrics(tagger.ruleset)


@pytest.fixture
def processor(tagger: Tagger) -> Processor:
    return Processor(tagger)


@pytest.fixture
def archive_dir(tmp_path: Path) -> Path:
    return tmp_path / "archive"


@pytest.fixture
def archive(archive_dir: Path) -> Iterator[ArchiveWriter]:
    """A real archive writer; closed at teardown if the test did not (close is idempotent)."""
    writer = ArchiveWriter(archive_dir, pseudonymizer=Pseudonymizer(KEY))
    yield writer
    writer.close()


@pytest.fixture
def sample() -> Callable[..., float]:
    """``sample(metrics, name, **labels)``: a sample's value, 0.0 when the series is absent."""

    def read(metrics: Metrics, name: str, **labels: str) -> float:
        value = metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    return read


@pytest.fixture
def make_posts() -> Callable[..., list[Post]]:
    """``make_posts(n, text=..., prefix=...)``: n distinct posts one second apart."""

    def make(n: int, *, text: str = "I miss 4o every day #keep4o", prefix: str = "post",
             source: str = "replay") -> list[Post]:
        return [Post(id=f"{prefix}-{i}", source=source, text=text,
                     created_at=NOON + timedelta(seconds=i), author=f"author-{i % 7}",
                     lang="en", hashtags=("keep4o",)) for i in range(n)]

    return make


def _too_large_line() -> bytes:
    """A well-formed post of about 300 KB: over the 256 KiB record limit."""
    record = {"id": "zzpostid-huge", "text": "4o " * 100_000,
              "created_at": "2025-08-13T10:00:04Z"}
    return json.dumps(record).encode() + b"\n"


@pytest.fixture
def mixed_replay(tmp_path: Path) -> Path:
    """tests/data/replay/mixed.jsonl with an over-256-KiB line inserted after line 8."""
    lines = (REPLAY_DATA / "mixed.jsonl").read_bytes().splitlines(keepends=True)
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"".join([*lines[:8], _too_large_line(), *lines[8:]]))
    return path


@pytest.fixture(scope="session")
def mixed_expected() -> dict[str, Any]:
    """What replaying the mixed file must give (ids, rejections by reason, languages)."""
    return json.loads((REPLAY_DATA / "mixed.expected.json").read_text(encoding="utf-8"))
