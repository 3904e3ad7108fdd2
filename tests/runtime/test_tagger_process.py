"""Tagging in a second process (``monitor run --tagger-process``).

The child is a real spawned process compiling the fixture ruleset; the tests
kill it, and its parent, with real signals.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import string
import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from monitor.codec import decode_post
from monitor.model import Post
from monitor.processor import Processor
from monitor.runtime.local import LocalRuntime
from monitor.runtime.tagger_process import Item, TaggerGone, TaggerProcess
from monitor.sinks.metrics import Metrics
from monitor.sources.base import Rejected
from monitor.tagging import RulesetError, Tagger, load_ruleset, load_tagger
from tests.support.monitor_process import MonitorProcess, run_command
from tests.support.sinks import Collecting

SAMPLE = Path(__file__).parents[2] / "samples" / "stream.jsonl"
DEMO_RULES = Path(__file__).parents[1] / "tagging" / "rulesets" / "demo"
BAD_RULES = Path(__file__).parents[1] / "tagging" / "rulesets" / "bad_patterns"


def sample_posts(count: int) -> list[Post]:
    lines = SAMPLE.read_bytes().splitlines()[:count]
    return [decode_post(line) for line in lines]


class Listed:
    """The posts in memory; ``await then(i)`` after the i-th is handed over."""

    name, finite = "replay", True

    def __init__(self, posts: list[Post], then: object = None) -> None:
        self.posts, self.then = posts, then

    async def stream(self) -> AsyncIterator[Post | Rejected]:
        for i, post in enumerate(self.posts):
            yield post
            if self.then is not None:
                await self.then(i)  # type: ignore[operator]
            if i % 64 == 63:
                await asyncio.sleep(0.01)  # a live source: posts arrive while batches are tagged


def outcome(kept: Collecting) -> list[tuple[str, bytes]]:
    """Each post's id with its tags and flags, as the archive would store them."""
    return [(t.post.id, orjson.dumps((t.tags, t.flags, t.ruleset_hash))) for t in kept.posts]


async def run(tagger: Tagger, posts: list[Post], tagger_process: TaggerProcess | None,
              then: object = None) -> tuple[Collecting, int, Processor]:
    """As ``monitor run`` wires it: with a tagging process, this one gets the ruleset only."""
    sink = Collecting()
    processor = Processor(tagger if tagger_process is None else tagger.ruleset)
    runtime = LocalRuntime([Listed(posts, then)], processor, Metrics(tagger.ruleset),
                           None, sinks=[sink], batch_size=64, exit_when_done=True,
                           tagger_process=tagger_process)
    stats = await asyncio.wait_for(runtime.run(), timeout=120)
    return sink, stats.failed, processor


@pytest.fixture(scope="module")
def posts() -> list[Post]:
    return sample_posts(1_500)


async def test_the_second_process_tags_every_post_as_this_one_does(
        tagger: Tagger, posts: list[Post]) -> None:
    here, _, _ = await run(tagger, posts, None)
    there, failed, processor = await run(tagger, posts, TaggerProcess(tagger.ruleset))

    assert failed == 0
    assert len(there.posts) == len({p.id for p in posts})  # the sample repeats a few
    assert outcome(there) == outcome(here)
    assert not processor.compiled  # this process never needed the compiled rules


async def test_the_tagging_process_refreshes_its_tagger_and_tags_the_same(
        tagger: Tagger, posts: list[Post]) -> None:
    here, _, _ = await run(tagger, posts, None)
    there, failed, _ = await run(tagger, posts, TaggerProcess(tagger.ruleset, refresh_every=100))

    assert failed == 0
    assert outcome(there) == outcome(here)  # across a dozen refreshes


