"""An export folder built beside its destination, then swapped in: never a half-written export."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from acnedata.errors import AcnedataError
from acnedata.fsmode import dir_mode

MARKER = ".acnedata-export.json"


def check_destination(out: Path, fmt: str) -> None:
    """Refuse to replace a folder that is not an earlier export of this format."""
    if out.exists() and not out.is_dir():
        raise AcnedataError(f"{out}: is a file; give --out a folder to write the {fmt} export in")
    if out.is_dir() and any(out.iterdir()):
        marker = out / MARKER
        try:
            earlier = json.loads(marker.read_text("utf-8")).get("format")
        except (OSError, ValueError, AttributeError):
            earlier = None
        if earlier != fmt:
            raise AcnedataError(
                f"{out}: folder is not empty and holds no earlier {fmt} export; "
                "give --out a new or empty folder"
            )


@contextmanager
def staged_folder(out: Path, fmt: str, manifest_sha256: str) -> Iterator[Path]:
    """Yield a temporary folder beside `out`; on success it replaces `out` in one rename."""
    out = Path(out)
    check_destination(out, fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        os.chmod(stage, dir_mode())
        yield stage
        marker = {"format": fmt, "manifest_sha256": manifest_sha256}
        (stage / MARKER).write_text(json.dumps(marker) + "\n", "utf-8")
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
        os.replace(stage, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def copy_file(src: Path, dst: Path) -> None:
    """Copy an image into the export (a copy, not a link: editing it must not touch the store)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copyfile(src, dst)
    except OSError as exc:
        raise AcnedataError(
            f"{src}: cannot be copied into the export ({exc.strerror}); "
            "run `acnedata verify` on the manifest's folder"
        ) from None
