"""Tagging in a second process: how the embedded runtime uses a second core.

spaCy and the regex filter hold the GIL, so a thread cannot tag while the
event loop moderates, counts and archives; a process can. The child compiles
the ruleset it is sent and tags batches of (text, language, hashtags) sent
over a pipe, in order; the runtime keeps a batch in the child and the next
one in the pipe while it finishes the one before
(:class:`monitor.runtime.local.LocalRuntime`). One thread sends requests and
another reads answers, so the child need not wait for its next batch while
an answer is read.

A child that dies or stops answering costs no post: the caller gets
:class:`TaggerGone`, tags that batch itself and starts another child.
Rules that do not compile are the child's answer, not its death: the start
or the reload raises :class:`RulesetError` with the child's problems, so the
caller need not compile them itself to find out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from monitor.memory import freeze_long_lived, peak_rss_mib, tune_for_streams
from monitor.model import Tags
from monitor.tagging.ruleset import Ruleset, RulesetError

__all__ = ["TaggedBatch", "TaggerGone", "TaggerProcess", "usable_cpus", "wanted"]

log = logging.getLogger(__name__)

Item = tuple[str, str | None, tuple[str, ...]]

#: seconds the child may take to compile a ruleset and answer "ready"
START_TIMEOUT = 120.0
#: seconds one batch may take (a refresh or new rules compile first: ~5 s)
ANSWER_TIMEOUT = 60.0


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def wanted(setting: bool | None, cpus: int | None = None) -> bool:
    """Whether to tag in a second process: as set, or (None, "auto") when two or more
    CPUs are usable. On one CPU the two processes would take turns, and pickling costs
    each post ~10 µs more; on two, the event loop keeps up with ~1.7x the posts."""
    if setting is not None:
        return setting
    return (usable_cpus() if cpus is None else cpus) >= 2


class TaggerGone(RuntimeError):
    """The tagging process died or closed its pipe; the batch was not tagged."""


@dataclass(slots=True)
class TaggedBatch:
    """One batch's answer: its tags (None: that post broke tagging) and the ruleset used."""

    tags: Sequence[Tags | None]
    ruleset_name: str
    ruleset_hash: str