async def test_a_killed_tagging_process_costs_no_post(
        tagger: Tagger, posts: list[Post], caplog: pytest.LogCaptureFixture) -> None:
    tagger_process = TaggerProcess(tagger.ruleset)
    killed: list[int] = []

    async def kill_once_underway(i: int) -> None:
        if i == 500:
            async with asyncio.timeout(60):
                while tagger_process.pid is None:  # still compiling the rules
                    await asyncio.sleep(0.01)
            killed.append(tagger_process.pid)
            os.kill(tagger_process.pid, signal.SIGKILL)

    caplog.set_level(logging.INFO, logger="monitor")
    here, _, _ = await run(tagger, posts, None)
    there, failed, processor = await run(tagger, posts, tagger_process, then=kill_once_underway)

    assert killed
    assert failed == 0
    assert outcome(there) == outcome(here)  # every post once, in order, tagged the same
    assert "tagging in this process until a new tagging process is up" in caplog.text
    assert processor.compiled  # compiled here when the child was missed
    assert caplog.text.count("tagging in process") == 2  # and a new one was started


def batches(posts: list[Post], size: int) -> list[tuple[list[str], list[Item]]]:
    """(ids, items) requests of ``size`` posts each (~100 KB pickled: more than a pipe holds)."""
    return [([p.id for p in posts[i:i + size]],
             [(p.text, p.lang, p.hashtags) for p in posts[i:i + size]])
            for i in range(0, len(posts), size)]


async def test_batches_wait_in_the_pipe_and_each_answer_is_its_own(
        tagger: Tagger, posts: list[Post]) -> None:
    tagger_process = TaggerProcess(tagger.ruleset)
    await tagger_process.start()
    try:
        requests = batches(posts, 250)
        # all sent at once: one is tagged while the next ones wait in the pipe
        answers = await asyncio.gather(*(tagger_process.tag(ids, items)
                                         for ids, items in requests))
    finally:
        await tagger_process.close()

    assert [a.tags for a in answers] == [tagger.tag_batch(items) for _, items in requests]


async def test_a_child_killed_with_batches_queued_fails_them_and_the_next_child_answers_its_own(
        tagger: Tagger, posts: list[Post]) -> None:
    tagger_process = TaggerProcess(tagger.ruleset)
    await tagger_process.start()
    requests = batches(posts, 250)
    try:
        pending = [asyncio.ensure_future(tagger_process.tag(ids, items))
                   for ids, items in requests]
        await asyncio.sleep(0.05)  # the first batch in the child, the next ones queued
        assert tagger_process.pid is not None
        os.kill(tagger_process.pid, signal.SIGKILL)
        outcomes = await asyncio.gather(*pending, return_exceptions=True)
        await tagger_process.restart()
        last_ids, last_items = requests[-1]
        after = await tagger_process.tag(last_ids, last_items)
    finally:
        await tagger_process.close()

    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert failed and all(isinstance(o, TaggerGone) for o in failed)
    answered = [(o, items) for o, (_, items) in zip(outcomes, requests, strict=True)
                if not isinstance(o, BaseException)]
    assert all(o.tags == tagger.tag_batch(items) for o, items in answered)
    assert after.tags == tagger.tag_batch(last_items)  # not an answer meant for another batch


async def test_a_batch_that_cannot_be_sent_fails_alone(tagger: Tagger) -> None:
    tagger_process = TaggerProcess(tagger.ruleset)
    await tagger_process.start()
    items = [("Claim your airdrop today", "en", ())]
    try:
        async with asyncio.timeout(30):  # the reader must not wait for an answer never asked
            with pytest.raises(Exception, match="pickle"):
                await tagger_process.tag(["a"], [(lambda: "not a text", "en", ())])  # type: ignore[list-item]
            answer = await tagger_process.tag(["b"], items)
    finally:
        await tagger_process.close()

    assert answer.tags == tagger.tag_batch(items)


