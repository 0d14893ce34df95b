"""The one exception hierarchy: configuration and user errors, each a one-line message."""


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
