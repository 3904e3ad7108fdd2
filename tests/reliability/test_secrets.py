"""Secrets stay in the environment: not in output, archive or state, whatever happens.

One real ``monitor run`` with credentials in its environment only: Reddit
with a good client id and secret (it archives posts; the fake server issues
access tokens), X with a bearer token the server refuses (authentication
fails, is logged and counted), and the pseudonym key. After a clean stop,
every secret (and its Basic-auth and raw-key forms) is looked for in stdout,
stderr, and every file the run wrote (archive decompressed, state); archive
files and folders are owner-only. The per-collector tests check ``repr`` and
log records; this one checks everything a run leaves behind.
"""

from __future__ import annotations

import base64
import os
import signal
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

import zstandard
from prometheus_client.parser import text_string_to_metric_families

from monitor.privacy import ENV_KEY
from monitor.sources.reddit import ENV_CLIENT_ID, ENV_CLIENT_SECRET
from monitor.sources.x import ENV_TOKEN as ENV_X_TOKEN
from tests.support.fake_apis import FakeReddit, FakeX, link
from tests.support.monitor_process import child_env, metrics_url_in, run_command

PSEUDONYM_KEY = "a1" * 32
WRONG_X_TOKEN = "x-bearer-the-server-refuses-0123456789"
POSTS = 6


def metric(url: str, name: str, **labels: str) -> float:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return sum(s.value for family in text_string_to_metric_families(text)
               for s in family.samples if s.name == name and labels.items() <= s.labels.items())


def everything_written(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``, zstd data files decompressed."""
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name.endswith(".zst"):
            data = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True).read()
        found[str(path.relative_to(folder))] = data
    return found


def test_credentials_appear_in_no_output_archive_or_state_file(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    with FakeReddit(client_secret="reddit-secret-9f8e7d6c5b4a") as reddit, \
            FakeX(token="x-bearer-the-server-wants-5a4b3c") as x:
        reddit.add(*[link(f"1zz{n}", f"Post {n}: I miss 4o", f"written by {n}",
                          author=f"author{n}", created=1755079200.0 + n) for n in range(POSTS)])
        env = child_env(["MONITOR_"], **{
            ENV_CLIENT_ID: reddit.client_id, ENV_CLIENT_SECRET: reddit.client_secret,
            ENV_X_TOKEN: WRONG_X_TOKEN, ENV_KEY: PSEUDONYM_KEY})
        command = run_command(f"reddit:r/ChatGPT?every=1&api={reddit.url}&auth={reddit.url}",
                              folder, extra=("--source", f"x:{x.url}"))
        out, err = tmp_path / "stdout", tmp_path / "stderr"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(command, cwd=folder, env=env, stdout=stdout, stderr=stderr)
        try:
            deadline = time.monotonic() + 60
            while (url := metrics_url_in(err.read_text().splitlines())) is None:
                assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
                time.sleep(0.05)
            while not (metric(url, "social_archive_posts_total", source="reddit") >= POSTS
                       and metric(url, "social_source_errors_total", source="x",
                                  kind="auth") >= 1):
                assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, err.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        secrets = [reddit.client_secret, *reddit.tokens, x.token, WRONG_X_TOKEN, PSEUDONYM_KEY]
    assert reddit.tokens, "the run never authenticated to Reddit"
    forms = [s.encode() for s in secrets] + [
        base64.b64encode(f"{reddit.client_id}:{reddit.client_secret}".encode()),
        bytes.fromhex(PSEUDONYM_KEY), base64.b64encode(bytes.fromhex(PSEUDONYM_KEY))]
    written = {"stdout": out.read_bytes(), "stderr": err.read_bytes(),
               **everything_written(folder)}
    assert any(name.endswith(".jsonl.zst") for name in written), sorted(written)
    assert b"authentication" in written["stderr"] or b"401" in written["stderr"]
    leaks = [(name, form[:12]) for name, data in written.items() for form in forms
             if form in data]
    assert not leaks, f"secrets found in {leaks}"
    assert b"author3" not in b"".join(written.values())  # pseudonymized, never stored raw

    archive = folder / "archive"
    for path in [archive, *archive.rglob("*")]:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"
