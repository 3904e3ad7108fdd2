"""Fixtures any test may use. Keep this file small and generic; fixtures for
one part of the code live next to its tests (e.g. tests/tagging/conftest.py).

Golden files: tests compare output with checked-in JSON through the ``golden``
fixture. After an intended change, regenerate them and review the diff:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests -q
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.model import Post
from tests.support.tansu import Tansu

#: Set UPDATE_GOLDEN=1 to rewrite golden files instead of comparing with them.
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"

#: A fixed, timezone-aware instant for posts built in tests.
T0 = datetime(2025, 8, 8, 12, 0, tzinfo=UTC)


@pytest.fixture
def make_post() -> Callable[..., Post]:
    """Build a Post with test defaults; any field can be given by keyword."""

    def make(text: str = "I miss 4o", **fields: Any) -> Post:
        fields.setdefault("id", "test:1")
        fields.setdefault("source", "test")
        fields.setdefault("created_at", T0)
        return Post(text=text, **fields)

    return make


@pytest.fixture
def golden() -> Callable[[Path, Any], None]:
    """Assert that a JSON-able value equals a golden file (rewritten when UPDATE_GOLDEN=1)."""

    def check(path: Path, actual: Any) -> None:
        text = json.dumps(actual, ensure_ascii=False, indent=2) + "\n"
        if UPDATE_GOLDEN:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        assert path.exists(), f"{path} is missing; create it with UPDATE_GOLDEN=1"
        expected = json.loads(path.read_text(encoding="utf-8"))
        assert json.loads(text) == expected, (
            f"output differs from {path}; if the change is intended, rerun with UPDATE_GOLDEN=1 "
            "and review the diff")

    return check


@pytest.fixture
def tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tansu]:
    """A fresh Kafka-protocol broker on loopback for one test (scale-out and its kill test)."""
    broker = Tansu(tmp_path_factory.mktemp("tansu"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
