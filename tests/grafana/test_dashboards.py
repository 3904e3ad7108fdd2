"""The dashboards as code: the checked-in JSON is what the code generates, it has the shape
Grafana needs, and every query reads metrics the README documents.

The end-to-end proof that every query returns data from a real Prometheus is
test_dashboards_e2e.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.tagging import default_rules_path, load_ruleset
from tests.grafana.queries import (
    DASHBOARDS,
    ROOT,
    load_dashboards,
    metric_names,
    panel_queries,
    panels,
    substitute,
)

try:
    import grafana_foundation_sdk  # noqa: F401
except ImportError:  # a skip locally, a failure in CI (like a missing binary)
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("grafana-foundation-sdk is not installed: pip install -e '.[test]'",
                allow_module_level=True)

from grafana import build
from grafana.campaign import AXES
from grafana.common import DATASOURCE_UID

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from grafana_foundation_sdk.models.dashboard import Dashboard

PROVISIONING = ROOT / "grafana" / "provisioning"
README = ROOT / "README.md"
GRAFANA_README = ROOT / "grafana" / "README.md"
#: Dashboard fields Grafana's schema requires (dashboard kind v1), and per panel.
REQUIRED = ("title", "uid", "panels", "schemaVersion", "time", "templating", "annotations")
PANEL_REQUIRED = ("id", "type", "title", "gridPos", "datasource", "targets", "description")
PANEL_TYPES = {"timeseries", "stat", "bargauge", "piechart", "heatmap", "table"}


@pytest.fixture(scope="module")
def boards() -> dict[str, dict[str, Any]]:
    return load_dashboards()


# -- generated, and current ----------------------------------------------------


def test_the_checked_in_json_is_what_the_code_generates() -> None:
    assert build.stale() == [], "run 'make dashboards' (python -m grafana.build)"
    assert sorted(p.stem for p in DASHBOARDS.glob("*.json")) == sorted(build.DASHBOARDS)


def test_the_check_command_passes_and_catches_an_edit(tmp_path: Path) -> None:
    checked = subprocess.run([sys.executable, "-m", "grafana.build", "--check"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    assert build.main(["--out", str(tmp_path)]) == 0
    edited = tmp_path / "moderation.json"
    edited.write_text(edited.read_text(encoding="utf-8").replace("Flags", "Flagz"),
                      encoding="utf-8")
    assert build.stale(tmp_path) == ["moderation.json"]
    assert build.main(["--check", "--out", str(tmp_path)]) == 1


def test_generation_is_deterministic() -> None:
    assert all(build.render(name) == build.render(name) for name in build.DASHBOARDS)


def test_the_makefile_regenerates_them() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^dashboards:.*\n\t.*-m grafana\.build", makefile, re.M)


# -- the shape Grafana needs -------------------------------------------------------


def test_every_dashboard_loads_into_the_sdk_types(boards: dict[str, dict[str, Any]]) -> None:
    for uid, board in boards.items():
        model = Dashboard.from_json(board)
        assert (model.uid, model.title) == (uid, board["title"])
        assert len(model.panels or []) == len(board["panels"])


def test_required_fields_and_panel_shape(boards: dict[str, dict[str, Any]]) -> None:
    assert len(boards) == 3
    for uid, board in boards.items():
        for field in REQUIRED:
            assert field in board, f"{uid}: no {field}"
        assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 39
        ids = [p["id"] for p in board["panels"]] + [p["id"] for p in panels(board)
                                                     if p not in board["panels"]]
        assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids), uid
        for panel in panels(board):
            where = f"{uid} / {panel.get('title')}"
            for field in PANEL_REQUIRED:
                assert panel.get(field) not in (None, "", []), f"{where}: no {field}"
            assert panel["type"] in PANEL_TYPES, where
            assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, where
            grid = panel["gridPos"]
            assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, where
            assert panel["fieldConfig"]["defaults"].get("unit"), f"{where}: no unit"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == DATASOURCE_UID, where
                assert target["expr"] and target["refId"] and target.get("legendFormat"), where


def test_panels_do_not_overlap(boards: dict[str, dict[str, Any]]) -> None:
    for uid, board in boards.items():
        cells: dict[tuple[int, int], str] = {}
        for panel in board["panels"]:
            g = panel["gridPos"]
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in cells, f"{uid}: {panel['title']} overlaps {cells[(x, y)]}"
                    cells[(x, y)] = panel["title"]


def test_template_variables(boards: dict[str, dict[str, Any]]) -> None:
    for uid, board in boards.items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert "source" in variables, uid
        for variable in variables.values():
            assert variable["datasource"]["uid"] == DATASOURCE_UID
            assert variable["includeAll"] and variable["multi"] and variable["allValue"] == ".*"
            assert variable["query"]["query"] == f"label_values({variable['definition'][13:]}"
        used = {m for q in panel_queries({uid: board})
                for m in re.findall(r"\$(\w+)", q.expr) if not m.startswith("__")}
        assert used <= set(variables), f"{uid} uses undefined variables {used - set(variables)}"
        assert set(variables) <= used, f"{uid} defines unused variables"
    assert "lang" in {v["name"] for v in boards["social-campaign"]["templating"]["list"]}


def test_every_query_sums_over_instances(boards: dict[str, dict[str, Any]]) -> None:
    """One dashboard for one process or many workers: no raw per-instance series."""
    for query in panel_queries(boards):
        if query.panel.startswith("annotation:"):
            continue
        assert re.match(r"^\(?(sum|max|count|topk|sort_desc|histogram_quantile)\b", query.expr), \
            str(query)


def test_moderation_shows_alerts_as_annotations(boards: dict[str, dict[str, Any]]) -> None:
    for uid in ("social-moderation", "social-pipeline"):
        exprs = [a.get("expr") for a in boards[uid]["annotations"]["list"]]
        assert 'ALERTS{alertstate="firing"}' in exprs, uid


# -- the content -----------------------------------------------------------------------


def test_the_axes_cover_the_shipped_themes_once() -> None:
    themes = {label.id for label in load_ruleset(default_rules_path()).labels_of("theme")}
    grouped = [t for members in AXES.values() for t in members]
    assert sorted(grouped) == sorted(themes)


def test_every_query_reads_documented_metrics(boards: dict[str, dict[str, Any]]) -> None:
    section = README.read_text(encoding="utf-8").split("## Metrics", 1)[1].split("\n## ", 1)[0]
    documented = {"social_" + name for name in re.findall(r"`([a-z_]+)(?:\{[a-z_,]*\})?`",
                                                          " ".join(section.split()))}
    for query in panel_queries(boards):
        for name in metric_names(query.expr) - {"ALERTS"}:
            family = re.sub(r"_(bucket|count|sum)$", "", name)
            assert name in documented or family in documented, f"{name} undocumented: {query}"


def test_substitution_leaves_no_macro(boards: dict[str, dict[str, Any]]) -> None:
    for query in panel_queries(boards):
        expr = substitute(query.expr, {"source": ".*", "lang": ".*"})
        assert "$" not in expr, expr


def test_every_panel_and_dashboard_is_in_the_readme(boards: dict[str, dict[str, Any]]) -> None:
    text = " ".join(GRAFANA_README.read_text(encoding="utf-8").split())
    for uid, board in boards.items():
        assert board["title"] in text, f"{board['title']} not in grafana/README.md"
        for panel in panels(board):
            assert panel["title"] in text, f"{uid} / {panel['title']} not in grafana/README.md"
    assert "## Dashboards" in README.read_text(encoding="utf-8")


# -- provisioning ------------------------------------------------------------------------


def test_the_provisioned_datasource_is_the_one_the_dashboards_use() -> None:
    doc = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    assert doc["apiVersion"] == 1
    [source] = doc["datasources"]
    assert (source["uid"], source["type"]) == (DATASOURCE_UID, "prometheus")
    assert source["url"].startswith("${") or source["url"].startswith("http")


def test_the_dashboard_provider_reads_the_dashboards_folder() -> None:
    doc = yaml.safe_load((PROVISIONING / "dashboards" / "monitor.yml").read_text())
    assert doc["apiVersion"] == 1
    [provider] = doc["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "${SOCIAL_MONITOR_DASHBOARDS}"
    assert "SOCIAL_MONITOR_DASHBOARDS" in GRAFANA_README.read_text(encoding="utf-8")


def test_the_readme_panel_counts_are_right(boards: dict[str, dict[str, Any]]) -> None:
    text = GRAFANA_README.read_text(encoding="utf-8")
    for uid, board in boards.items():
        match = re.search(rf"\(`{uid}`, (\d+) panels\)", text)
        assert match, f"grafana/README.md does not give {uid}'s panel count"
        assert int(match.group(1)) == len(panels(board)), uid
