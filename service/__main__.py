"""``python -m service`` / ``service``: serve a model repository.

Every Settings field is a flag (``--poll-interval`` for ``poll_interval``); a flag given on the
command line wins over its ``SERVICE_<NAME>`` environment variable, which wins over the default.
Bad values exit with status 2 and one message naming the flag and what it expects.
"""

from __future__ import annotations

import argparse
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from service.config import Settings
from service.logs import configure_logging


def _flag_type(annotation: Any) -> dict[str, Any]:
    args = typing.get_args(annotation)
    if annotation is bool:
        return {"action": argparse.BooleanOptionalAction}
    if typing.get_origin(annotation) is typing.Literal:
        return {"choices": list(args)}
    if typing.get_origin(annotation) is typing.Annotated or typing.get_origin(annotation) is list:
        return {"type": str, "metavar": "A,B,..."}
    if annotation in (int, float, Path):
        return {"type": annotation}
    return {"type": str}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="service",
        description="Serve every ONNX model of a model repository over TF Serving REST and the Open Inference "
        "Protocol (V2). Each flag can also be set as the environment variable SERVICE_<NAME>.",
        argument_default=argparse.SUPPRESS,
    )
    for name, field in Settings.model_fields.items():
        default = "chosen from the CPU count" if name == "workers" else field.get_default(call_default_factory=True)
        help_text = f"{(field.description or '').replace('``', '')} [env SERVICE_{name.upper()}; default: {default}]"
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, help=help_text, **_flag_type(field.annotation))
    return parser


def parse_settings(argv: Sequence[str] | None = None) -> Settings:
    parser = build_parser()
    values = vars(parser.parse_args(argv))
    try:
        return Settings(**values)
    except ValidationError as e:
        problems = "; ".join(
            f"--{str(err['loc'][0]).replace('_', '-')}: {err['msg']} (got {err.get('input')!r})" for err in e.errors()
        )
        parser.error(problems)  # exits with status 2
        raise  # unreachable: parser.error exits


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_settings(argv)
    if not settings.repository.is_dir():
        print(
            f"service: error: --repository {settings.repository}: no such folder "
            "(expected a model repository: <repository>/<name>/<version>/model.onnx)",
            file=sys.stderr,
        )
        sys.exit(2)
    configure_logging(settings.log_level, settings.log_format)
    from service.server import serve  # uvicorn is imported only to serve, not for --help

    serve(settings)


if __name__ == "__main__":
    main()
