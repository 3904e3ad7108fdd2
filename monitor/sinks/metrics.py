"""Prometheus metrics: the live counters dashboards and alerts read.

Every label value comes from a bounded set (platform names, configured
languages plus ``other``, the ruleset's labels and rule ids, the codec's
reject reasons); never an author, a post id or free text (the one exception,
``social_top_terms``' ``term``, is a single common word, and only the top k
per language exist: monitor/sinks/topterms.py). Counts are
aggregated per batch, so the per-post cost is a dict update, not a locked
metric call.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Iterable
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from monitor import __version__
from monitor.codec import REJECT_REASONS
from monitor.model import FLAG_KINDS, SEVERITIES, TaggedPost
from monitor.sinks.topterms import TopTerms, TopTermsSettings
from monitor.sources.base import ERROR_KINDS, PLATFORMS, platform_label
from monitor.tagging.language import OTHER
from monitor.tagging.ruleset import Ruleset

__all__ = ["Metrics", "observe_all", "parse_addr"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LAG_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 86400, 7 * 86400)
_PROCESSING_ERROR = "processing_error"


def observe_all(histogram: Histogram, amounts: list[float]) -> None:
    """``histogram.observe`` of each amount, as one update per bucket touched.

    ``observe`` takes two locks and walks the bounds in Python for every
    amount (~1.5 us; ~3 for a replayed post's lag in the last bucket), and
    the monitor observes two a post. This updates the histogram's own bucket
    and sum values (prometheus-client's private attributes; if a release
    renames them, each amount is observed one by one, and a test compares
    the two ways' exposition).
    """
    if not amounts:
        return
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None:
        for amount in amounts:
            histogram.observe(amount)
        return
    # the first bound >= the amount, as observe's `amount <= bound`; NaN falls past the end
    counts = np.bincount(np.searchsorted(bounds, amounts, side="left"),
                         minlength=len(bounds))
    total.inc(sum(amounts))
    for i in np.flatnonzero(counts[:len(bounds)]).tolist():
        buckets[i].inc(int(counts[i]))


def parse_addr(addr: str, default_port: int = 9464) -> tuple[str, int]:
    """'127.0.0.1:9464', ':9464', '9464' or '[::1]:9464' -> (host, port)."""
    host, _, port = addr.rpartition(":") if ":" in addr else ("", "", addr)
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port) if port else default_port
    except ValueError:
        raise ValueError(f"metrics address {addr!r}: use HOST:PORT, e.g. 127.0.0.1:9464") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"metrics address {addr!r}: port must be 0-65535")
    return host, number


class Metrics:
    """All of the monitor's metrics, on one registry (a fresh one per test)."""

    def __init__(self, ruleset: Ruleset, registry: CollectorRegistry | None = None, *,
                 top_terms: TopTermsSettings | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # _langs, _rules and _labels: the ruleset's bounded label sets, set by set_ruleset()
        self._reasons = frozenset(REJECT_REASONS) | {_PROCESSING_ERROR}
        #: source label -> its received counter, looked up once (labels() is ~0.75 us a post)
        self._received: dict[str, Any] = {}
        self.received = Counter("social_posts_received", "Posts and records received from sources.",
                                ["source"], registry=r)
        self.rejected = Counter("social_posts_rejected", "Records refused at the edge, by reason.",
                                ["source", "reason"], registry=r)
        self.processed = Counter("social_posts_processed", "Posts tagged by the processor.",
                                 ["source", "lang"], registry=r)
        self.duplicate = Counter("social_posts_duplicate", "Posts skipped as already seen.",
                                 ["source"], registry=r)
        self.themes = Counter("social_themes", "Themes given to posts.", ["source", "theme"],
                              registry=r)
        self.claims = Counter("social_claims", "Claims given to posts.", ["source", "claim"],
                              registry=r)
        self.reasons = Counter("social_reasons", "Reasons given to posts.", ["source", "reason"],
                               registry=r)
        self.flags = Counter("social_flags", "Moderation flags raised.",
                             ["source", "flag", "severity"], registry=r)
        self.rule_hits = Counter("social_rule_hits", "Rules that fired, active and shadow.",
                                 ["rule"], registry=r)
        self.shadow = Counter("social_shadow_labels", "Labels that shadow-mode rules would give.",
                              ["layer", "label"], registry=r)
        self.archived = Counter("social_archive_posts", "Posts made durable in the archive.",
                                ["source"], registry=r)
        self.queue_depth = Gauge("social_queue_depth", "Posts waiting for the processor.",
                                 registry=r)
        self.sink_errors = Counter("social_sink_errors", "Batches an output sink failed to take.",
                                   ["sink"], registry=r)
        self.source_reconnects = Counter("social_source_reconnects",
                                         "Times a source reconnected after losing its stream.",
                                         ["source"], registry=r)
        self.source_errors = Counter("social_source_errors", "Source errors, by bounded kind.",
                                     ["source", "kind"], registry=r)
        self.source_up = Gauge("social_source_up", "1 while a source is connected and reading.",
                               ["source"], registry=r)
        self.processing = Histogram("social_processing_seconds",
                                    "Seconds from a post entering the queue to being tagged.",
                                    buckets=_LATENCY_BUCKETS, registry=r)
        self.ingest_lag = Histogram("social_ingest_lag_seconds",
                                    "Processing time minus the post's created_at.",
                                    buckets=_LAG_BUCKETS, registry=r)
        self.cluster_size = Histogram("social_duplicate_cluster_size",
                                      "Near-duplicate cluster size of each post flagged as a flood.",
                                      buckets=(5, 10, 20, 50, 100, 200, 500, 1000, 5000),
                                      registry=r)
        self.moderation_memory = Gauge("social_moderation_memory_bytes",
                                       "Estimated memory of the moderation detectors' state.",
                                       ["structure"], registry=r)
        self.rules_reloads = Counter("social_rules_reloads",
                                     "Rules reloads on SIGHUP, by result (ok or failed).",
                                     ["result"], registry=r)
        for result in ("ok", "failed"):
            self.rules_reloads.labels(result)
        self.build = Gauge("social_build_info", "Version and ruleset of this monitor (always 1).",
                           ["version", "ruleset", "ruleset_hash"], registry=r)
        # social_top_terms{lang,term}: a bounded top k per language (monitor/sinks/topterms.py)
        self.top_terms = TopTerms(ruleset, registry=r, settings=top_terms)
        self.set_ruleset(ruleset)
        # every platform's series exist at zero from the first scrape, so increase()
        # and alerts see the first flag of a kind instead of a series born at 1
        for platform in sorted(PLATFORMS | {"other"}):
            self._source(platform)

    def set_ruleset(self, ruleset: Ruleset) -> None:
        """Point the build info at a (re)loaded ruleset; label sets follow it."""
        self.build.clear()
        self.build.labels(__version__, ruleset.name, ruleset.hash).set(1)
        self._rules = frozenset(rule.id for rule in ruleset.all_rules())
        self._langs = frozenset(ruleset.languages) | {OTHER}
        self._labels = {layer: frozenset(lb.id for lb in ruleset.labels_of(layer))
                        for layer in ("theme", "claim", "reason")}
        for rule in sorted(self._rules):
            self.rule_hits.labels(rule)
        self.top_terms.set_ruleset(ruleset)

    def _source(self, name: str) -> str:
        """Bound the label, and create a new source's series at zero so rates start clean."""
        label = platform_label(name)
        if label not in self._received:
            self._received[label] = self.received.labels(label)
            self.duplicate.labels(label)
            self.archived.labels(label)
            for lang in sorted(self._langs):
                self.processed.labels(label, lang)
            for kind in FLAG_KINDS:
                for severity in SEVERITIES:
                    self.flags.labels(label, kind, severity)
        return label

    def serve(self, addr: str) -> Any:
        """Serve /metrics on HOST:PORT in a daemon thread; returns the server."""
        host, port = parse_addr(addr)
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server

    # -- events ---------------------------------------------------------------

    def record_received(self, source: str, count: int = 1) -> None:
        self._received[self._source(source)].inc(count)

    def record_rejected(self, source: str, reason: str) -> None:
        label = self._source(source)
        self._received[label].inc()
        self.rejected.labels(label, reason if reason in self._reasons else "other").inc()

    def record_source_up(self, source: str, up: bool) -> None:
        self.source_up.labels(self._source(source)).set(1 if up else 0)

    def record_reconnect(self, source: str) -> None:
        self.source_reconnects.labels(self._source(source)).inc()

    def record_source_error(self, source: str, kind: str) -> None:
        self.source_errors.labels(self._source(source),
                                  kind if kind in ERROR_KINDS else "other").inc()

    def record_duplicates(self, sources: Iterable[str]) -> None:
        for source, n in Tally(sources).items():
            self.duplicate.labels(self._source(source)).inc(n)

    def record_failed(self, sources: Iterable[str]) -> None:
        for source, n in Tally(sources).items():
            self.rejected.labels(self._source(source), _PROCESSING_ERROR).inc(n)

    def record_archived(self, counts: dict[str, int]) -> None:
        for source, n in counts.items():
            if n:
                self.archived.labels(self._source(source)).inc(n)

    def record_tagged(self, batch: list[TaggedPost], enqueued: list[float] | None = None,
                      now: float | None = None) -> None:
        """Count one processed batch; ``enqueued`` are monotonic times the posts entered."""
        processed: Tally[tuple[str, str]] = Tally()
        themes: Tally[tuple[str, str]] = Tally()
        claims: Tally[tuple[str, str]] = Tally()
        reasons: Tally[tuple[str, str]] = Tally()
        flags: Tally[tuple[str, str, str]] = Tally()
        rules: Tally[str] = Tally()
        shadow: Tally[tuple[str, str]] = Tally()
        langs, known = self._langs, self._labels
        wall = time.time() if now is None else now
        lags: list[float] = []
        for tagged in batch:
            source = self._source(tagged.post.source)
            tags = tagged.tags
            processed[(source, tags.lang if tags.lang in langs else OTHER)] += 1
            for s in tags.themes:
                themes[(source, s.label)] += 1
            if tags.claim is not None:
                claims[(source, tags.claim.label)] += 1
            for s in tags.reasons:
                reasons[(source, s.label)] += 1
            for flag in tagged.all_flags:
                flags[(source, flag.kind, flag.severity)] += 1
                if flag.rule == "moderation.near_duplicate" and flag.detail:
                    self.cluster_size.observe(flag.detail.get("cluster_size", 0))
            rules.update(tags.rule_hits)
            for s in tags.shadow:
                shadow[(s.label,)] += 1
            lags.append(max(0.0, wall - tagged.post.created_at.timestamp()))
        observe_all(self.ingest_lag, lags)
        for key, n in processed.items():
            self.processed.labels(*key).inc(n)
        for counter, tally, allowed in ((self.themes, themes, known["theme"]),
                                        (self.claims, claims, known["claim"]),
                                        (self.reasons, reasons, known["reason"])):
            for (source, label), n in tally.items():
                if label in allowed:
                    counter.labels(source, label).inc(n)
        for (source, kind, severity), n in flags.items():
            if kind in FLAG_KINDS and severity in SEVERITIES:
                self.flags.labels(source, kind, severity).inc(n)
        for rule, n in rules.items():
            if rule in self._rules:
                self.rule_hits.labels(rule).inc(n)
        for (label,), n in shadow.items():
            layer = next((lay for lay, names in known.items() if label in names),
                         "flag" if label in FLAG_KINDS else None)
            if layer is not None:  # a label of another ruleset (tagged before a reload) is not counted
                self.shadow.labels(layer, label).inc(n)
        if enqueued:
            done = time.monotonic()
            observe_all(self.processing, [done - started for started in enqueued])
        self.top_terms.record(batch, wall)  # the gauge itself is refreshed at most once a second
