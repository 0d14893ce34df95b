"""acnedata: build legally clean, de-duplicated, labelled image datasets from public sources."""

from acnedata.errors import AcnedataError

__version__ = "0.1.0"

__all__ = ["AcnedataError", "__version__"]
