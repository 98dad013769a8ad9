"""Structured logs: one JSON object per line, with the request's id and no personal data.

A log line leaves the record's protection (it is shipped, grepped, kept by other teams), so
what the platform logs about a request is its route family (the template, never the path or
query asked: ``?identifier=…|079090001234`` is a citizen ID), method, status, duration and the
request id, which joins the line to the audit trail and to the TLS front's own log
(nginx passes ``X-Request-Id``). The id lives in a context variable for the request's life,
so any log written while answering it carries the id too.
"""

from __future__ import annotations

import json
import logging
import logging.config
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final

REQUEST_ID: ContextVar[str | None] = ContextVar("sokhoe_request_id", default=None)

_STANDARD: Final = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}
"""Attributes every LogRecord has; anything else was passed as ``extra`` and is logged."""


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "request_id", …extra}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            line["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def config(log_format: str, level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server (uvicorn applies it in every worker):
    ``json`` for production, ``text`` for a developer's terminal. uvicorn's own access log
    is off either way: it prints the raw path and query (see the module docstring)."""
    formatter = (
        {"()": "sokhoe.logs.JsonFormatter"}
        if log_format == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": formatter},
        "handlers": {
            "main": {
                "class": "logging.StreamHandler",
                "formatter": "main",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["main"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
        },
    }


__all__ = ["REQUEST_ID", "JsonFormatter", "config"]
