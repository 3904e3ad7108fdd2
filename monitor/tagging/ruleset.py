"""What a ruleset is, once read: plain, typed, validated data.

:func:`monitor.tagging.loader.load_ruleset` builds these from YAML; the
compiler turns them into spaCy matchers. Nothing here knows about spaCy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from monitor.moderation.config import ModerationConfig

__all__ = [
    "MATCHER_KINDS",
    "Campaign",
    "Example",
    "Label",
    "LanguageConfig",
    "LayerScoring",
    "Problem",
    "Rule",
    "Ruleset",
    "RulesetError",
    "Where",
]

#: The ways a rule can find evidence; exactly one per rule.
MATCHER_KINDS: tuple[str, ...] = (
    "phrases", "lemmas", "tokens", "regex", "hashtags", "relevance_below",
)


@dataclass(frozen=True, slots=True)
class Where:
    """A place in a rules file, for messages a rule author can act on."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a ruleset: where, what, and how to fix it."""

    where: Where
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class RulesetError(Exception):
    """A ruleset that cannot be used; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(slots=True)
class Rule:
    """One piece of evidence for (or, in ``exclude``, against) a label."""

    id: str
    label: str
    layer: str
    kind: str
    values: tuple[object, ...]
    where: Where
    value_lines: tuple[int, ...] = ()
    weight: float = 1.0
    languages: tuple[str, ...] | None = None
    mode: str = "active"
    negation: bool = True
    quoted: str = "keep"
    severity: str | None = None
    exclusion: bool = False
    #: line of the rule's ``languages`` key, for messages about it
    languages_line: int = 0

    @property
    def shadow(self) -> bool:
        return self.mode == "shadow"

    def applies_to(self, lang: str) -> bool:
        return self.languages is None or lang in self.languages


@dataclass(slots=True)
class Example:
    """A text a label's author says must (or must not) get the label."""

    text: str
    lang: str | None
    where: Where


@dataclass(slots=True)
class Label:
    id: str
    layer: str
    description: str
    where: Where
    mode: str = "active"
    threshold: float | None = None
    severity: str | None = None
    rules: list[Rule] = field(default_factory=list)
    exclude: list[Rule] = field(default_factory=list)
    match: list[Example] = field(default_factory=list)
    no_match: list[Example] = field(default_factory=list)

    @property
    def shadow(self) -> bool:
        return self.mode == "shadow"


@dataclass(slots=True)
class LanguageConfig:
    code: str
    negations: frozenset[str] = frozenset()
    negation_window: int = 3
    tokenizer: str = "spacy"


@dataclass(slots=True)
class LayerScoring:
    threshold: float = 2.0
    max: int | None = None
    order: tuple[str, ...] = ()


@dataclass(slots=True)
class Campaign:
    hashtags: frozenset[str] = frozenset()
    terms: tuple[str, ...] = ()
    trusted_domains: tuple[str, ...] = ()
    relevance: dict[str, float] = field(
        default_factory=lambda: {"label": 0.5, "term": 0.3, "hashtag": 0.2}
    )


@dataclass(slots=True)
class Ruleset:
    """A whole validated ruleset: the unit that is hashed, compiled and swapped."""

    name: str
    path: Path
    hash: str
    description: str = ""
    campaign: Campaign = field(default_factory=Campaign)
    languages: dict[str, LanguageConfig] = field(default_factory=dict)
    scoring: dict[str, LayerScoring] = field(default_factory=dict)
    labels: dict[str, Label] = field(default_factory=dict)
    moderation: ModerationConfig = field(default_factory=ModerationConfig)

    def all_rules(self) -> list[Rule]:
        """Every rule, exclusions included, in file order."""
        return [r for label in self.labels.values() for r in (*label.rules, *label.exclude)]

    def labels_of(self, layer: str) -> list[Label]:
        return [label for label in self.labels.values() if label.layer == layer]

    def threshold(self, label: Label) -> float:
        return label.threshold if label.threshold is not None else self.scoring[label.layer].threshold
