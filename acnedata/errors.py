"""The one exception hierarchy: configuration and user errors, each a one-line message."""

import errno


class AcnedataError(Exception):
    """A user-facing error whose message names the input and the fix, on one line."""


class SpecError(AcnedataError):
    """A dataset spec is missing, malformed or unknown."""


class NetworkError(AcnedataError):
    """A host could not be used: unreachable, refused by policy, or missing a contact."""


class SourceError(AcnedataError):
    """A source or portal answered with something we cannot use (shape, status, auth)."""


class ManifestError(AcnedataError):
    """A manifest is missing, malformed or does not match its schema."""


class CatalogError(AcnedataError):
    """The catalog cannot be opened or is from an incompatible version."""


class DiskFullError(AcnedataError):
    """The disk holding an output folder is full; what was finished is kept."""

    def __init__(self, folder: object):
        super().__init__(
            f"{folder}: no space left on the disk that holds this folder; free some space, "
            "then run the same command again to resume (nothing finished so far is lost)"
        )


def is_disk_full(exc: BaseException) -> bool:
    """An OSError that says the disk (or the user's quota on it) is full."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
