"""What the windowed detectors remember of one post, as a small JSON record.

Replaying these records in arrival order rebuilds a :class:`Moderator`'s
windows exactly (flood clusters, promoted domains, author bursts), so a
scale-out worker can keep them in a changelog-backed table and the worker
that takes a partition over goes on where the dead one stopped. The records
hold no text and no handle: the event time, the salted author hash, the
untrusted domains and the MinHash signature (24 x 64 bits). Decoding accepts
plain JSON only (the table is read back from a shared broker) and raises
:class:`ValueError` for anything else.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import numpy as np
import orjson

from monitor.moderation.neardup import SIGNATURE_LENGTH

__all__ = ["Remembered"]

_SIGNATURE_BYTES = SIGNATURE_LENGTH * 8
_WIRE = np.dtype("<u8")  # little-endian on the wire, whatever the host


@dataclass(frozen=True, slots=True)
class Remembered:
    """One moderated post's inputs to the windows."""

    time: float
    author: str | None
    domains: tuple[str, ...]
    #: the MinHash row, or None when the text was too short to cluster
    signature: np.ndarray | None

    def to_json(self) -> bytes:
        sig = None if self.signature is None else base64.b64encode(
            self.signature.astype(_WIRE, copy=False).tobytes())
        return orjson.dumps({"t": self.time, "a": self.author, "d": self.domains,
                             "s": sig.decode() if sig else None})

    @classmethod
    def from_json(cls, raw: bytes) -> Remembered:
        try:
            data = orjson.loads(raw)
            time, author, domains, sig = data["t"], data["a"], data["d"], data["s"]
        except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
            raise ValueError(f"not a moderation record: {exc}") from None
        if (not isinstance(time, (int, float)) or isinstance(time, bool)
                or not (author is None or isinstance(author, str))
                or not isinstance(domains, list) or not all(isinstance(d, str) for d in domains)
                or not (sig is None or isinstance(sig, str))):
            raise ValueError("a moderation record field has the wrong type")
        signature = None
        if sig is not None:
            try:
                packed = base64.b64decode(sig, validate=True)
            except binascii.Error as exc:
                raise ValueError(f"signature is not base64: {exc}") from None
            if len(packed) != _SIGNATURE_BYTES:
                raise ValueError(f"signature has {len(packed)} bytes, not {_SIGNATURE_BYTES}")
            signature = np.frombuffer(packed, dtype=_WIRE).astype(np.uint64)
        return cls(float(time), author, tuple(domains), signature)
