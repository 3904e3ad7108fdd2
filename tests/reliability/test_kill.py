"""SIGKILL ``monitor run`` again and again while it archives; nothing acknowledged is lost.

One real ``monitor run --source replay:INPUT?speed=..&resume=true`` is
started, killed with SIGKILL at a seeded random point, and restarted with
the same replay, state folder and archive, ``KILLS`` times; a last run goes
to the end of the input and stops cleanly.

*Acknowledged as durable* means: the post's line number is at or below the
replay cursor committed in ``STATE/cursors.json``. The runtime commits that
cursor only after the archive has fsynced every post before it, so a reader
outside the process can check the promise. After every kill the test proves:

- every valid post on a line at or below the committed cursor is in the
  archive (its complete zstd frames, as recovery keeps them), exactly once;
  the archive holds no post that is not in the input, and no id twice;
- the committed cursor never moves back;
- a copy of the archive, recovered the way a restart recovers it, passes
  ``verify_archive`` and keeps every post the complete frames held.

At the end, ``monitor archive verify`` passes on the archive and every valid
post of the input is in it exactly once.

Where the kills land (the plan is seeded and shuffled, ``RELIABILITY_SEED``):

- ``midnight``: each child runs under libfaketime with its clock set so UTC
  midnight passes about a second after it is ready; the kill comes the moment
  it logs ``archive: UTC day ... began`` (the rollover's flush and manifest
  writes are under way), or at a random instant around midnight;
- ``manifest``: the kill comes the moment a ``manifest.json.tmp`` appears in a
  day folder (the input's late posts reopen closed days, so manifests are
  written all the time as the writer keeps at most three days open);
- ``recovery``: right after start-up, while the archive recovers what the
  previous kill left (cutting torn tails, rewriting stale manifests);
- ``archiving``: a random instant while posts are flowing.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from monitor.sinks.manifest import MANIFEST_NAME, day_folders
from tests.support.crash import (
    Input,
    assert_recovery_keeps,
    committed_cursor,
    complete_frames,
    write_input,
)
from tests.support.faketime import libfaketime, midnight_env
from tests.support.monitor_process import MonitorRun

SEED = int(os.environ.get("RELIABILITY_SEED", "9"))
KILLS = {"midnight": 7, "manifest": 6, "recovery": 4, "archiving": 7}
POSTS = 4_000
#: replay pace: the input's posts are 120 s of event time apart on average
SPEED = "10000x"
TMP_MANIFEST = MANIFEST_NAME + ".tmp"
READY = "ruleset '"
ROLLOVER = "archive: UTC day"
SERVING = "serving metrics on"


def manifest_temps(archive: Path) -> list[Path]:
    return [day / TMP_MANIFEST for day in day_folders(archive)
            if (day / TMP_MANIFEST).exists()] if archive.is_dir() else []


@dataclass
class Kill:
    """One kill: what it aimed at and what it left behind."""

    kind: str
    cursor: int
    rollover_begun: bool = False
    temp_manifest_left: bool = False
    torn_files: int = 0
    archived: int = 0


@dataclass
class Campaign:
    folder: Path
    source: Input
    library: str
    rng: random.Random
    kills: list[Kill] = field(default_factory=list)
    ready_after: float = 6.0  # seconds from start to ready, updated from each run

    @property
    def archive(self) -> Path:
        return self.folder / "archive"

    @property
    def state(self) -> Path:
        return self.folder / "state"

    def start(self, midnight_in: float) -> tuple[MonitorRun, float, float]:
        env, midnight = midnight_env(midnight_in, self.library)
        uri = f"replay:{self.source.path}?speed={SPEED}&resume=true"
        return MonitorRun(self.folder, uri, env), time.time(), midnight

    def wait_line(self, run: MonitorRun, text: str, until: float) -> bool:
        while time.time() < until and run.proc.poll() is None:
            if any(text in line for line in list(run.lines)):
                return True
            time.sleep(0.002)
        return any(text in line for line in list(run.lines))

    def kill_once(self, kind: str) -> Kill:
        lead = self.ready_after + self.rng.uniform(0.5, 1.5)
        run, started, midnight = self.start(lead)
        try:
            if kind == "recovery":
                self.wait_line(run, SERVING, started + 60)
                time.sleep(self.rng.uniform(0.0, 0.03))
            else:
                assert self.wait_line(run, READY, started + 60), run.stderr
                self.ready_after = max(4.0, time.time() - started)
                if kind == "midnight":
                    if self.rng.random() < 0.6:
                        self.wait_line(run, ROLLOVER, midnight + 3)
                    else:
                        time.sleep(max(0.0, midnight + self.rng.uniform(-0.1, 0.6) - time.time()))
                elif kind == "manifest":
                    until = time.time() + 8
                    while time.time() < until and not manifest_temps(self.archive):
                        pass  # busy: the temp file lives for a few milliseconds
                else:
                    time.sleep(self.rng.uniform(0.2, 2.0))
            assert run.proc.poll() is None, f"the monitor exited on its own\n{run.stderr}"
            run.proc.send_signal(signal.SIGKILL)
            run.proc.wait(timeout=10)
        finally:
            run.kill()
        kill = Kill(kind, committed_cursor(self.state, self.source.path),
                    rollover_begun=any(ROLLOVER in line for line in run.lines),
                    temp_manifest_left=bool(manifest_temps(self.archive)))
        self.check(kill, run)
        self.kills.append(kill)
        return kill

    def check(self, kill: Kill, run: MonitorRun) -> None:
        """Everything acknowledged is there once; a recovered copy verifies."""
        context = (f"kill {len(self.kills) + 1} ({kill.kind}, seed {SEED}), cursor "
                   f"{kill.cursor}\nmonitor log (tail):\n" + "\n".join(run.lines[-25:]))
        previous = self.kills[-1].cursor if self.kills else 0
        assert kill.cursor >= previous, f"the cursor moved back from {previous}; {context}"
        ids, problems = complete_frames(self.archive)
        kill.torn_files, kill.archived = len(problems), len(ids)
        twice = sorted(i for i, n in ids.items() if n > 1)
        assert not twice, f"archived more than once: {twice[:5]}; {context}"
        missing = sorted(self.source.acknowledged(kill.cursor) - set(ids))
        assert not missing, f"{len(missing)} acknowledged posts missing: {missing[:5]}; {context}"
        strangers = sorted(set(ids) - self.source.valid_ids)
        assert not strangers, f"posts not in the input: {strangers[:5]}; {context}"
        assert_recovery_keeps(self.archive, self.folder / "recovered", ids, context)


@pytest.fixture
def campaign(tmp_path: Path) -> Campaign:
    rng = random.Random(SEED)
    source = write_input(tmp_path / "input.jsonl", posts=POSTS, seed=SEED, rng=rng)
    return Campaign(tmp_path, source, libfaketime(), rng)


@pytest.mark.timeout(280)
def test_sigkill_at_random_points_loses_and_duplicates_no_acknowledged_post(
        campaign: Campaign) -> None:
    plan = [kind for kind, count in KILLS.items() for _ in range(count)]
    campaign.rng.shuffle(plan)
    for kind in plan:
        campaign.kill_once(kind)

    last = len(campaign.source.lines)
    kills = campaign.kills
    assert len(kills) >= 20
    assert sum(k.cursor < last for k in kills) >= 20, "the input ran out before the kills did"
    assert sum(k.rollover_begun for k in kills if k.kind == "midnight") >= 3, (
        "too few kills came after a midnight rollover had begun")
    assert any(k.temp_manifest_left for k in kills), "no kill landed inside a manifest write"

    # the last run goes to the end, then stops cleanly
    run, _, _ = campaign.start(3600)
    with run:
        deadline = time.time() + 90
        while committed_cursor(campaign.state, campaign.source.path) < last:
            assert time.time() < deadline and run.proc.poll() is None, run.stderr
            time.sleep(0.1)
        assert run.stop(signal.SIGTERM) == 0, run.stderr
    verified = subprocess.run([sys.executable, "-m", "monitor", "archive", "verify",
                               str(campaign.archive)], capture_output=True, text=True,
                              check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    ids, problems = complete_frames(campaign.archive)
    assert not problems
    assert set(ids) == campaign.source.valid_ids
    assert set(ids.values()) == {1}
    summary = Counter(k.kind for k in kills)
    print(f"\nseed {SEED}: {len(kills)} kills {dict(summary)}; "
          f"after a rollover began: {sum(k.rollover_begun for k in kills)}; "
          f"inside a manifest write (temp file left): "
          f"{sum(k.temp_manifest_left for k in kills)}; torn files found: "
          f"{sum(k.torn_files for k in kills)}; posts archived once each: {len(ids)}; "
          f"{verified.stdout.strip()}")
