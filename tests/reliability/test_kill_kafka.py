"""SIGKILL the scale-out workers and the archiver again and again; nothing acknowledged is lost.

A real Tansu broker on loopback, ``monitor collect`` replaying a file of
synthetic posts (late posts, bad lines and repeated lines mixed in) at a pace
that keeps posts flowing for the whole campaign, two ``monitor worker`` in one
group and one ``monitor archive --from kafka://.../tagged``. The test SIGKILLs
a worker, the archiver or the collector at seeded random points
(``RELIABILITY_SEED``) and restarts it at once with the same arguments and
state folder.

*Acknowledged* is read from outside the processes: the collector's replay
cursor (``STATE/cursors.json``: every post on a line at or below it is in
``posts``; checked after every collector kill), and the broker's committed
offsets (``AIOKafkaConsumer.committed`` for the group, without joining it):

- the workers' group on ``posts``: every post below the committed offset is
  in ``tagged`` (at least once into ``tagged``); checked after every kill;
- the archiver's group on ``tagged``: every record below the committed offset
  is in the archive's complete frames, which means fsynced (the archiver
  commits only after the fsync); checked after every archiver kill, with:
  the archive holds no post twice and none that is not in the input, the
  committed offsets never move back, and a copy recovered the way a restart
  recovers it passes ``verify_archive`` and keeps every readable post.

At the end the collector has exited 0, both groups have committed up to the
end of their topics (no stuck group), ``monitor archive verify`` passes and
every valid post of the input is in the archive exactly once.

Where the kills land (shuffled plan):

- ``worker``: a worker at a random instant while it processes;
- ``rebalance``: the moment a worker logs that its group is rebalancing
  (aiokafka's heartbeat warning, after the other worker died or rejoined),
  plus a random 0-300 ms: during the revoke/join/sync of the rebalance;
- ``archiver``: the archiver at a random instant while it archives;
- ``commit``: the moment a segment file of the archive grows (a flush has
  appended and is fsyncing), before the offsets of that flush are committed;
  an archiver kill counts as inside the fsync/commit window when the archive
  holds posts that are not below the committed offsets (durable, not yet
  acknowledged): restart must neither lose nor duplicate them;
- ``collector``: ``monitor collect`` (``resume=true``) at a random instant.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from monitor.sinks.manifest import DATA_SUFFIX, day_folders
from tests.support.crash import (
    Input,
    assert_recovery_keeps,
    committed_cursor,
    complete_frames,
    write_input,
)
from tests.support.monitor_process import MonitorProcess, verified_ids
from tests.support.scaleout import PROCESSED, Pipeline
from tests.support.tansu import Tansu

SEED = int(os.environ.get("RELIABILITY_SEED", "9"))
#: a rebalance kill comes with a worker kill of the other worker, which starts the rebalance
KILLS = {"worker": 4, "rebalance": 5, "archiver": 5, "commit": 6, "collector": 3}
POSTS = 5_000
#: the input's posts are 120 s of event time apart: 5,000 last about 150 s at this pace,
#: which must outlast the kills (at 5500x, ~110 s, it ran out first twice once `monitor
#: collect` started ~1 s sooner, importing only its own command's libraries)
SPEED = "4000x"
#: of both consumer groups: a killed member's partitions move after this many seconds
SESSION = 3.0
REBALANCING = "because it is rebalancing"
ARCHIVED = "social_archive_posts_total"
RECEIVED = "social_posts_received_total"

Offsets = dict[int, int]


class TopicLog:
    """The keys (post ids) of one topic by partition and offset, read from outside any group."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self.topic = topic
        self.partitions = [TopicPartition(topic, p) for p in range(partitions)]
        self.keys: dict[int, list[str]] = {p: [] for p in range(partitions)}
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)

    async def start(self) -> None:
        await self.consumer.start()
        self.consumer.assign(self.partitions)
        await self.consumer.seek_to_beginning(*self.partitions)

    async def catch_up(self) -> None:
        """Read every partition to the end it has now."""
        ends = await self.consumer.end_offsets(self.partitions)
        while [tp for tp in self.partitions if await self.consumer.position(tp) < ends[tp]]:
            batches = await self.consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                keys = self.keys[tp.partition]
                for record in records:
                    assert record.offset == len(keys), f"{tp}: offset {record.offset} skipped"
                    assert record.key is not None
                    keys.append(record.key.decode())

    def below(self, offsets: Offsets) -> set[str]:
        """The ids of the records below ``offsets`` (per partition; read that far first)."""
        short = {p: (end, len(self.keys[p])) for p, end in offsets.items()
                 if end > len(self.keys[p])}
        assert not short, f"{self.topic}: committed beyond the records read: {short}"
        return {key for p, end in offsets.items() for key in self.keys[p][:end]}

    def ends(self) -> Offsets:
        return {p: len(keys) for p, keys in self.keys.items()}


