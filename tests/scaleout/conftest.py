"""The scale-out tests: the runtime tests' small fixture ruleset, a Tansu broker per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from monitor.tagging import Tagger, load_tagger
from tests.support.monitor_process import RULES
from tests.support.tansu import Tansu


@pytest.fixture(scope="session")
def tagger() -> Tagger:
    return load_tagger(RULES)


@pytest.fixture
def tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tansu]:
    """A fresh Kafka-protocol broker on loopback for one test."""
    broker = Tansu(tmp_path_factory.mktemp("tansu"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
