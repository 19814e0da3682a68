"""Logging: one configuration for the app and gunicorn, JSON lines or key=value text.

Only ids, sizes, timings and outcome codes are ever logged: never a name, an identifier, a birth
date or free text from a request, and never a token.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any

# The fields of the one line written per request, in this order in text format.
REQUEST_FIELDS = (
    "request_id",
    "method",
    "path",
    "status",
    "duration_ms",
    "bytes_in",
    "entries",
    "care_pathway",
    "knowledge_version",
    "error_kind",
)


class KeyValueFormatter(logging.Formatter):
    """`time LEVEL logger message key=value ...` for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        pairs = " ".join(
            f"{name}={record.__dict__[name]}"
            for name in REQUEST_FIELDS
            if record.__dict__.get(name) is not None
        )
        line = super().format(record)
        return f"{line} {pairs}" if pairs else line


def logging_config(level: str, fmt: str) -> dict[str, Any]:
    """A dictConfig, also handed to gunicorn (`logconfig_dict`) so its own lines match."""
    formatter: dict[str, Any] = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "timestamp": "time",  # ISO 8601, UTC
            "rename_fields": {"levelname": "level", "name": "logger"},
        }
        if fmt == "json"
        else {"()": KeyValueFormatter, "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"spinefoot": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "spinefoot",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            # the app writes its own request line; gunicorn's access log would repeat it
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
            # httpx logs every URL it fetches at INFO, and a FHIR URL names the patient
            "httpx": {"level": "WARNING", "handlers": [], "propagate": True},
            "httpcore": {"level": "WARNING", "handlers": [], "propagate": True},
        },
    }


def configure_logging(level: str, fmt: str) -> None:
    logging.config.dictConfig(logging_config(level, fmt))
