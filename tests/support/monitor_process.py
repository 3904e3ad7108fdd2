"""The real ``monitor run`` as a child process, for the sources' acceptance tests.

Two drivers over the same command line (``monitor run --source URI`` with the
fixture ruleset, the archive, key file and state under the test's folder, and
metrics on a port the monitor picks itself, read back from its log):

- ``MonitorProcess``, for ``async`` tests: ``await start()``,
  ``await wait_archived(count)``, ``await stop()`` (SIGTERM, then the exit code);
- ``MonitorRun``, for plain tests: started on construction and a context
  manager; ``wait_until(metric, value, **labels)``, ``stop()``.

Both kill a process still running when they are done with it. ``archived_ids``
and ``verify`` read back what a run left in its archive; every failure message
ends with the tail of the monitor's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Self

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.archive_export import iter_day
from monitor.archive_verify import day_folders

RULES = Path(__file__).parents[1] / "runtime" / "rules"
ARCHIVED = "social_archive_posts_total"
_SERVING = re.compile(r"serving metrics on (http://\S+/metrics)")
#: ``python -m monitor``; a test may run other code that ends in the same module.
MONITOR = ("-m", "monitor")
TAIL = 60


def run_command(source: str, folder: Path, *, python: Sequence[str] = MONITOR,
                extra: Sequence[str] = ()) -> list[str]:
    """``monitor run --source SOURCE [EXTRA]`` with everything it writes kept under ``folder``."""
    return [sys.executable, *python, "run", "--source", source, *extra,
            "--rules", str(RULES), "--archive-dir", str(folder / "archive"),
            "--key-file", str(folder / "key"), "--state-dir", str(folder / "state"),
            "--metrics-addr", "127.0.0.1:0", "--progress", "log"]


def child_env(unset: Iterable[str] = (), **extra: str) -> dict[str, str]:
    """This environment without the pseudonym key and any variable starting with ``unset``."""
    prefixes = ("MONITOR_PSEUDONYM_KEY", *unset)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return {**clean, **extra, "PYTHONUNBUFFERED": "1"}


def log_tail(lines: Sequence[str], count: int = TAIL) -> str:
    return "monitor log (tail):\n" + "\n".join(lines[-count:])


def metrics_url_in(lines: Sequence[str]) -> str | None:
    for line in list(lines):
        if match := _SERVING.search(line):
            return match.group(1)
    return None


def metric_sum(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(s.value for family in text_string_to_metric_families(text)
               for s in family.samples
               if s.name == name and labels.items() <= s.labels.items())


def archived_ids(archive: Path) -> list[str]:
    """The id of every post in the archive, day by day."""
    return [t.post.id for day in day_folders(archive) for t in iter_day(day)]


async def run_cli(*args: str) -> tuple[int, str]:
    """``python -m monitor ARGS``: its exit code and its output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def verify(archive: Path) -> tuple[int, str]:
    """``monitor archive verify ARCHIVE``: its exit code and its report."""
    return await run_cli("archive", "verify", str(archive))


async def verified_ids(archive: Path) -> list[str]:
    """``archived_ids(archive)``, once ``monitor archive verify`` has passed on it."""
    code, report = await verify(archive)
    assert code == 0, report
    return archived_ids(archive)


