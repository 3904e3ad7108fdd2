"""Acceptance: ``promtool check metrics`` has nothing to say about the live exposition.

promtool comes with Debian's ``prometheus`` package (``make test`` installs it when
run as root). Without it the check is skipped locally but fails in CI (CI=true).
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

from tests.support.binaries import require_binary

if TYPE_CHECKING:
    from conftest import FinishedRun

#: Every family the README's "Metrics" section promises, as exposed.
FAMILIES = {
    "social_posts_received", "social_posts_rejected", "social_posts_processed",
    "social_posts_duplicate", "social_themes", "social_claims", "social_reasons",
    "social_flags", "social_rule_hits", "social_shadow_labels", "social_archive_posts",
    "social_queue_depth", "social_source_up", "social_processing_seconds",
    "social_ingest_lag_seconds", "social_build_info",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_binary("promtool", "/usr/bin/promtool")


def test_promtool_finds_nothing_to_complain_about(mixed_run: FinishedRun, promtool: str) -> None:
    checked = subprocess.run([promtool, "check", "metrics"], input=mixed_run.metrics.text,
                             capture_output=True, text=True, timeout=30)
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


def test_promtool_does_complain_about_a_broken_exposition(promtool: str) -> None:
    # proves the check above can fail: a counter without _total, no HELP
    broken = "# TYPE social_posts_seen counter\nsocial_posts_seen 1\n"
    checked = subprocess.run([promtool, "check", "metrics"], input=broken,
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode != 0 or checked.stdout + checked.stderr != ""


def test_every_family_is_exposed_after_a_run(mixed_run: FinishedRun) -> None:
    assert mixed_run.metrics.families >= FAMILIES
