"""acnedata: build legally clean, de-duplicated, labelled image datasets from public sources."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from acnedata.errors import AcnedataError

__version__ = "0.1.0"

# The library logs through `logging` (logger "acnedata.<module>") and never prints; without
# a handler configured by the application, nothing shows (the CLI adds one under --verbose).
logging.getLogger("acnedata").addHandler(logging.NullHandler())

# Lazy attributes: `import acnedata` stays light (no pipeline, no network stack, never
# TensorFlow); each name loads its module on first use.
_LAZY = {
    "Manifest": "acnedata.manifest",
    "load_manifest": "acnedata.manifest",
    "load_spec": "acnedata.spec",
    "Collector": "acnedata.pipeline",
    "import_dataset": "acnedata.importer",
    "verify": "acnedata.export",
    "export_manifest": "acnedata.formats",
    "numpy_arrays": "acnedata.loaders",
    "torch_dataset": "acnedata.loaders",
}

__all__ = ["AcnedataError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'acnedata' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names (lazy ones included) and the module's dunders, not its helpers."""
    return sorted({*__all__, "__version__", *(n for n in globals() if n.startswith("__"))})
