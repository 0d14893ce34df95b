"""acnemodel: train, compare and predict Keras models from acnedata manifests."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["AugmentConfig", "TrainConfig", "load_dataset", "make_model"]

# Lazy attributes: `import acnemodel` (and `acnemodel --help`) must not load TensorFlow.
# train() and compare() live in the submodules of the same name: acnemodel.train.train,
# acnemodel.compare.compare (a package attribute would be shadowed by the submodule).
_LAZY = {
    "load_dataset": "acnemodel.data",
    "AugmentConfig": "acnemodel.augment",
    "make_model": "acnemodel.models",
    "TrainConfig": "acnemodel.train",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'acnemodel' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names (lazy ones included) and the module's dunders, not its helpers."""
    return sorted({*__all__, "__version__", *(n for n in globals() if n.startswith("__"))})
