"""monitor.memory: a process's peak RSS, read so a child does not inherit its parent's; the
collector tuned for streaming."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

from monitor.memory import peak_rss_mib, tune_for_streams


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


#: a big block freed (glibc raises its threshold past it), then big buffers that each
#: have a small long-lived neighbour, as batches do beside windows; then the buffers go
_FRAGMENTING = """
import gc
first = bytes(4 << 20)
del first
kept, buffers = [], []
for _ in range(200):
    buffers.append(b"b" * (600 << 10))
    kept.append(b"k" * 1000)
del buffers
gc.collect()
"""


def _resident_after(code: str) -> float:
    script = ("from monitor.memory import tune_for_streams\n" + code
              + "\nprint(next(int(line.split()[1]) for line in open('/proc/self/status')"
                " if line.startswith('VmRSS:')) / 1024)")
    return float(subprocess.run([sys.executable, "-c", script], check=True,
                                capture_output=True, text=True).stdout)


def test_big_freed_blocks_go_back_to_the_system_in_a_streaming_process() -> None:
    untuned = _resident_after(_FRAGMENTING)
    tuned = _resident_after("tune_for_streams()" + _FRAGMENTING)

    # 200 x 600 KiB (117 MiB) freed: glibc kept 76 of it as holes in the heap, tuned none
    assert untuned - tuned > 50, (untuned, tuned)


#: what lives on while posts stream: windows, the dedup ring
_kept: list[list[int]] = []


def _collections_while_streaming(posts: int) -> int:
    """Collections run while batch-lived objects come and go, a long-lived heap held."""
    runs = [0]

    def count(phase: str, _: dict[str, int]) -> None:
        runs[0] += phase == "start"

    gc.callbacks.append(count)
    try:
        for _ in range(posts):
            post = {"text": "x", "tags": [("theme", 1.0)], "flags": (), "links": []}
            del post
            _kept.append([_])
    finally:
        gc.callbacks.remove(count)
        _kept.clear()
    return runs[0]


def test_a_streaming_process_collects_rarely() -> None:
    before = gc.get_threshold()  # an in-process `monitor run` in another test may have tuned it
    try:
        gc.set_threshold(700, 10, 10)  # Python's defaults
        default = _collections_while_streaming(100_000)
        tune_for_streams()
        tuned = _collections_while_streaming(100_000)
    finally:
        gc.set_threshold(*before)

    assert gc.get_threshold() == before
    assert default > 100 and tuned <= 3, (default, tuned)


DEMO = Path(__file__).parent / "tagging" / "rulesets" / "demo"

#: as a streaming process starts: imports, the freeze, then the tagger
_STARTED = """
import gc, json, sys
from monitor.memory import freeze_long_lived
from monitor.tagging import Tagger, compile_ruleset, load_ruleset

ruleset = load_ruleset(sys.argv[1])
freeze_long_lived()
frozen = gc.get_freeze_count()
tagger = Tagger(compile_ruleset(ruleset))
freeze_long_lived()  # again (a fallback compile calls it too): the tagger stays collectable
print(json.dumps({"frozen": frozen, "frozen_after": gc.get_freeze_count(),
                  "walked": len(gc.get_objects())}))
"""


def test_frozen_imports_leave_full_collections_a_fraction_to_walk() -> None:
    done = subprocess.run([sys.executable, "-c", _STARTED, str(DEMO)], check=True,
                          capture_output=True, text=True)
    run = json.loads(done.stdout)

    # spaCy's modules and language data: frozen, never walked again; the tagger: walked
    assert run["frozen"] > 50_000
    assert run["frozen_after"] <= run["frozen"]  # nothing added (frozen objects still die)
    assert run["walked"] < run["frozen"] / 4
