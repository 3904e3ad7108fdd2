"""Rulesets: load and validate YAML, compile to spaCy, tag posts explainably."""

from __future__ import annotations

from pathlib import Path

from monitor.tagging.compiler import CompiledRuleset, compile_ruleset
from monitor.tagging.loader import load_ruleset
from monitor.tagging.ruleset import Problem, Ruleset, RulesetError
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


def default_rules_path() -> Path:
    """The shipped keep4o ruleset, wherever the package was installed from."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_rules" / "keep4o", here.parent / "rules" / "keep4o"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the default ruleset rules/keep4o is not installed; pass --rules DIR")


def load_tagger(path: str | Path | None = None) -> Tagger:
    """Load, validate and compile a ruleset folder (default: the shipped one)."""
    ruleset = load_ruleset(path if path is not None else default_rules_path())
    return Tagger(compile_ruleset(ruleset))
