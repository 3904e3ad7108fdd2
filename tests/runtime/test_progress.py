"""The progress display: a live line on a terminal, log lines elsewhere."""

from __future__ import annotations

import io
import logging

import pytest

from monitor.runtime.local import RunStats
from monitor.runtime.progress import Progress


class Terminal(io.StringIO):
    """A text stream that says it is a terminal, as sys.stderr does in a shell."""

    def isatty(self) -> bool:
        return True


STATS = RunStats(received=130, rejected=7, processed=120, duplicates=3, flagged=11, archived=118)


def test_auto_picks_tty_on_a_terminal_and_log_elsewhere() -> None:
    assert Progress("auto", stream=Terminal()).mode == "tty"
    assert Progress("auto", stream=io.StringIO()).mode == "log"


def test_on_a_terminal_the_line_is_rewritten_in_place(caplog: pytest.LogCaptureFixture) -> None:
    terminal = Terminal()
    progress = Progress("tty", stream=terminal)
    progress.update(STATS, depth=42)
    progress.update(STATS, depth=0)

    lines = terminal.getvalue().split("\r")
    assert lines[0] == ""  # every write starts by going back to the start of the line
    assert len(lines) == 3
    assert all(line.startswith("\033[K") for line in lines[1:])
    assert "processed 120 | flagged 11 | rejected 7 | duplicates 3 | archived 118 | queue 42" \
        in lines[1]
    assert "\n" not in terminal.getvalue()
    assert not [r for r in caplog.records if r.name == "monitor.progress"]


def test_on_a_terminal_finish_clears_the_line_and_logs_a_summary(
        caplog: pytest.LogCaptureFixture) -> None:
    terminal = Terminal()
    progress = Progress("tty", stream=terminal)
    progress.update(STATS, depth=5)
    with caplog.at_level(logging.INFO, logger="monitor.progress"):
        progress.finish(STATS, depth=0)

    assert terminal.getvalue().endswith("\r\033[K")
    [summary] = [r.getMessage() for r in caplog.records if r.name == "monitor.progress"]
    assert summary.startswith("done in ")
    assert "posts/s (average) | processed 120 | flagged 11 | rejected 7" in summary


def test_elsewhere_progress_goes_to_the_log_not_the_stream(
        caplog: pytest.LogCaptureFixture) -> None:
    stream = io.StringIO()
    progress = Progress("auto", stream=stream, log_every=0.0)
    with caplog.at_level(logging.INFO, logger="monitor.progress"):
        progress.update(STATS, depth=9)
        progress.finish(STATS, depth=0)

    assert stream.getvalue() == ""
    messages = [r.getMessage() for r in caplog.records if r.name == "monitor.progress"]
    assert len(messages) == 2
    assert "processed 120" in messages[0] and messages[0].endswith("queue 9")
    assert messages[1].startswith("done in ")


def test_log_lines_are_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    progress = Progress("log", stream=io.StringIO(), log_every=3600.0)
    with caplog.at_level(logging.INFO, logger="monitor.progress"):
        for _ in range(5):
            progress.update(STATS, depth=0)
    assert not [r for r in caplog.records if r.name == "monitor.progress"]


def test_off_writes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    terminal = Terminal()
    progress = Progress("off", stream=terminal, log_every=0.0)
    with caplog.at_level(logging.INFO, logger="monitor.progress"):
        progress.update(STATS, depth=1)
        progress.finish(STATS, depth=0)
    assert terminal.getvalue() == ""
    assert not [r for r in caplog.records if r.name == "monitor.progress"]


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="progress='fancy': use auto, tty, log or off"):
        Progress("fancy", stream=io.StringIO())
