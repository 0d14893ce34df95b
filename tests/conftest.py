"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from httpserver import LocalHTTPServer  # tests/ is on sys.path (rootdir conftest, no __init__)


@pytest.fixture
def httpserver() -> Iterator[LocalHTTPServer]:
    """A started LocalHTTPServer on 127.0.0.1; stopped after the test."""
    with LocalHTTPServer() as server:
        yield server
