"""HTTP plumbing the network sources share: the failure type, status kinds, bounded reads."""

from __future__ import annotations

import aiohttp

__all__ = ["SourceFailure", "network_failure", "read_body", "read_upto", "status_kind"]


class SourceFailure(Exception):
    """A request or connection that failed: its ERROR_KINDS kind and the server's wait.

    ``retry_after`` is the delay in seconds the server asked for (Retry-After or a
    rate-limit reset), or None when it named none.
    """

    def __init__(self, kind: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


def status_kind(status: int) -> str:
    """The ERROR_KINDS kind of an HTTP error status."""
    if status == 429:
        return "rate_limited"
    if status in (401, 403):
        return "auth"
    return "http_5xx" if status >= 500 else "http_4xx"


def network_failure(exc: BaseException, what: str | None = None) -> SourceFailure:
    """A ``timeout`` or ``connect`` failure from a network error; ``what`` names the request."""
    kind = "timeout" if isinstance(exc, TimeoutError) else "connect"
    name = exc.__class__.__name__
    if what is None:
        return SourceFailure(kind, f"{name}: {str(exc)[:160]}")
    return SourceFailure(kind, f"{what}: {name}: {str(exc)[:160] or name}")


async def read_body(resp: aiohttp.ClientResponse, limit: int, what: str,
                    kind: str = "protocol") -> bytes:
    """The whole body, or a ``kind`` SourceFailure as soon as it is known to pass ``limit``."""
    if (resp.content_length or 0) > limit:
        raise SourceFailure(kind, f"{what}: response of {resp.content_length} bytes, over {limit}")
    body = bytearray()
    async for chunk in resp.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > limit:
            raise SourceFailure(kind, f"{what}: response over {limit} bytes")
    return bytes(body)


async def read_upto(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most the first ``limit`` bytes of a body (an error response's explanation)."""
    body = bytearray()
    async for chunk in resp.content.iter_chunked(limit):
        body += chunk
        if len(body) >= limit:
            break
    return bytes(body[:limit])
