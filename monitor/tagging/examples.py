"""Run every label's own examples: the unit tests rule authors write in YAML."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.tagging.ruleset import Example, Label
from monitor.tagging.tagger import Explanation, Tagger

__all__ = ["ExampleFailure", "run_examples"]


@dataclass(slots=True)
class ExampleFailure:
    """An example that did not behave as its label says it should."""

    label: Label
    example: Example
    expected: bool
    explanation: Explanation

    def describe(self) -> str:
        """Why it failed, with the rules that fired or were dropped, for the author."""
        d = self.explanation.decisions.get(self.label.id)
        verb = "should get" if self.expected else "should not get"
        lines = [f"{self.example.where}: {verb} '{self.label.id}': {self.example.text!r}"]
        if d is None:
            lines.append("    no rule of this label fired")
        else:
            lines.append(f"    score {d.score:g} (threshold {d.threshold:g})"
                         + (f", shadow score {d.shadow_score:g}" if d.shadow_rules else ""))
            if d.rules or d.shadow_rules:
                lines.append(f"    fired: {', '.join(d.rules + d.shadow_rules)}")
            if d.excluded_by:
                lines.append(f"    excluded by: {d.excluded_by}")
        dropped = [h for h in self.explanation.hits
                   if h.dropped and h.rule.label == self.label.id]
        for hit in dropped:
            lines.append(f"    dropped ({hit.dropped}): {hit.rule.id} on {hit.evidence!r}")
        return "\n".join(lines)


def _given(label: Label, explanation: Explanation) -> bool:
    """Given, or for a shadow label/rule would be given; the layer's cap is ignored."""
    d = explanation.decisions.get(label.id)
    return d is not None and (d.passes or d.shadow_passes)


def run_examples(tagger: Tagger) -> tuple[int, list[ExampleFailure]]:
    """(examples run, failures) over every label of the tagger's ruleset."""
    failures: list[ExampleFailure] = []
    count = 0
    for label in tagger.ruleset.labels.values():
        for expected, examples in ((True, label.match), (False, label.no_match)):
            for example in examples:
                count += 1
                explanation = tagger.explain(example.text, example.lang)
                if _given(label, explanation) != expected:
                    failures.append(ExampleFailure(label, example, expected, explanation))
    return count, failures
