"""Shared pytest fixtures."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from httpserver import LocalHTTPServer  # tests/ is on sys.path (rootdir conftest, no __init__)


@pytest.fixture(autouse=True, scope="session")
def _children_take_ctrl_c() -> None:
    """The processes tests interrupt with SIGINT get it as from a terminal.

    A run started in the background by a shell without job control (`nohup pytest &`)
    inherits SIGINT ignored; Python then installs no handler, and every child it starts ignores
    the tests' Ctrl-C as well (seen: "fetch took 30.0 s to stop after SIGINT"). A handler here
    is reset to the default across exec, so the children start as a terminal's would.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def httpserver() -> Iterator[LocalHTTPServer]:
    """A started LocalHTTPServer on 127.0.0.1; stopped after the test."""
    with LocalHTTPServer() as server:
        yield server
