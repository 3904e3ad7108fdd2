"""What the three dashboards share: the datasource, the variables, the panel helpers.

Every query sums over instances (``sum by (...)`` without ``instance``), so a
dashboard serves one ``monitor run`` or many Faust workers alike; rates are
taken per series before the sum, so a restarted worker is a counter reset,
not a dip. Counts per minute are ``rate(...[$__rate_interval]) * 60``.
"""

from __future__ import annotations

import string
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

with warnings.catch_warnings():  # the v1 dashboard model warns at import: we generate v1 JSON
    warnings.simplefilter("ignore", DeprecationWarning)
    from grafana_foundation_sdk.builders import bargauge, heatmap, piechart, stat, table, timeseries
    from grafana_foundation_sdk.builders import common as cb
    from grafana_foundation_sdk.builders import dashboard as db
    from grafana_foundation_sdk.builders import prometheus as prom
    from grafana_foundation_sdk.cog import builder as cogbuilder
    from grafana_foundation_sdk.models import common as cm
    from grafana_foundation_sdk.models import dashboard as dm
    from grafana_foundation_sdk.models import heatmap as hm
    from grafana_foundation_sdk.models import piechart as pm
    from grafana_foundation_sdk.models import prometheus as pq

__all__ = [
    "ALERTS_FIRING",
    "DATASOURCE",
    "DATASOURCE_UID",
    "LANG",
    "PER_MINUTE",
    "SOURCE",
    "TAGS",
    "Board",
    "Query",
    "bars",
    "flood_heatmap",
    "pie",
    "stat_panel",
    "table_panel",
    "timeseries_panel",
]

