"""The trainer's one error type for bad input: the CLI turns it into a message and exit code 2."""

from __future__ import annotations


class DataError(ValueError):
    """Training data is missing, unreadable or inconsistent. The message names the file and the expected form."""
