"""Pipeline health: sources, queue, latency, lag, archive and per-worker throughput."""

from __future__ import annotations

from grafana.common import (
    PER_MINUTE,
    SOURCE,
    Board,
    Query,
    dm,
    stat_panel,
    table_panel,
    timeseries_panel,
)

__all__ = ["build"]

UID = "social-pipeline"
#: 80% of the default --queue-size (10000): sources are about to wait
QUEUE_WARNING = 8000
_PER_MIN = "[$__rate_interval])) * 60"


def _quantile(q: float, metric: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket[$__rate_interval])))"


def build() -> Board:
    board = Board(UID, "Social monitor: pipeline health",
                  "Is the monitor keeping up? Sources, the queue, processing latency, "
                  "ingest lag, archive writes and throughput per process or worker.")
    board.source_variable()
    board.alerts_annotation()

    board.row("Sources")
    board.add(
        stat_panel(
            "Sources up",
            "1 while some process is connected to the source and reading (max over "
            "processes). A replay that reached the end of its file disappears instead of "
            "going down. SocialSourceDown alerts after 5 minutes down.",
            [Query(f"max by (source) (social_source_up{{{SOURCE}}})", "{{source}}")],
            width=8, height=8, thresholds=((None, "red"), (1, "green")), color_background=True,
            mappings=[dm.ValueMap(options={
                "0": dm.ValueMappingResult(text="down", color="red", index=0),
                "1": dm.ValueMappingResult(text="up", color="green", index=1)})]),
        timeseries_panel(
            "Received per minute by source",
            "Posts and records read from each source per minute, before deduplication and "
            "tagging (rejected records included).",
            [Query(f"sum by (source) (rate(social_posts_received_total{{{SOURCE}}}{_PER_MIN}",
                   "{{source}}")],
            unit=PER_MINUTE, width=8),
        timeseries_panel(
            "Source reconnects and errors",
            "Reconnections after a lost stream and source errors by kind (timeout, auth, "
            "rate_limited, ...), per interval. A steady trickle is normal for live "
            "streams; a burst means the platform or the network is struggling.",
            [Query(f"sum by (source) (increase(social_source_reconnects_total{{{SOURCE}}}"
                   "[$__rate_interval]))", "{{source}} reconnects"),
             Query(f"sum by (source, kind) (increase(social_source_errors_total{{{SOURCE}}}"
                   "[$__rate_interval]))", "{{source}} {{kind}}")],
            unit="short", width=8, bars_style=True),
    )

    board.row("Processing")
    board.add(
        timeseries_panel(
            "Queue depth",
            "Posts waiting for the processor, per process. Near the queue size (10000 by "
            "default; dashed line at 80%) the sources are slowed down: the processor or "
            "the archive cannot keep up.",
            [Query("sum by (instance) (social_queue_depth)", "{{instance}}")],
            unit="short", width=8, thresholds=((None, "green"), (QUEUE_WARNING, "orange")),
            threshold_line=True),
        timeseries_panel(
            "Processing latency p50 / p99",
            "Seconds from a post entering the queue to being tagged "
            "(social_processing_seconds), median and 99th percentile over all processes. "
            "Above a second (dashed) the queue is backing up.",
            [Query(_quantile(0.5, "social_processing_seconds"), "p50"),
             Query(_quantile(0.99, "social_processing_seconds"), "p99")],
            unit="s", width=8, thresholds=((None, "green"), (1, "orange")),
            threshold_line=True),
        timeseries_panel(
            "Ingest lag p50 / p99",
            "Processing time minus the post's created_at (social_ingest_lag_seconds): how "
            "late posts arrive. Live streams stay within seconds (dashed line: 5 minutes); "
            "polling sources lag by their interval; a replay of old posts shows their age.",
            [Query(_quantile(0.5, "social_ingest_lag_seconds"), "p50"),
             Query(_quantile(0.99, "social_ingest_lag_seconds"), "p99")],
            unit="s", width=8, thresholds=((None, "green"), (300, "orange")),
            threshold_line=True),
    )

    board.row("Throughput and output")
    board.add(
        timeseries_panel(
            "Throughput per process or worker",
            "Posts tagged per minute by each monitor process (instance) and, with the Faust "
            "runtime, each worker: an uneven split means a hot partition.",
            [Query("sum by (instance, worker) (rate(social_posts_processed_total"
                   f"{_PER_MIN}", "{{instance}} {{worker}}")],
            unit=PER_MINUTE),
        timeseries_panel(
            "Pipeline flow",
            "Per minute, summed: received from sources, tagged, skipped as duplicates and "
            "rejected. Received minus rejected should equal tagged plus duplicates; a gap "
            "that grows is a stalled pipeline (PipelineStalled).",
            [Query(f"sum(rate(social_posts_received_total{{{SOURCE}}}{_PER_MIN}", "received"),
             Query(f"sum(rate(social_posts_processed_total{{{SOURCE}}}{_PER_MIN}", "tagged"),
             Query(f"sum(rate(social_posts_duplicate_total{{{SOURCE}}}{_PER_MIN}",
                   "duplicates"),
             Query(f"(sum(rate(social_posts_rejected_total{{{SOURCE}}}[$__rate_interval])) "
                   "or vector(0)) * 60", "rejected")],
            unit=PER_MINUTE),
        timeseries_panel(
            "Archive writes per minute",
            "Posts made durable in the daily archive (after fsync) per minute, by source. "
            "Below the tagged rate for long means the archive disk is slow or full.",
            [Query(f"sum by (source) (rate(social_archive_posts_total{{{SOURCE}}}{_PER_MIN}",
                   "{{source}}")],
            unit=PER_MINUTE),
        timeseries_panel(
            "Sink errors",
            "Batches an output sink (MQTT publishing) failed to take, per interval. Any is "
            "worth reading the monitor log for.",
            [Query("sum by (sink) (increase(social_sink_errors_total[$__rate_interval]))",
                   "{{sink}}")],
            unit="short", bars_style=True, thresholds=((None, "green"), (1, "red"))),
    )

    board.row("Processes")
    board.add(
        timeseries_panel(
            "Moderation memory",
            "Estimated memory of the moderation detectors' state (near-duplicate sketch, "
            "domain and author windows), summed over processes. It should level off; "
            "steady growth is a leak to report.",
            [Query("sum by (structure) (social_moderation_memory_bytes)", "{{structure}}")],
            unit="bytes"),
        table_panel(
            "Version and ruleset",
            "Monitor version and ruleset (name and hash) each process runs, with how many "
            "processes run it: after a rules change every worker should show the same hash.",
            [Query("count by (version, ruleset, ruleset_hash) (social_build_info)",
                   "{{ruleset}}", instant=True, table=True)], value_name="processes",
            height=8),
    )
    return board
