"""Rulesets: load and validate YAML, compile to spaCy, tag posts explainably.

Loading and validating need no spaCy; compiling and tagging do. The names
that need it are imported when first used (:func:`__getattr__`), so a
process that only reads rulesets (the event loop's, when a second process
tags) does not carry spaCy's ~77 MiB.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.tagging.loader import load_ruleset
from monitor.tagging.ruleset import Problem, Ruleset, RulesetError

if TYPE_CHECKING:
    from monitor.tagging.compiler import CompiledRuleset, compile_ruleset
    from monitor.tagging.tagger import Explanation, Tagger

__all__ = [
    "CompiledRuleset",
    "Explanation",
    "Problem",
    "Ruleset",
    "RulesetError",
    "Tagger",
    "compile_ruleset",
    "default_rules_path",
    "load_ruleset",
    "load_tagger",
]

#: the names that import spaCy, and the module each lives in
_SPACY_NAMES = {
    "CompiledRuleset": "monitor.tagging.compiler",
    "compile_ruleset": "monitor.tagging.compiler",
    "Explanation": "monitor.tagging.tagger",
    "Tagger": "monitor.tagging.tagger",
}


def __getattr__(name: str) -> Any:
    if (module := _SPACY_NAMES.get(name)) is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def default_rules_path() -> Path:
    """The shipped keep4o ruleset, wherever the package was installed from."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_rules" / "keep4o", here.parent / "rules" / "keep4o"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the default ruleset rules/keep4o is not installed; pass --rules DIR")


def load_tagger(path: str | Path | None = None) -> Tagger:
    """Load, validate and compile a ruleset folder (default: the shipped one)."""
    from monitor.tagging.compiler import compile_ruleset
    from monitor.tagging.tagger import Tagger

    ruleset = load_ruleset(path if path is not None else default_rules_path())
    return Tagger(compile_ruleset(ruleset))
