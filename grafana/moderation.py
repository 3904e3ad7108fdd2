"""Moderation: flags, spikes, floods, rejected input and the alerts that fired."""

from __future__ import annotations

from grafana.common import (
    ALERTS_FIRING,
    PER_MINUTE,
    SOURCE,
    Board,
    Query,
    bars,
    cm,
    flood_heatmap,
    table_panel,
    timeseries_panel,
)

__all__ = ["build"]

UID = "social-moderation"
#: deploy/prometheus/alerts.yml: a spike is over 3 times the baseline
SPIKE_FACTOR = 3
#: deploy/prometheus/alerts.yml: HighRejectionRate fires above 20%
REJECTED_SHARE = 0.2


def _flags(window: str) -> str:
    return f"sum by (flag) (rate(social_flags_total{{{SOURCE}}}[{window}]))"


def build() -> Board:
    board = Board(UID, "Social monitor: moderation",
                  "Moderation flags by kind and severity, spikes against the baseline, "
                  "near-duplicate floods, rejected input and the alerts that fired "
                  "(annotations).")
    board.source_variable()
    board.alerts_annotation()

    board.row("Flags")
    board.add(
        timeseries_panel(
            "Flags per minute by kind and severity",
            "Moderation flags raised per minute (content rules and the stateful detectors), "
            "stacked. Severity comes from the ruleset: csam_risk is critical, nsfw high, "
            "harassment medium, spam and off_topic low. Red regions are alerts firing.",
            [Query(f"sum by (flag, severity) (rate(social_flags_total{{{SOURCE}}}"
                   "[$__rate_interval])) * 60", "{{flag}} ({{severity}})")],
            unit=PER_MINUTE, stack=cm.StackingMode.NORMAL),
        timeseries_panel(
            "Spike ratio: last 5 minutes against the last hour",
            "Each flag kind's rate over the last 5 minutes divided by its rate over the last "
            "hour: 1 is the usual level, above 3 (dashed line) is what the spike alerts look "
            "for (they also need a floor of flags and 20 minutes of history; see "
            "deploy/README.md). Gaps mean no flags of that kind in the hour.",
            [Query(f"{_flags('5m')} / {_flags('1h')}", "{{flag}}")],
            unit="suffix:×", thresholds=((None, "green"), (SPIKE_FACTOR, "red")),
            threshold_line=True),
    )

    board.row("Floods and rejected input")
    board.add(
        flood_heatmap(
            "Near-duplicate cluster sizes",
            "How large the near-duplicate cluster was for each post flagged as a flood "
            "(social_duplicate_cluster_size, buckets 5 to 5000): a bright band high up is "
            "one text posted hundreds of times. Not split by source.",
            [Query("sum by (le) (increase(social_duplicate_cluster_size_bucket"
                   "[$__rate_interval]))", "{{le}}", heatmap=True)]),
        timeseries_panel(
            "Flood cluster size, p50 and p99",
            "Median and 99th percentile cluster size of the posts flagged as floods per "
            "interval (from the same histogram; empty while nothing is flooding).",
            [Query("histogram_quantile(0.5, sum by (le) (rate("
                   "social_duplicate_cluster_size_bucket[$__rate_interval])))", "p50"),
             Query("histogram_quantile(0.99, sum by (le) (rate("
                   "social_duplicate_cluster_size_bucket[$__rate_interval])))", "p99")],
            unit="short"),
        timeseries_panel(
            "Rejected input per minute by reason",
            "Records refused at the edge (bad JSON, missing fields, bad timestamps, too "
            "large) and posts that failed in the processor (processing_error, a bug to "
            "report), per minute. Empty is good.",
            [Query(f"sum by (reason) (rate(social_posts_rejected_total{{{SOURCE}}}"
                   "[$__rate_interval])) * 60", "{{reason}}")],
            unit=PER_MINUTE, stack=cm.StackingMode.NORMAL, bars_style=True),
        timeseries_panel(
            "Rejected share of received",
            "Rejected records as a share of everything received from the sources. "
            "HighRejectionRate alerts above 20% for one source (dashed line): the platform "
            "changed its format or a collector is misconfigured.",
            [Query(f"(sum(rate(social_posts_rejected_total{{{SOURCE}}}[$__rate_interval])) "
                   "or vector(0)) / "
                   f"sum(rate(social_posts_received_total{{{SOURCE}}}[$__rate_interval]))",
                   "rejected")],
            unit="percentunit", thresholds=((None, "green"), (REJECTED_SHARE, "red")),
            threshold_line=True),
    )

    board.row("Alerts")
    board.add(
        table_panel(
            "Alerts firing now",
            "Alerts Prometheus evaluates from deploy/prometheus/alerts.yml that fire right "
            "now, with their severity and the flag or source they concern. Empty when all "
            "is quiet (or when Prometheus does not load the rules).",
            [Query(f"max by (alertname, severity, flag, source) ({ALERTS_FIRING})",
                   "{{alertname}}", instant=True, table=True)]),
        bars(
            "Flags by source",
            "Flags in the selected time range by platform and kind: which platform a "
            "flood or a pile-on comes from.",
            [Query("sort_desc(sum by (source, flag) (increase(social_flags_total"
                   f"{{{SOURCE}}}[$__range])) > 0)", "{{source}} {{flag}}", instant=True)],
            width=12, height=6),
    )
    return board
