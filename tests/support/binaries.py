"""Find a broker binary; missing is a skip locally and a failure in CI (CI=true)."""

from __future__ import annotations

import os
import shutil

import pytest


def require_binary(name: str, *candidates: str) -> str:
    """Path of the first binary found, or skip (fail when CI=true) naming the package."""
    for candidate in (name, *candidates):
        path = shutil.which(candidate) or (candidate if os.path.isfile(candidate) else None)
        if path:
            return path
    message = f"{name} is not installed (run 'make test-deps' as root, or apt-get install it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)