class Committed:
    """A group's committed offsets on a topic, asked without joining the group."""

    def __init__(self, bootstrap: str, group: str, topic: str, partitions: int) -> None:
        self.partitions = [TopicPartition(topic, p) for p in range(partitions)]
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                         enable_auto_commit=False)

    async def start(self) -> None:
        await self.consumer.start()

    async def now(self) -> Offsets:
        return {tp.partition: await self.consumer.committed(tp) or 0 for tp in self.partitions}


@dataclass
class Kill:
    """One kill: what it aimed at and what it found."""

    kind: str
    at: float
    flowing: bool  # the collector was still producing
    #: archiver kills: the archive held posts not yet acknowledged (the kill came after
    #: an fsync, before the commit of its offsets)
    in_window: bool = False
    grown_after: float | None = None  # commit: seconds until a segment file grew
    rebalancing: bool = False  # rebalance: the victim had logged the rebalance
    #: worker kills: posts the workers' commit acknowledged into tagged; archiver kills:
    #: posts acknowledged as durable (below the archiver's commit), and posts archived
    acknowledged: int = 0
    archived: int = 0


@dataclass
class Campaign:
    pipeline: Pipeline
    source: Input
    rng: random.Random
    collector: MonitorProcess
    tagged: TopicLog
    posts: TopicLog
    archived: Committed
    processed: Committed
    started: float = field(default_factory=time.monotonic)
    kills: list[Kill] = field(default_factory=list)
    last_archived: Offsets = field(default_factory=dict)
    last_cursor: int = 0

    @property
    def flowing(self) -> bool:
        return self.collector.proc is not None and self.collector.proc.returncode is None

    def logs(self) -> str:
        p = self.pipeline
        return "\n".join(f"--- {name}\n{proc.log}" for name, proc in
                         (("worker0", p.workers[0]), ("worker1", p.workers[1]),
                          ("archiver", p.archiver), ("collector", self.collector)))

    async def working(self, process: MonitorProcess, metric: str, timeout: float = 40) -> None:
        """Until ``process`` (maybe just restarted) has done some work: it holds partitions."""
        try:
            async with asyncio.timeout(timeout):
                while await self.pipeline.metric(process, metric) <= 0:
                    await asyncio.sleep(0.05)
        except TimeoutError:
            pytest.fail(f"a restarted process did no work within {timeout} s (a stuck group?)"
                        f"\n{self.logs()}")

    async def kill(self, process: MonitorProcess) -> None:
        assert process.proc is not None and process.proc.returncode is None, self.logs()
        process.proc.send_signal(signal.SIGKILL)
        assert await process.proc.wait() == -signal.SIGKILL

    async def kill_worker(self, kind: str) -> None:
        victim = self.rng.choice(self.pipeline.workers)
        await self.working(victim, PROCESSED)
        if kind == "rebalance":
            other = self.pipeline.workers[1 - self.pipeline.workers.index(victim)]
            await self.working(other, PROCESSED)
            seen = sum(REBALANCING in line for line in victim.lines)
            # its eviction, then its restart, make the group rebalance
            trigger = Kill("worker", time.monotonic() - self.started, self.flowing)
            await self.kill(other)
            await self.check_workers(trigger)
            self.kills.append(trigger)
            await other.start()
            kill = Kill(kind, time.monotonic() - self.started, self.flowing)
            until = time.monotonic() + 6 * SESSION
            while time.monotonic() < until and \
                    sum(REBALANCING in line for line in victim.lines) <= seen:
                await asyncio.sleep(0.005)
            kill.rebalancing = sum(REBALANCING in line for line in victim.lines) > seen
            await asyncio.sleep(self.rng.uniform(0.0, 0.3))
        else:
            kill = Kill(kind, time.monotonic() - self.started, self.flowing)
            await asyncio.sleep(self.rng.uniform(0.0, 1.5))
        await self.kill(victim)
        await self.check_workers(kill)
        self.kills.append(kill)
        await victim.start()

    async def kill_archiver(self, kind: str) -> None:
        archiver = self.pipeline.archiver
        await self.working(archiver, ARCHIVED)
        kill = Kill(kind, time.monotonic() - self.started, self.flowing)
        if kind == "commit":
            kill.grown_after = next_flush(self.pipeline.archive)  # blocks the loop: no delay
            await self.kill(archiver)
        else:
            await asyncio.sleep(self.rng.uniform(0.0, 2.0))
            await self.kill(archiver)
        await self.check_archive(kill)
        self.kills.append(kill)
        await archiver.start()

    async def kill_collector(self) -> None:
        assert self.flowing, "the input ran out before the collector kills"
        await self.working(self.collector, RECEIVED)
        kill = Kill("collector", time.monotonic() - self.started, True)
        await asyncio.sleep(self.rng.uniform(0.0, 1.5))
        await self.kill(self.collector)
        await self.check_collector(kill)
        self.kills.append(kill)
        await self.collector.start()

    async def check_workers(self, kill: Kill) -> None:
        """At least once into ``tagged``: every post below the workers' commit is there."""
        committed = await self.processed.now()
        await self.posts.catch_up()
        await self.tagged.catch_up()
        in_tagged = {k for keys in self.tagged.keys.values() for k in keys}
        below = self.posts.below(committed)
        kill.acknowledged = len(below)
        missing = sorted(below - in_tagged)
        assert not missing, (f"{len(missing)} posts committed by the workers are not in "
                             f"tagged: {missing[:5]}; {self.context(kill)}")

    async def check_collector(self, kill: Kill) -> None:
        """Every post on a line at or below the collector's cursor is in ``posts``."""
        cursor = committed_cursor(self.pipeline.folder / "collector", self.source.path)
        assert cursor >= self.last_cursor, f"the cursor moved back; {self.context(kill)}"
        self.last_cursor = cursor
        await self.posts.catch_up()
        acknowledged = self.source.acknowledged(cursor)
        kill.acknowledged = len(acknowledged)
        missing = sorted(acknowledged - self.posts.below(self.posts.ends()))
        assert not missing, (f"{len(missing)} posts below the collector's cursor {cursor} are "
                             f"not in posts: {missing[:5]}; {self.context(kill)}")

    async def check_archive(self, kill: Kill) -> None:
        """Every tagged record below the archiver's commit is in the archive's complete
        frames once; nothing foreign; the commit never moves back; recovery verifies."""
        context = self.context(kill)
        committed = await self.archived.now()
        back = {p: (self.last_archived[p], o) for p, o in committed.items()
                if o < self.last_archived.get(p, 0)}
        assert not back, f"the archiver's committed offsets moved back: {back}; {context}"
        self.last_archived = committed
        await self.tagged.catch_up()
        ids, _torn = complete_frames(self.pipeline.archive)
        kill.archived = len(ids)
        twice = sorted(i for i, n in ids.items() if n > 1)
        assert not twice, f"archived more than once: {twice[:5]}; {context}"
        acknowledged = self.tagged.below(committed)
        kill.acknowledged = len(acknowledged)
        kill.in_window = bool(set(ids) - acknowledged)  # durable, not yet acknowledged
        missing = sorted(acknowledged - set(ids))
        assert not missing, (f"{len(missing)} posts acknowledged as durable are not in the "
                             f"archive: {missing[:5]}; {context}")
        strangers = sorted(set(ids) - self.source.valid_ids)
        assert not strangers, f"posts not in the input: {strangers[:5]}; {context}"
        assert_recovery_keeps(self.pipeline.archive, self.pipeline.folder / "recovered", ids,
                              context)

    def context(self, kill: Kill) -> str:
        return (f"kill {len(self.kills) + 1} ({kill.kind} at {kill.at:.1f} s, seed {SEED})\n"
                f"{self.logs()}")


