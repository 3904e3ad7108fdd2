"""Keyed pseudonyms for authors, so the archive never holds a raw handle.

A pseudonym is ``HMAC-SHA256(key, handle)``, hex, truncated to 128 bits: the
same author gets the same pseudonym across days and restarts (researchers can
still count posts per author), yet nobody without the key can test a guessed
handle against the archive, which a plain hash would allow. The key comes from
the environment (``MONITOR_PSEUDONYM_KEY``) or from a key file generated once
with owner-only permissions; it is never logged, never in ``repr`` and never
written next to the data.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "DEFAULT_KEY_FILE",
    "ENV_KEY",
    "MIN_KEY_BYTES",
    "PseudonymKeyError",
    "Pseudonymizer",
]

log = logging.getLogger(__name__)

#: Environment variable holding the key (any text of at least MIN_KEY_BYTES bytes).
ENV_KEY = "MONITOR_PSEUDONYM_KEY"
#: Where a key is generated when the environment does not give one.
DEFAULT_KEY_FILE = Path("state/pseudonym.key")
#: Shorter keys are guessable; 16 bytes is the HMAC-SHA256 security floor we accept.
MIN_KEY_BYTES = 16
#: Hex characters kept from the digest: 128 bits, collision-free for any real author count.
_DIGEST_HEX = 32
_CACHE_MAX = 65_536


class PseudonymKeyError(ValueError):
    """The key cannot be loaded or created; the message names the file and the fix."""


class Pseudonymizer:
    """Maps a raw handle to a stable keyed pseudonym; callable, cheap on the hot path.

    Results are cached (bounded) because a few prolific authors write most
    posts; the cache is dropped wholesale when full rather than tracked as an
    LRU, which keeps the per-post cost to one dict lookup.
    """

    __slots__ = ("_cache", "_key")

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise PseudonymKeyError(
                f"pseudonym key is {len(key)} bytes, at least {MIN_KEY_BYTES} are needed"
            )
        self._key = bytes(key)
        self._cache: dict[str, str] = {}

    def __call__(self, handle: str) -> str:
        cached = self._cache.get(handle)
        if cached is not None:
            return cached
        digest = hmac.digest(self._key, handle.encode("utf-8", "surrogatepass"), "sha256")
        pseudonym = digest.hex()[:_DIGEST_HEX]
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[handle] = pseudonym
        return pseudonym

    def __repr__(self) -> str:
        return "Pseudonymizer(key=<hidden>)"

    @classmethod
    def load(
        cls,
        key_file: Path | str = DEFAULT_KEY_FILE,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> Pseudonymizer:
        """The key from ``MONITOR_PSEUDONYM_KEY`` if set, else from ``key_file``.

        A missing key file is generated (32 random bytes, hex, mode 0600, its
        folder 0700). Losing the file means new pseudonyms from then on, so it
        belongs with the monitor's state, backed up, not with the archive.
        """
        env = os.environ if environ is None else environ
        if ENV_KEY in env:
            text = env[ENV_KEY].strip()
            try:  # hex, as in the key file, so the same key gives the same pseudonyms
                value = bytes.fromhex(text)
            except ValueError:  # or any passphrase, taken as its UTF-8 bytes
                value = text.encode("utf-8")
            if len(value) < MIN_KEY_BYTES:
                raise PseudonymKeyError(
                    f"{ENV_KEY} is {len(value)} bytes long; set it to at least "
                    f"{MIN_KEY_BYTES} random characters, or unset it to use a key file"
                )
            return cls(value)
        return cls(_read_or_create_key(Path(key_file)))


def _read_or_create_key(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return _create_key(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise PseudonymKeyError(
            f"{path}: cannot read the pseudonym key ({exc.__class__.__name__}); "
            f"fix its permissions or set {ENV_KEY}"
        ) from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise PseudonymKeyError(
            f"{path}: not a hex key; restore it from backup (deleting it changes every "
            f"pseudonym from now on)"
        ) from None
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(
            f"{path}: key is {len(key)} bytes, at least {MIN_KEY_BYTES} are needed; "
            f"restore it from backup"
        )
    if path.stat().st_mode & 0o077:
        log.warning("%s: pseudonym key is readable by others; run chmod 600 on it", path)
    return key


def _create_key(path: Path) -> bytes:
    key = secrets.token_bytes(32)
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process created it between our read and our open: use theirs.
        return _read_or_create_key(path)
    except OSError as exc:
        raise PseudonymKeyError(
            f"{path}: cannot create the pseudonym key ({exc.strerror}); "
            f"make its folder writable or set {ENV_KEY}"
        ) from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, key.hex().encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    log.info("%s: generated a new pseudonym key; back it up with the monitor's state", path)
    return key
