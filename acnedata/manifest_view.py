"""A manifest's items as a pandas DataFrame (pandas is the optional `pandas` extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from acnedata.errors import AcnedataError

if TYPE_CHECKING:
    from acnedata.manifest import Manifest


def to_pandas(manifest: Manifest) -> Any:
    """A DataFrame with one row per item: the flat fields of the exports, plus `path`."""
    try:
        import pandas as pd
    except ImportError:
        raise AcnedataError(
            "Manifest.to_pandas needs pandas: install the pandas extra: "
            "pip install 'acnedata[pandas]'"
        ) from None
    from acnedata.formats.records import FIELDS, flat_records

    frame = pd.DataFrame(flat_records(manifest), columns=list(FIELDS))
    frame["path"] = [str(p) for p in manifest.paths()]
    return frame
