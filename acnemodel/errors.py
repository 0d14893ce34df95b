"""acnemodel's user errors, rooted in acnedata's one-line AcnedataError hierarchy."""

from acnedata.errors import AcnedataError


class ModelError(AcnedataError):
    """A training input cannot be used: missing file, empty class, unknown model, bad option."""


class LeakError(ModelError):
    """A duplicate cluster sits on both sides of the train/test split."""