def segment_files(archive: Path) -> list[Path]:
    return [path for day in day_folders(archive) for path in day.glob("*" + DATA_SUFFIX)] \
        if archive.is_dir() else []


def next_flush(archive: Path, timeout: float = 10.0) -> float | None:
    """Busy-wait until a segment file grows (a flush appended a frame and is fsyncing;
    the commit of its offsets follows within milliseconds); seconds waited, None: no flush."""
    started = time.monotonic()
    paths = segment_files(archive)
    sizes = [os.stat(p).st_size for p in paths]
    rounds = 0
    while (waited := time.monotonic() - started) < timeout:
        for path, size in zip(paths, sizes, strict=True):
            if os.stat(path).st_size != size:
                return waited
        rounds += 1
        if rounds % 50 == 0 and len(segment_files(archive)) != len(paths):
            return waited  # a flush began a new file (a new day or source)
    return None


@contextlib.asynccontextmanager
async def started(*clients: TopicLog | Committed) -> AsyncIterator[None]:
    for client in clients:
        await client.start()
    try:
        yield
    finally:
        for client in clients:
            await client.consumer.stop()


@pytest.mark.timeout(300)
async def test_sigkill_workers_and_archiver_loses_and_duplicates_no_acknowledged_post(
        tmp_path: Path, tansu: Tansu) -> None:
    rng = random.Random(SEED)
    source = write_input(tmp_path / "input.jsonl", posts=POSTS, seed=SEED, rng=rng)
    pipeline = Pipeline(tmp_path, tansu, "kills", session_timeout=SESSION)
    collector = MonitorProcess(tmp_path, argv=pipeline.collect_argv(
        f"replay:{source.path}?speed={SPEED}&resume=true"))
    partitions = pipeline.partitions
    campaign = Campaign(
        pipeline, source, rng, collector,
        tagged=TopicLog(tansu.bootstrap, pipeline.tagged, partitions),
        posts=TopicLog(tansu.bootstrap, pipeline.posts, partitions),
        archived=Committed(tansu.bootstrap, pipeline.archive_group, pipeline.tagged,
                           partitions),
        processed=Committed(tansu.bootstrap, pipeline.name, pipeline.posts, partitions))
    plan = [kind for kind, count in KILLS.items() for _ in range(count)]
    rng.shuffle(plan)
    try:
        await pipeline.start()
        await collector.start()
        async with started(campaign.tagged, campaign.posts, campaign.archived,
                           campaign.processed):
            for kind in plan:
                if kind in ("worker", "rebalance"):
                    await campaign.kill_worker(kind)
                elif kind == "collector":
                    await campaign.kill_collector()
                else:
                    await campaign.kill_archiver(kind)
            killed_at = time.monotonic() - campaign.started

            # the collector ends, the groups catch up to the end of their topics, all stop
            async with asyncio.timeout(120):
                assert await collector.proc.wait() == 0, collector.log  # type: ignore[union-attr]
                await campaign.posts.catch_up()
                while await campaign.processed.now() != campaign.posts.ends():
                    await asyncio.sleep(0.2)
                await campaign.tagged.catch_up()
                while await campaign.archived.now() != campaign.tagged.ends():
                    await asyncio.sleep(0.2)
                    await campaign.tagged.catch_up()
            await pipeline.stop()
            elapsed = time.monotonic() - campaign.started
    finally:
        pipeline.kill()
        collector.kill()

    kills = campaign.kills
    summary = Counter(k.kind for k in kills)
    assert len(kills) >= 20
    assert sum(k.flowing for k in kills) >= 20, "the input ran out before the kills did"
    window = [k for k in kills if k.kind == "commit" and k.in_window]
    assert len(window) >= 3, "too few kills landed between an fsync and its commit"
    assert sum(k.rebalancing for k in kills) >= 3, "too few kills came during a rebalance"
    ids = Counter(await verified_ids(pipeline.archive))
    assert set(ids) == source.valid_ids
    assert set(ids.values()) == {1}
    assert campaign.posts.below(campaign.posts.ends()) == source.valid_ids
    print(f"\nseed {SEED}: {len(kills)} kills {dict(summary)} in {killed_at:.0f} s, "
          f"{sum(k.flowing for k in kills)} while posts flowed; commit kills inside the "
          f"fsync/commit window: {len(window)}/{summary['commit']} (random archiver kills: "
          f"{sum(k.in_window for k in kills if k.kind == 'archiver')}/{summary['archiver']}), "
          f"flush seen after {[round(k.grown_after or -1, 3) for k in kills if k.kind == 'commit']}"
          " s; "
          f"rebalance kills after the rebalance was logged: "
          f"{sum(k.rebalancing for k in kills)}/{summary['rebalance']}; posts topic "
          f"{sum(len(k) for k in campaign.posts.keys.values())} records, tagged "
          f"{sum(len(k) for k in campaign.tagged.keys.values())} records (re-processing); "
          f"archive {len(ids)} posts once each; {elapsed:.0f} s in all")
    for group in (("worker", "rebalance"), ("archiver", "commit"), ("collector",)):
        print(" / ".join(group) + " kills, posts acknowledged at the kill: " + ", ".join(
            f"{k.acknowledged}" + (f" ({k.archived} archived)" if k.kind in ("archiver", "commit")
                                   else "") for k in kills if k.kind in group))
