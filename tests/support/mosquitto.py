"""A real Mosquitto broker on loopback, on a free port, for the MQTT tests.

    broker = Mosquitto(tmp_path)   # writes mosquitto.conf, picks a free port
    broker.start()                 # returns once the port accepts connections
    broker.stop(); broker.start()  # a restart keeps the port (and, with
                                   # persistence=True, persistent sessions)
    broker.stop()

A missing ``mosquitto`` binary skips the test locally and fails it in CI.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from tests.support.binaries import require_binary
from tests.support.processes import start_listening, terminate

__all__ = ["Mosquitto", "free_port", "password_broker"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class Mosquitto:
    """One broker process; ``extra`` lines go into its listener's config (TLS, auth)."""

    host = "127.0.0.1"

    def __init__(self, workdir: Path, *, persistence: bool = False, anonymous: bool = True,
                 extra: tuple[str, ...] = ()) -> None:
        self.binary = require_binary("mosquitto", "/usr/sbin/mosquitto")
        self.workdir = workdir
        self.port = free_port(self.host)
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        lines = [f"listener {self.port} {self.host}", *extra,
                 f"allow_anonymous {'true' if anonymous else 'false'}",
                 # a subscriber in the same test may lag: queue for it, never drop
                 "max_queued_messages 0",
                 "log_dest stderr", "log_type error", "log_type warning"]
        if os.geteuid() == 0:
            # as root, mosquitto would switch to user 'mosquitto', who cannot use tmp_path
            lines.append("user root")
        if persistence:
            lines += ["persistence true", f"persistence_location {workdir}/"]
        else:
            lines += ["persistence false"]
        self.conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self, prefix: str = "test", scheme: str = "mqtt") -> str:
        return f"{scheme}://{self.host}:{self.port}/{prefix}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start the broker and wait until its port accepts connections."""
        if self.running:
            return
        self._proc = start_listening("mosquitto", [self.binary, "-c", str(self.conf)],
                                     self.log, self.host, self.port, timeout=timeout)

    def stop(self) -> None:
        """Terminate the broker (it saves its state when persistence is on)."""
        proc, self._proc = self._proc, None
        terminate(proc)


def password_broker(workdir: Path, user: str = "bot", password: str = "s3cret-pass") -> Mosquitto:
    """A broker (not started) that lets in only ``user`` with ``password``."""
    passwd = require_binary("mosquitto_passwd", "/usr/bin/mosquitto_passwd")
    password_file = workdir / "passwd"
    subprocess.run([passwd, "-b", "-c", str(password_file), user, password], check=True,
                   capture_output=True)
    password_file.chmod(0o600)
    return Mosquitto(workdir, anonymous=False, extra=(f"password_file {password_file}",))