def _serve(conn: Connection, ruleset: Ruleset, refresh_every: int) -> None:
    """The child: compile, then answer requests in order until "stop" or the parent is gone.

    While no request waits, it builds the tagger's refresh (monitor/tagging/refresh.py)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    from monitor.processor import tag_isolated
    from monitor.tagging import Tagger, compile_ruleset
    from monitor.tagging.refresh import FORCED_STEP_SECONDS, IDLE_STEP_SECONDS, Refresh

    freeze_long_lived()  # the imports; a reload's or a refresh's old tagger is collected
    try:
        tagger = Tagger(compile_ruleset(ruleset))
    except RulesetError as exc:
        conn.send(("refused", exc.problems))
        return
    refresh = Refresh(refresh_every)
    tune_for_streams()
    conn.send(("ready", tagger.ruleset.hash))
    while True:
        try:
            while refresh.pending and not conn.poll():
                tagger = refresh.step(IDLE_STEP_SECONDS) or tagger
            kind, payload = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone: so is the work
        if kind == "stop":
            return
        if kind == "rules":
            try:
                tagger = Tagger(compile_ruleset(payload))
            except RulesetError as exc:  # the old rules stay
                conn.send(("refused", exc.problems))
                continue
            refresh.cancel()
            conn.send(("ready", tagger.ruleset.hash))
            continue
        ids, items = payload
        if refresh.pending:
            tagger = refresh.step(FORCED_STEP_SECONDS) or tagger
        answer = tag_isolated(tagger, items, ids)
        refresh.counted(tagger, len(items))
        conn.send((answer, tagger.ruleset.name, tagger.ruleset.hash))


class TaggerProcess:
    """One child process that tags; ``await tag(...)`` from the event loop."""

    def __init__(self, ruleset: Ruleset, *, refresh_every: int = 50_000) -> None:
        self.ruleset = ruleset
        self.refresh_every = refresh_every
        self._conn: Connection | None = None
        self._process: Any = None
        #: the highest peak RSS (MiB) of the children let go so far, for the benchmark
        self.peak_rss_mib = 0.0
        #: one thread sends every request and another reads every answer, each in call
        #: order, so answers pair with requests. One thread doing whole round trips left
        #: the child idle ~11% of the time: after each answer it waited while the answer
        #: was read and the next batch pickled and sent, each waiting for the GIL.
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tagger-send")
        self._answers = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tagger-answers")
        #: counts the children started (on the sending thread): an answer is read from
        #: the child its request went to, or not at all
        self._generation = 0
        self._letting_go = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        """Spawn the child and wait until it has compiled the ruleset (once: a running
        child is kept)."""
        await asyncio.get_running_loop().run_in_executor(self._io, self._start)

    def cpu_seconds(self) -> float:
        """CPU time the running child has used so far (Linux; 0.0 elsewhere)."""
        try:
            with open(f"/proc/{self.pid}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, TypeError):
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _start(self) -> None:
        if self._conn is not None:
            return
        context = multiprocessing.get_context("spawn")  # no fork of a loop with threads
        parent, child = context.Pipe()
        process = context.Process(target=_serve, args=(child, self.ruleset, self.refresh_every),
                                  name="monitor-tagger", daemon=True)
        try:
            process.start()
        except OSError as exc:  # no interpreter to spawn, no memory, no pids left
            parent.close()
            raise TaggerGone(f"the tagging process could not be started: {exc}") from None
        finally:
            child.close()
        if not parent.poll(START_TIMEOUT):
            process.kill()
            raise TaggerGone(f"the tagging process did not start within {START_TIMEOUT:.0f} s")
        try:
            kind, answer = parent.recv()
        except (EOFError, OSError):
            process.join(5)
            raise TaggerGone(f"the tagging process exited at start (code {process.exitcode})") \
                from None
        if kind == "refused":
            process.join(5)
            parent.close()
            raise RulesetError(answer)
        self._conn, self._process = parent, process
        self._generation += 1
        log.info("tagging in process %d", process.pid)

    async def tag(self, ids: Sequence[str], items: Sequence[Item]) -> TaggedBatch:
        """Tag one batch in the child; raises :class:`TaggerGone` if the child is gone.

        Awaited, the batch is queued for sending before this first suspends. It is
        pickled later, on the sending thread: hence copies, which the caller may change."""
        tags, name, digest = await self._ask(("tag", (list(ids), list(items))), "answer")
        return TaggedBatch(tags, name, digest)

    def _ask(self, request: tuple[str, Any], doing: str) -> asyncio.Future[Any]:
        """Queue ``request`` on the sending thread and the read of its answer on the
        answering thread, both now: the answer, or :class:`TaggerGone` if the child is
        gone or takes more than ANSWER_TIMEOUT to ``doing`` (it is let go)."""
        loop = asyncio.get_running_loop()
        sent: Future[int] = Future()
        sending = loop.run_in_executor(self._io, self._send, request, sent)
        answer = loop.run_in_executor(self._answers, self._receive, doing, sent)
        return asyncio.ensure_future(self._both(sending, answer))

    @staticmethod
    async def _both(sending: asyncio.Future[None], answer: asyncio.Future[Any]) -> Any:
        # both awaited, so neither failure goes unretrieved
        done = await asyncio.gather(sending, answer, return_exceptions=True)
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome
        return done[1]

    def _send(self, request: tuple[str, Any], sent: Future[int]) -> None:
        """Send, then tell the answering thread which child got it (``sent``)."""
        try:
            conn, generation = self._conn, self._generation
            if conn is None:
                raise TaggerGone("the tagging process is not running")
            try:
                conn.send(request)
            except (OSError, ValueError) as exc:  # ValueError: the pipe was closed meanwhile
                self._forget()
                raise TaggerGone(f"the tagging process is gone ({exc.__class__.__name__})") \
                    from None
        except BaseException as exc:  # a pickling error too: the reader must not wait for it
            sent.set_exception(exc)
            raise
        sent.set_result(generation)

    def _receive(self, doing: str, sent: Future[int]) -> Any:
        """The answer to the request ``sent`` went with, read from the child that got it."""
        generation = sent.result()  # the send's TaggerGone, if it failed
        conn = self._conn
        if conn is None or generation != self._generation:  # that child was let go
            raise TaggerGone("the tagging process is gone")
        try:
            if not conn.poll(ANSWER_TIMEOUT):
                self._forget()
                raise TaggerGone(f"the tagging process did not {doing} within "
                                 f"{ANSWER_TIMEOUT:.0f} s; it was killed")
            return conn.recv()
        except (EOFError, OSError, ValueError) as exc:
            self._forget()
            raise TaggerGone(f"the tagging process is gone ({exc.__class__.__name__})") from None

    async def use(self, ruleset: Ruleset) -> None:
        """Tag every batch sent after this one with ``ruleset`` (a reload), once the child
        has compiled it. Raises :class:`RulesetError` if it does not compile (the child
        keeps the old rules) and :class:`TaggerGone` if there is no child to ask (whoever
        compiles ``ruleset`` then sets :attr:`ruleset` for the next child)."""
        kind, answer = await self._ask(("rules", ruleset), "compile the rules")
        if kind == "refused":
            raise RulesetError(answer)
        self.ruleset = ruleset  # a restarted child starts with it too

    async def restart(self) -> None:
        """A new child in place of one that died."""
        await asyncio.get_running_loop().run_in_executor(self._io, self._restart)

    def _restart(self) -> None:
        self._stop_child()
        self._start()

    async def close(self) -> None:
        """Stop the child (it finishes nothing: every batch sent was answered)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._io, self._stop_child)
        self._io.shutdown(wait=True)
        self._answers.shutdown(wait=True)

    def _stop_child(self) -> None:
        self._let_go(ask=True, grace=5.0)

    def _forget(self) -> None:
        """The pipe broke or the child hangs: reap it, whatever state it is in."""
        self._let_go(ask=False, grace=1.0)

    def _let_go(self, *, ask: bool, grace: float) -> None:
        """Close the pipe (first asking the child to stop), wait ``grace`` s, then kill."""
        with self._letting_go:  # both pipe threads may give up on the child at once
            conn, process = self._conn, self._process
            self._conn = self._process = None
        if process is not None:
            self.peak_rss_mib = max(self.peak_rss_mib, peak_rss_mib(process.pid))
        if conn is not None:
            if ask:
                with contextlib.suppress(EOFError, OSError):
                    conn.send(("stop", None))
            conn.close()
        if process is not None:
            process.join(grace)
            if process.is_alive():
                process.kill()
                process.join(5)
