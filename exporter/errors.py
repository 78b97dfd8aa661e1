"""Errors raised by the exporter; the CLI turns each into one message and exit code 2.

* ExportError              anything that stops an export (bad input, conflict, failed check)
  + ArtifactInvalidError        the artifact is missing, corrupt, or disagrees with model.json
  + UnsupportedModelError       the artifact asks for something the graph builder cannot express
  + VersionExistsError          the target version is already in the repository (use --force)
  + RepositoryUnwritableError   the repository folder cannot be created or written
  + ValidationFailedError       the exported graph failed a check (checker, parity, reference)
  + VariantFailedError          an edge/mobile variant could not be built or missed its accuracy
"""

from __future__ import annotations


class ExportError(Exception):
    """Base class; ``str(error)`` is the whole message shown to the user."""

    exit_code = 2


class ArtifactInvalidError(ExportError):
    pass


class UnsupportedModelError(ExportError):
    pass


class VersionExistsError(ExportError):
    pass


class RepositoryUnwritableError(ExportError):
    pass


class ValidationFailedError(ExportError):
    pass


class VariantFailedError(ExportError):
    pass
