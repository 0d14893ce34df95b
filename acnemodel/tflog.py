"""TensorFlow imported with its C++ start-up log lines kept off the terminal."""

from __future__ import annotations

import os
import re
import sys
import tempfile

# TF_CPP_MIN_LOG_LEVEL hides TensorFlow's own log lines, but absl writes the lines logged before
# absl::InitializeLog() (oneDNN, CUDA stub, ...) straight to file descriptor 2 whatever the
# level: measured with TensorFlow 2.21 at level 3. Only these shapes are dropped; anything
# else written during the import (a Python warning, a real error) is passed on.
_NATIVE_LOG = re.compile(
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IWE]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w.-]+:\d+\] .*"
    rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate .*"
)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow (once) with its native start-up log lines filtered out of stderr."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line
                for line in captured.read().splitlines(keepends=True)
                if not _NATIVE_LOG.fullmatch(line.rstrip(b"\r\n"))
            ]
            if kept:
                os.write(2, b"".join(kept))
