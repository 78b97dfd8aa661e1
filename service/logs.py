"""Structured logs: one JSON object per line, with the id of the request being served.

The request id lives in a context variable set by the middleware, so any log call made while
serving a request (registry, dataplane, an exception handler) carries it without passing it on.
"""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

import orjson

request_id: ContextVar[str] = ContextVar("request_id", default="")

# LogRecord attributes that are not "extra" fields
# (uvicorn adds "color_message", the message with ANSI colours: noise in JSON)
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            entry["request_id"] = rid
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD and k != "request_id"}
        rid = getattr(record, "request_id", "") or request_id.get()
        suffix = (f" [{rid}]" if rid else "") + "".join(f" {k}={v}" for k, v in extra.items())
        return super().format(record) + suffix


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Route the service's and uvicorn's loggers to stdout in the chosen format (idempotent).

    Stdout, because that is where containers and process managers collect an app's logs."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    for name in ("service", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
