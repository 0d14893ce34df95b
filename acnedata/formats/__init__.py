"""Exports of a manifest for other training stacks: imagefolder, hf, webdataset, croissant."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from acnedata.errors import AcnedataError
from acnedata.manifest import load_manifest

# format → (module, function, the extra its libraries come in: None for none)
FORMATS: dict[str, tuple[str, str, str | None]] = {
    "imagefolder": ("acnedata.formats.imagefolder", "export_imagefolder", None),
    "hf": ("acnedata.formats.hf", "export_hf", "export"),
    "webdataset": ("acnedata.formats.webdataset", "export_webdataset", None),
    "croissant": ("acnedata.formats.croissant", "export_croissant", None),
}

__all__ = ["FORMATS", "export_manifest"]


def export_manifest(manifest: str | Path, to: str, out: str | Path, **options: Any) -> Path:
    """Export the manifest (file or its folder) to format `to` in folder `out`; return `out`."""
    if to not in FORMATS:
        raise AcnedataError(f"--to {to}: unknown format; use one of {', '.join(FORMATS)}")
    module, function, extra = FORMATS[to]
    try:
        exporter = getattr(importlib.import_module(module), function)
    except ImportError as exc:
        if extra is None:
            raise
        raise AcnedataError(
            f"--to {to} needs {exc.name}: install the {extra} extra: "
            f"pip install 'acnedata[{extra}]'"
        ) from None
    return exporter(load_manifest(manifest), Path(out), **options)
