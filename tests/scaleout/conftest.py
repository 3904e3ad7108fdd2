"""The scale-out tests: the runtime tests' small fixture ruleset (the ``tansu`` broker
fixture is in tests/conftest.py)."""

from __future__ import annotations

import pytest

from monitor.tagging import Tagger, load_tagger
from tests.support.monitor_process import RULES


@pytest.fixture(scope="session")
def tagger() -> Tagger:
    return load_tagger(RULES)
