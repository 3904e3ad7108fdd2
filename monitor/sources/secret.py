"""A credential wrapper that never shows its value by accident."""

from __future__ import annotations

__all__ = ["Secret"]


class Secret:
    """A credential shown as ``<secret>`` in reprs, logs and tracebacks; ``reveal()`` uses it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__