class MonitorProcess:
    """``monitor run --source SOURCE`` as an asyncio child process.

    ``unset``: prefixes of variables kept from the child (credentials, so a
    source runs without them); ``python``: what runs instead of ``-m monitor``;
    ``argv``: another monitor command line instead of ``run`` (``source`` unused).
    """

    def __init__(self, folder: Path, source: str = "", *, unset: Iterable[str] = (),
                 python: Sequence[str] = MONITOR, argv: Sequence[str] | None = None) -> None:
        self.folder, self.source = folder, source
        self.argv = argv
        self.archive = folder / "archive"
        self.unset, self.python = tuple(unset), tuple(python)
        self.lines: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None

    async def start(self) -> None:
        command = ([sys.executable, *self.python, *self.argv] if self.argv is not None
                   else run_command(self.source, self.folder, python=self.python))
        self.lines = []  # a restart logs afresh (and serves metrics on a new port)
        self.proc = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            env=child_env(self.unset))
        self._pump = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.lines.append(line.decode(errors="replace").rstrip())

    @property
    def log(self) -> str:
        return log_tail(self.lines)

    def _alive(self) -> None:
        assert self.proc is not None and self.proc.returncode is None, self.log

    async def wait_for_log(self, text: str, times: int = 1, timeout: float = 20.0) -> None:
        """Until ``text`` is in ``times`` lines of the log."""
        try:
            async with asyncio.timeout(timeout):
                while sum(text in line for line in self.lines) < times:
                    self._alive()
                    await asyncio.sleep(0.02)
        except TimeoutError:
            pytest.fail(f"{text!r} not logged {times} time(s) within {timeout}s\n{self.log}")

    async def metrics_url(self) -> str:
        async with asyncio.timeout(30):
            while (url := metrics_url_in(self.lines)) is None:
                self._alive()
                await asyncio.sleep(0.05)
        return url

    async def archived(self, session: aiohttp.ClientSession, **labels: str) -> float:
        """social_archive_posts_total, summed over the samples with these labels."""
        async with session.get(await self.metrics_url()) as response:
            return metric_sum(await response.text(), ARCHIVED, **labels)

    async def wait_archived(self, count: int, timeout: float = 20.0, **labels: str) -> None:
        """Until ``count`` posts (with these labels) are archived, and no more."""
        done = -1.0
        try:
            async with aiohttp.ClientSession() as session, asyncio.timeout(timeout):
                while (done := await self.archived(session, **labels)) < count:
                    self._alive()
                    await asyncio.sleep(0.1)
        except TimeoutError:
            pytest.fail(f"only {done:g} of {count} posts archived within {timeout}s\n{self.log}")
        assert done == count, f"{done:g} archived, expected {count}\n{self.log}"

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``sig``; the exit code."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)
        try:
            async with asyncio.timeout(timeout):
                code = await self.proc.wait()
                if self._pump is not None:
                    await self._pump
        except TimeoutError:
            pytest.fail(f"the monitor did not exit within {timeout:g} s of {sig.name}\n{self.log}")
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()


class MonitorRun:
    """``monitor run --source SOURCE`` in ``folder``, started at once, its stderr collected.

    Every ``MONITOR_*`` variable is left out of the child's environment; ``env`` is added;
    ``extra``: more ``monitor run`` flags.
    """

    def __init__(self, folder: Path, source: str, env: dict[str, str],
                 extra: Sequence[str] = ()) -> None:
        self.folder = folder
        self.archive = folder / "archive"
        self.proc = subprocess.Popen(run_command(source, folder, extra=extra), cwd=folder,
                                     text=True,
                                     env=child_env(["MONITOR_"], **env),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def metrics_url(self, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (url := metrics_url_in(self.lines)) is not None:
                return url
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"the monitor never served metrics\n{log_tail(self.lines)}")

    def metric(self, name: str, **labels: str) -> float:
        """The sample of ``name`` with exactly these labels, summed; 0.0 when absent."""
        with urllib.request.urlopen(self.metrics_url(), timeout=5) as response:
            text = response.read().decode()
        return sum(s.value for family in text_string_to_metric_families(text)
                   for s in family.samples if s.name == name and s.labels == labels)

    def wait_until(self, name: str, value: float, timeout: float = 20.0, **labels: str) -> None:
        deadline = time.monotonic() + timeout
        current = 0.0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the monitor exited ({self.proc.returncode})\n"
                                     f"{log_tail(self.lines)}")
            current = self.metric(name, **labels)
            if current >= value:
                return
            time.sleep(0.05)
        raise AssertionError(f"{name}{labels} = {current}, wanted {value}\n"
                             f"{log_tail(self.lines)}")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``sig``, then the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            self.kill()
        self._reader.join(timeout=5)
        return code

    def archived_ids(self) -> list[str]:
        return archived_ids(self.archive)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
