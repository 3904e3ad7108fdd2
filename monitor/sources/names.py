"""How the sources name themselves: in each Post's ``collector`` and in their User-Agent."""

from __future__ import annotations

from monitor import __version__

__all__ = ["collector", "user_agent"]


def collector(platform: str) -> str:
    """``monitor/VERSION PLATFORM``: the ``collector`` of every post a built-in source makes."""
    return f"monitor/{__version__} {platform}"


def user_agent(detail: str | None = None) -> str:
    """``social-monitor/VERSION (DETAIL)``: the User-Agent a source sends."""
    return f"social-monitor/{__version__}" + (f" ({detail})" if detail else "")
