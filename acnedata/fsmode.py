"""File modes under the user's umask: what open() gives, for files made by mkstemp or mkdtemp."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path


@cache
def umask() -> int:
    """The process umask, read without changing it where the platform allows."""
    try:  # Linux: reading it back is free of the set-and-restore race between threads
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def file_mode() -> int:
    """0644 under umask 022: mkstemp's 0600 is for secrets, and these files are for sharing."""
    return 0o666 & ~umask()


def dir_mode() -> int:
    """0755 under umask 022 (mkdtemp makes 0700)."""
    return 0o777 & ~umask()
