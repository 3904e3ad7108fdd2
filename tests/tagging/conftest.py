"""Fixtures for the tagging tests: small YAML rulesets in ./rulesets, compiled once.

- ``minimal/``: one file, one label, English by default.
- ``demo/``: every feature of the rule language, in a miniature #keep4o codebook.
- ``shadow/``: a shadow rule on an active label, and a shadow label.
- ``broken/``: a mistake on (almost) every line; the loader must find them all.
- ``bad_patterns/``: loads, but the compiler refuses its patterns.
- ``failing_examples/``: valid rules whose own examples disagree with them.
- ``redos/``: regexes that would hang a backtracking engine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.tagging import Tagger, load_tagger

RULESETS = Path(__file__).parent / "rulesets"


@pytest.fixture(scope="session")
def rulesets() -> Path:
    """The folder holding the fixture rulesets."""
    return RULESETS


@pytest.fixture(scope="session")
def shipped_tagger() -> Tagger:
    """The shipped keep4o rules (rules/keep4o)."""
    return load_tagger()


@pytest.fixture(scope="session")
def demo_tagger() -> Tagger:
    return load_tagger(RULESETS / "demo")


@pytest.fixture(scope="session")
def minimal_tagger() -> Tagger:
    return load_tagger(RULESETS / "minimal")


@pytest.fixture(scope="session")
def shadow_tagger() -> Tagger:
    return load_tagger(RULESETS / "shadow")
