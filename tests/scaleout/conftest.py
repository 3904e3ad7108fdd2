"""The scale-out tests share the runtime tests' small fixture ruleset, compiled once."""

from __future__ import annotations

import pytest

from monitor.tagging import Tagger, load_tagger
from tests.support.monitor_process import RULES


@pytest.fixture(scope="session")
def tagger() -> Tagger:
    return load_tagger(RULES)
