"""monitor.memory: a process's peak RSS, read so a child does not inherit its parent's."""

from __future__ import annotations

import subprocess
import sys

from monitor.memory import peak_rss_mib


def _child(code: str) -> float:
    script = f"from monitor.memory import peak_rss_mib\n{code}\nprint(peak_rss_mib())"
    return float(subprocess.run([sys.executable, "-c", script], check=True,
                                capture_output=True, text=True).stdout)


def test_the_peak_outlives_the_memory_that_made_it() -> None:
    small = _child("")
    peak = _child("block = bytearray(200 << 20)\nblock[::4096] = b'x' * len(block[::4096])\n"
                  "del block")

    assert small < 100
    assert 200 <= peak < small + 260


def test_a_child_does_not_report_its_parents_peak() -> None:
    held = bytearray(300 << 20)
    held[::4096] = b"x" * len(held[::4096])  # touched: resident
    assert peak_rss_mib() >= 300

    assert _child("") < 100  # ru_maxrss would say >= 300 here: Linux keeps it across exec


def test_a_process_that_is_gone_has_no_peak() -> None:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          check=True, capture_output=True, text=True)
    assert peak_rss_mib(int(done.stdout)) == 0.0
