"""Field types and checks for settings: comma lists, CORS origins, URLs, JWKS sources, directories."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from marshmallow import ValidationError, fields


class CommaList(fields.Field):  # type: ignore[type-arg]
    """A comma-separated list (from the environment) or a list (from code)."""

    def __init__(self, check: Callable[[str], None] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._check = check

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ValidationError("must be a comma-separated list")
        values = tuple(str(item).strip().rstrip("/") for item in items if str(item).strip())
        for item in values:
            if self._check:
                self._check(item)
        return values


def check_origin(value: str) -> None:
    parts = urlsplit(value)
    if value != "*" and (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.path
        or parts.query
        or parts.fragment
    ):
        raise ValidationError(f"{value!r} is not an origin like https://ehr.example.org (or *)")


def check_http_url(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValidationError(f"{value!r} is not an absolute http(s) URL without query or fragment")


def check_jwks_source(value: str) -> None:
    if value.startswith(("http://", "https://")):
        check_http_url(value)
    elif not Path(value).is_file():
        raise ValidationError(f"{value!r} is neither an http(s) URL nor a file")


def check_directory(value: str) -> None:
    if not Path(value).is_dir():
        raise ValidationError(f"{value!r} is not a directory")
