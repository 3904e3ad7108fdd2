"""Every PromQL expression the checked-in dashboards run, and how to make it runnable.

Shared by the static tests (schema, docs) and the end-to-end test (a real
Prometheus evaluates each one). Grafana would substitute the template
variables and the interval macros; :func:`substitute` does the same.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]
DASHBOARDS = ROOT / "grafana" / "dashboards"
#: The macros Grafana fills in, and the values the tests use.
MACROS = {"$__rate_interval": "30s", "$__interval": "30s", "$__range": "5m"}
_METRIC = re.compile(r"\b(social_[a-z_]+|ALERTS)\b")
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class PanelQuery:
    """One target of one panel (or one annotation) of one dashboard."""

    dashboard: str
    panel: str
    ref: str
    expr: str
    instant: bool

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.dashboard, self.panel, self.ref)

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref}: {self.expr}"


def load_dashboards() -> dict[str, dict[str, Any]]:
    """uid -> the checked-in dashboard JSON."""
    boards = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARDS.glob("*.json"))]
    return {b["uid"]: b for b in boards}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included, rows themselves excluded."""
    out: list[dict[str, Any]] = []
    for panel in board["panels"]:
        if panel["type"] == "row":
            out.extend(panel.get("panels", []))
        else:
            out.append(panel)
    return out


def panel_queries(boards: dict[str, dict[str, Any]]) -> list[PanelQuery]:
    """Every panel target and every annotation expression of every dashboard."""
    found: list[PanelQuery] = []
    for uid, board in boards.items():
        for panel in panels(board):
            for target in panel.get("targets", []):
                found.append(PanelQuery(uid, panel["title"], target["refId"], target["expr"],
                                        bool(target.get("instant"))))
        for annotation in board.get("annotations", {}).get("list", []):
            if annotation.get("expr"):
                found.append(PanelQuery(uid, f"annotation: {annotation['name']}", "-",
                                        annotation["expr"], False))
    return found


def substitute(expr: str, variables: dict[str, str]) -> str:
    """The expression as Grafana would send it: macros and template variables filled in."""
    for macro, value in MACROS.items():
        expr = expr.replace(macro, value)

    def var(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in variables:
            raise KeyError(f"unknown template variable ${name} in {expr!r}")
        return variables[name]

    return _VARIABLE.sub(var, expr)


def metric_names(expr: str) -> set[str]:
    """Metric names an expression reads (the monitor's ``social_*`` and Prometheus' ALERTS)."""
    return set(_METRIC.findall(expr))
