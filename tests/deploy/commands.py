"""Check container commands and environments against the project's real CLIs and settings.

``docker/entrypoint.sh`` dispatches ``serve`` / ``train`` / ``export`` (or bare flags, to serve) to
``python -m service`` / ``trainer`` / ``exporter``; :func:`parse_command` does the same dispatch in
process, with the same argparse parsers, so a manifest or compose file whose arguments or
``SERVICE_*`` variables the program would reject fails here instead of in a cluster.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from exporter.__main__ import parser as exporter_parser
from service.__main__ import parse_settings
from service.config import Settings
from trainer.cli import build_parser as trainer_parser

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_ENV = {f"SERVICE_{name.upper()}" for name in Settings.model_fields}


class CommandError(AssertionError):
    """The program would exit with a usage error for these arguments."""


def parse_command(args: Sequence[str], env: Mapping[str, str] | None = None) -> argparse.Namespace | Settings:
    """What the container would run for ``args`` (its CMD / k8s ``args`` / compose ``command``)."""
    command, *rest = list(args) or ["serve"]
    if command.startswith("-"):
        command, rest = "serve", [command, *rest]
    with _environment(env or {}):
        try:
            if command == "serve":
                return parse_settings(rest)
            if command == "train":
                return trainer_parser().parse_args(rest)
            if command == "export":
                return exporter_parser().parse_args(rest)
        except SystemExit as exc:
            raise CommandError(f"{command} {' '.join(rest)}: rejected (exit {exc.code})") from exc
    raise CommandError(f"{command!r} is not one of the image's commands (serve, train, export)")


def unknown_service_variables(env: Mapping[str, str | None]) -> list[str]:
    """``SERVICE_*`` names that are no Settings field (a typo would be silently ignored)."""
    return sorted(name for name in env if name.startswith("SERVICE_") and name not in SETTINGS_ENV)


def dockerfile_env() -> dict[str, str]:
    """The ``ENV`` values of the Dockerfile's final stage (``KEY=value`` form)."""
    env: dict[str, str] = {}
    final = dockerfile_text().rsplit("\nFROM ", 1)[1]
    for instruction in _instructions(final):
        if instruction.startswith("ENV "):
            for pair in instruction[4:].split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def dockerfile_text() -> str:
    return (ROOT / "Dockerfile").read_text()


def _instructions(text: str) -> Iterator[str]:
    """Dockerfile instructions with line continuations joined and comments dropped."""
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        yield current + stripped
        current = ""


def instructions(text: str | None = None) -> list[str]:
    return list(_instructions(text if text is not None else dockerfile_text()))


@contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("SERVICE_"):
                mp.delenv(name)
        for name, value in env.items():
            mp.setenv(name, value)
        yield