async def test_new_rules_reach_the_tagging_process(tagger: Tagger) -> None:
    demo = load_tagger(DEMO_RULES)
    tagger_process = TaggerProcess(tagger.ruleset)
    await tagger_process.start()
    try:
        items = [("Claim your airdrop today", "en", ())]
        before = await tagger_process.tag(["a"], items)
        await tagger_process.use(demo.ruleset)
        after = await tagger_process.tag(["a"], items)
    finally:
        await tagger_process.close()

    assert before.ruleset_hash == tagger.ruleset.hash
    assert (after.ruleset_hash, after.tags) == (demo.ruleset.hash, demo.tag_batch(items))
    # its own peak, read before it was let go: spaCy and two compiled rulesets, no more
    assert 60 < tagger_process.peak_rss_mib < 1024


async def test_rules_the_child_cannot_compile_are_its_answer_not_its_death(
        tagger: Tagger) -> None:
    bad = load_ruleset(BAD_RULES)  # loads; its patterns do not compile
    with pytest.raises(RulesetError) as refused:
        await TaggerProcess(bad).start()
    assert "rules.yaml:14: rule 'grief.lookbehind'" in str(refused.value)

    tagger_process = TaggerProcess(tagger.ruleset)
    await tagger_process.start()
    try:
        with pytest.raises(RulesetError, match=r"rules\.yaml:18: rule 'grief\.backref'"):
            await tagger_process.use(bad)
        items = [("Claim your airdrop today", "en", ())]
        answer = await tagger_process.tag(["a"], items)
    finally:
        await tagger_process.close()

    assert tagger_process.ruleset is tagger.ruleset  # a restarted child gets the old rules too
    assert (answer.ruleset_hash, answer.tags) == (tagger.ruleset.hash, tagger.tag_batch(items))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie has exited: its parent has not reaped it
        return fh.read().rsplit(")", 1)[1].split()[0] != "Z"


async def test_the_tagging_process_ends_with_a_killed_monitor(tmp_path: Path) -> None:
    command = run_command(f"replay:{SAMPLE}?speed=50x", tmp_path)
    monitor = MonitorProcess(tmp_path, argv=[*command[3:], "--tagger-process"])
    await monitor.start()
    try:
        await monitor.wait_for_log("tagging in process", timeout=60)
        line = next(x for x in monitor.lines if "tagging in process" in x)
        child = int(line.rsplit(" ", 1)[1])
        assert _alive(child)
        # the monitor's own process maps no spaCy: only its tagging process compiles
        libraries = {line.split("/site-packages/", 1)[1].split("/", 1)[0] for line in
                     Path(f"/proc/{monitor.proc.pid}/maps").read_text().splitlines()
                     if line.endswith(".so") and "/site-packages/" in line}
        assert "spacy" not in libraries and "numpy" in libraries, sorted(libraries)
        await monitor.stop(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not _alive(child), f"tagging process {child} outlived its monitor\n{monitor.log}"
    finally:
        monitor.kill()


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


async def test_a_stream_of_random_tokens_leaves_the_tagging_process_bounded() -> None:
    """15,000 posts of 40 made-up tokens (spam does this): 600,000 new lexemes, +229 MiB
    in the child if kept. A refresh is due at 50,000 new ones and built at once at
    100,000: measured +28 MiB (+57 at 100,000 and 200,000)."""
    rng = random.Random(4)
    child = TaggerProcess(load_ruleset(DEMO_RULES))
    await child.start()
    try:
        assert child.pid is not None
        await child.tag(["warm"], [("warm up", "en", ())])
        start = peak = _rss_mib(child.pid)
        for batch in range(60):
            items = [(" ".join("".join(rng.choices(string.ascii_lowercase, k=9))
                               for _ in range(40)), "en", ()) for _ in range(250)]
            tagged = await child.tag([f"{batch}-{i}" for i in range(250)], items)
            assert len(tagged.tags) == 250
            peak = max(peak, _rss_mib(child.pid))
    finally:
        await child.close()
    print(f"tagging process: {start:.0f} -> peak {peak:.0f} MiB")
    assert peak - start < 100, (start, peak)
