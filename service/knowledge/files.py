"""Reading one knowledge file: YAML parsed safely, validated, every fault named by file and field."""

from __future__ import annotations

from collections.abc import Container, Iterable
from pathlib import Path
from typing import Any

import yaml
from marshmallow import (
    Schema,
    ValidationError,
)

from service.errors import KnowledgeError, first_error

# libyaml's parser (bundled with PyYAML's wheels) reads the knowledge base ~10x faster than the
# pure-Python one, which was most of the start-up time; same safe subset of YAML.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(root: Path, name: str) -> Any:
    path = root / name
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_SAFE_LOADER)
    except FileNotFoundError:
        raise KnowledgeError(name, "-", "file is missing") from None
    except yaml.YAMLError as exc:
        raise KnowledgeError(name, "-", f"not valid YAML: {exc}") from None


def load_file(root: Path, name: str, schema: Schema, many: bool = False) -> Any:
    return validate_with(schema, read_yaml(root, name), name, many=many)


def validate_with(schema: Schema, data: Any, file: str, where: str = "", many: bool = False) -> Any:
    """`schema.load`, with its first error raised as a KnowledgeError at `where.field`."""
    try:
        return schema.load(data, many=many)
    except ValidationError as exc:
        field, message = first_error(exc.messages)
        raise KnowledgeError(file, f"{where}.{field}" if where else field, message) from None


def check_known(file: str, field: str, names: Iterable[str], known: Container[str], noun: str) -> None:
    """Every name a file gives must be one the knowledge base defines, else startup stops here."""
    for name in names:
        if name not in known:
            raise KnowledgeError(file, field, f"unknown {noun} {name!r}")


def check_sources(file: str, field: str, names: list[str], source_ids: set[str]) -> None:
    check_known(file, field, names, source_ids, "source")