#: The provisioned datasource (grafana/provisioning/datasources/prometheus.yml).
DATASOURCE_UID = "social-monitor-prometheus"
DATASOURCE = cm.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
#: Every dashboard carries this tag; the dashboards link to each other through it.
TAGS = ["social-monitor"]
#: Label matchers for the template variables (an "All" selection is ".*").
SOURCE = 'source=~"$source"'
LANG = 'lang=~"$lang"'
#: Grafana's custom unit for the per-minute panels.
PER_MINUTE = "suffix: posts/min"
#: Prometheus' own series for pending and firing alerts (not in the monitor's /metrics).
ALERTS_FIRING = 'ALERTS{alertstate="firing"}'


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL target: the expression, its legend, instant or range."""

    expr: str
    legend: str = "__auto"
    instant: bool = False
    heatmap: bool = False
    table: bool = False


def _targets(queries: Sequence[Query]) -> list[cogbuilder.Builder[object]]:
    out: list[cogbuilder.Builder[object]] = []
    for ref, q in zip(string.ascii_uppercase, queries, strict=False):
        target = (prom.Dataquery().ref_id(ref).datasource(DATASOURCE).expr(q.expr)
                  .legend_format(q.legend))
        target = target.instant() if q.instant else target.range()
        if q.heatmap:
            target = target.format(pq.PromQueryFormat.HEATMAP)
        elif q.table:
            target = target.format(pq.PromQueryFormat.TABLE)
        out.append(target)
    return out


def _thresholds(steps: Sequence[tuple[float | None, str]]) -> db.ThresholdsConfig:
    return (db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE)
            .steps([dm.Threshold(value=value, color=color) for value, color in steps]))


#: No threshold colouring: everything is the base colour.
NEUTRAL = ((None, "green"),)


def _common(panel, title: str, description: str, queries: Sequence[Query], *, unit: str,
            width: int, height: int, thresholds: Sequence[tuple[float | None, str]]):
    if not description:
        raise ValueError(f"panel {title!r}: every panel needs a description")
    return (panel.title(title).description(description).datasource(DATASOURCE)
            .targets(_targets(queries)).unit(unit).span(width).height(height)
            .thresholds(_thresholds(thresholds)))


def _legend(width: int) -> cb.VizLegendOptions:
    """A table with mean, max and last on the right of wide panels; a list below narrow ones."""
    if width >= 12:
        return (cb.VizLegendOptions().display_mode(cm.LegendDisplayMode.TABLE)
                .placement(cm.LegendPlacement.RIGHT).show_legend(True)
                .calcs(["mean", "max", "lastNotNull"]).sort_by("Mean").sort_desc(True))
    return (cb.VizLegendOptions().display_mode(cm.LegendDisplayMode.LIST)
            .placement(cm.LegendPlacement.BOTTOM).show_legend(True))


def timeseries_panel(title: str, description: str, queries: Sequence[Query], *,
                     unit: str = PER_MINUTE, width: int = 12, height: int = 8,
                     stack: cm.StackingMode = cm.StackingMode.NONE,
                     thresholds: Sequence[tuple[float | None, str]] = NEUTRAL,
                     threshold_line: bool = False, bars_style: bool = False,
                     minimum: float | None = 0) -> timeseries.Panel:
    """A time series; ``stack`` NORMAL or PERCENT stacks the series (fills them)."""
    panel = _common(timeseries.Panel(), title, description, queries, unit=unit, width=width,
                    height=height, thresholds=thresholds)
    panel = (panel.line_width(1).fill_opacity(40 if stack != cm.StackingMode.NONE else 10)
             .stacking(cb.StackingConfig().mode(stack))
             .legend(_legend(width))
             .tooltip(cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI)
                      .sort(cm.SortOrder.DESCENDING)))
    if minimum is not None:
        panel = panel.min(minimum)
    if bars_style:
        panel = panel.draw_style(cm.GraphDrawStyle.BARS)
    if threshold_line:
        panel = panel.thresholds_style(
            cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED))
    return panel


def stat_panel(title: str, description: str, queries: Sequence[Query], *, unit: str = "short",
               width: int = 6, height: int = 5,
               thresholds: Sequence[tuple[float | None, str]] = NEUTRAL,
               mappings: Sequence[dm.ValueMap] = (), calc: str = "lastNotNull",
               color_background: bool = False) -> stat.Panel:
    """Big numbers, one per series (the last value unless ``calc`` says otherwise)."""
    panel = _common(stat.Panel(), title, description, queries, unit=unit, width=width,
                    height=height, thresholds=thresholds)
    panel = (panel.graph_mode(cm.BigValueGraphMode.AREA)
             .color_mode(cm.BigValueColorMode.BACKGROUND if color_background
                         else cm.BigValueColorMode.VALUE)
             .text_mode(cm.BigValueTextMode.VALUE_AND_NAME)
             .reduce_options(cb.ReduceDataOptions().calcs([calc]).values(False)))
    if mappings:
        panel = panel.mappings(list(mappings))
    return panel


def bars(title: str, description: str, queries: Sequence[Query], *, unit: str = "short",
         width: int = 8, height: int = 9, limit: int = 20,
         thresholds: Sequence[tuple[float | None, str]] = NEUTRAL) -> bargauge.Panel:
    """Horizontal bars of instant values, one per series (a ranking)."""
    panel = _common(bargauge.Panel(), title, description, queries, unit=unit, width=width,
                    height=height, thresholds=thresholds)
    return (panel.orientation(cm.VizOrientation.HORIZONTAL)
            .display_mode(cm.BarGaugeDisplayMode.BASIC)
            .value_mode(cm.BarGaugeValueMode.TEXT)
            .name_placement(cm.BarGaugeNamePlacement.LEFT)
            .show_unfilled(True).min(0)
            .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)
                            .limit(limit)))


def pie(title: str, description: str, queries: Sequence[Query], *, unit: str = "short",
        width: int = 8, height: int = 9) -> piechart.Panel:
    """A donut of instant values with percentages in the legend."""
    panel = _common(piechart.Panel(), title, description, queries, unit=unit, width=width,
                    height=height, thresholds=NEUTRAL)
    return (panel.pie_type(pm.PieChartType.DONUT)
            .display_labels([pm.PieChartLabels.PERCENT])
            .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.PALETTE_CLASSIC))
            .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .legend(piechart.PieChartLegendOptions().display_mode(cm.LegendDisplayMode.TABLE)
                    .placement(cm.LegendPlacement.RIGHT).show_legend(True)
                    .values([pm.PieChartLegendValues.VALUE, pm.PieChartLegendValues.PERCENT])))


def table_panel(title: str, description: str, queries: Sequence[Query], *, width: int = 12,
                height: int = 6, value_name: str | None = None) -> table.Panel:
    """Instant results as a table of labels; the value column is hidden unless named."""
    panel = _common(table.Panel(), title, description, queries, unit="short", width=width,
                    height=height, thresholds=NEUTRAL)
    options: dict[str, object] = {"excludeByName": {"Time": True, "Value": value_name is None}}
    if value_name is not None:
        options["renameByName"] = {"Value": value_name}
    return panel.with_transformation(dm.DataTransformerConfig(id_val="organize", options=options))


def flood_heatmap(title: str, description: str, queries: Sequence[Query], *, width: int = 12,
                  height: int = 8) -> heatmap.Panel:
    """Histogram buckets over time (the query must use ``format: heatmap``)."""
    panel = _common(heatmap.Panel(), title, description, queries, unit="short", width=width,
                    height=height, thresholds=NEUTRAL)
    return (panel.calculate(False)
            .rows_frame(heatmap.RowsHeatmapOptions().layout(cm.HeatmapCellLayout.LE))
            .color(heatmap.HeatmapColorOptions().mode(hm.HeatmapColorMode.SCHEME)
                   .scheme("Oranges").scale(hm.HeatmapColorScale.EXPONENTIAL).exponent(0.5)
                   .steps(64).fill("dark-orange").reverse(False))
            .y_axis(heatmap.YAxisConfig().unit("short").axis_label("posts in the cluster"))
            .show_value(cm.VisibilityMode.AUTO)
            .cell_gap(1))


class Board:
    """A dashboard under construction: numbers panels in order, rows included."""

    def __init__(self, uid: str, title: str, description: str) -> None:
        self.uid = uid
        self._next_id = 1
        self.builder = (
            db.Dashboard(title).uid(uid).description(description).tags(TAGS)
            .editable().tooltip(dm.DashboardCursorSync.CROSSHAIR)
            .time("now-6h", "now").refresh("30s").timezone("browser")
            .timepicker(db.TimePicker().refresh_intervals(["10s", "30s", "1m", "5m", "15m"]))
            .link(db.DashboardLink("Social monitor").type(dm.DashboardLinkType.DASHBOARDS)
                  .tags(TAGS).as_dropdown(True).include_vars(True).keep_time(True))
        )

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def variable(self, name: str, label: str, metric: str, description: str) -> Board:
        """A multi-value variable over one label of ``metric``; "All" matches everything."""
        self.builder = self.builder.with_variable(
            db.QueryVariable(name).label(label).description(description).datasource(DATASOURCE)
            .query({"query": f"label_values({metric}, {name})", "refId": "PrometheusVariableQueryEditor-VariableQuery",
                    "qryType": 1})
            .definition(f"label_values({metric}, {name})")
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
            .multi(True).include_all(True).all_value(".*")
            .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"])))
        return self

    def annotation(self, name: str, expr: str, *, title: str, text: str, color: str) -> Board:
        """Events from a PromQL expression (each series' active periods become regions)."""
        self.builder = self.builder.annotation(
            db.AnnotationQuery().name(name).datasource(DATASOURCE).enable(True)
            .icon_color(color).expr(expr).step("30s").title_format(title).text_format(text)
            .tag_keys("alertname,severity").use_value_for_time(False))
        return self

    def source_variable(self) -> Board:
        """The ``$source`` variable every dashboard filters by."""
        return self.variable("source", "Source", "social_posts_received_total",
                             "Platforms to include (All: every platform the monitor reads).")

    def alerts_annotation(self) -> Board:
        """Firing alerts drawn as red regions, the same on every dashboard that shows them."""
        return self.annotation("Alerts firing", ALERTS_FIRING, title="{{alertname}}",
                               text="{{severity}}: {{flag}}{{source}}", color="red")

    def row(self, title: str) -> Board:
        self.builder = self.builder.with_row(db.Row(title).id(self._id()))
        return self

    def add(self, *panels: cogbuilder.Builder[dm.Panel]) -> Board:
        for panel in panels:
            self.builder = self.builder.with_panel(panel.id(self._id()))  # type: ignore[attr-defined]
        return self

    def build(self) -> dm.Dashboard:
        return self.builder.build()
