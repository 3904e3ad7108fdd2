"""Starting and stopping the daemons the tests run (brokers, Prometheus, the monitor),
one way for all of them: a start that waits for the port and shows the log when it
fails, a stop that cannot hang."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["start_listening", "terminate"]


def start_listening(name: str, argv: Sequence[str], log: Path, host: str, port: int, *,
                    timeout: float, env: Mapping[str, str] | None = None,
                    ) -> subprocess.Popen[bytes]:
    """Start ``argv`` with its output appended to ``log``; return once ``host:port``
    accepts connections."""
    with log.open("ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n"
                               f"{log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return process
        time.sleep(0.02)
    terminate(process)
    raise RuntimeError(f"{name} did not listen on {host}:{port} within {timeout}s:\n"
                       f"{log.read_text(errors='replace')}")


def terminate(process: subprocess.Popen[bytes] | None, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; returns once the process is gone."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
