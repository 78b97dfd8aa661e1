"""Errors raised by the exporter; the CLI turns each into one message and exit code 2.

* ExportError              anything that stops an export (bad input, conflict, failed check)
  + ArtifactInvalid        the artifact is missing, corrupt, or disagrees with model.json
  + UnsupportedModel       the artifact asks for something the graph builder cannot express
  + VersionExists          the target version is already in the repository (use --force)
  + RepositoryUnwritable   the repository folder cannot be created or written
  + ValidationFailed       the exported graph failed a check (checker, parity, reference)
  + VariantFailed          an edge/mobile variant could not be built or missed its accuracy
"""

from __future__ import annotations


class ExportError(Exception):
    """Base class; ``str(error)`` is the whole message shown to the user."""

    exit_code = 2


class ArtifactInvalid(ExportError):
    pass


class UnsupportedModel(ExportError):
    pass


class VersionExists(ExportError):
    pass


class RepositoryUnwritable(ExportError):
    pass


class ValidationFailed(ExportError):
    pass


class VariantFailed(ExportError):
    pass
