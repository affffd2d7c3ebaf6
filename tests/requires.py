"""External tools the test suite installs (``make test`` runs ``tests/install_*.sh``): a test that needs one
fails when it is missing, so a failed install can never turn into a green run that tested less.

A developer who cannot install a tool says so explicitly: ``HIPBACK_TEST_ALLOW_MISSING=chromium,compose``
(comma-separated names) turns that failure into a skip with the reason, and makes the install script succeed
without the tool.
"""

from __future__ import annotations

import os

import pytest

ALLOW_ENV = "HIPBACK_TEST_ALLOW_MISSING"


def allowed_missing() -> set[str]:
    return {name.strip() for name in os.environ.get(ALLOW_ENV, "").split(",") if name.strip()}


def require_tool(name: str, found: bool, how: str) -> None:
    """Fail the calling test unless the tool ``name`` was ``found``; skip instead when ``name`` is listed in
    ``HIPBACK_TEST_ALLOW_MISSING``. ``how``: how to install it."""
    if found:
        return
    message = f"{name} is not installed ({how})"
    if name in allowed_missing():
        pytest.skip(f"{message}; skipped because {ALLOW_ENV} lists {name}")
    pytest.fail(f"{message}; to skip the tests that need it on purpose, set {ALLOW_ENV}={name}",
                pytrace=False)
