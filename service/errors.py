"""The service's exception tree, each mapped to one HTTP status (contract §4).

    SpinefootError
    ├── InvalidRequest          400  not JSON, not UTF-8, not a Bundle/Parameters, bad asOf
    │   └── InvalidResource     400  FHIR-invalid (one issue per error, with expression)
    ├── Unauthorized            401  CDS Hooks JWT missing or not acceptable (no detail given)
    ├── PreconditionFailed      412  CDS Hooks: the data needed could not be obtained
    ├── UnsupportedMediaType    415
    ├── PayloadTooLarge         413
    ├── Unprocessable           422  valid FHIR that cannot be assessed (two subjects)
    ├── NotReady                503  the knowledge base is not loaded yet
    │   ├── StorageUnavailable  503  the data directory or the replay cache cannot be written
    │   └── OverBudget          503  the request needed more than its time budget
    └── EngineFailure           500  the rule engine reported an inconsistency

KnowledgeError and StartupError are separate: they stop startup and never reach a client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: FHIR issue-type code, plain diagnostics, optional FHIRPath."""

    code: str
    diagnostics: str
    expression: str | None = None
    severity: str = "error"


class SpinefootError(Exception):
    status = 500

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("; ".join(i.diagnostics for i in issues))
        self.issues = issues

    @classmethod
    def single(cls, code: str, diagnostics: str, expression: str | None = None) -> SpinefootError:
        return cls([Issue(code, diagnostics, expression)])


class InvalidRequest(SpinefootError):
    status = 400


class InvalidResource(InvalidRequest):
    status = 400


class Unauthorized(SpinefootError):
    status = 401


class PreconditionFailed(SpinefootError):
    status = 412


class UnsupportedMediaType(SpinefootError):
    status = 415


class PayloadTooLarge(SpinefootError):
    status = 413


class Unprocessable(SpinefootError):
    status = 422


class NotReady(SpinefootError):
    status = 503


class StorageUnavailable(NotReady):
    status = 503


class OverBudget(NotReady):
    status = 503


class EngineFailure(SpinefootError):
    status = 500


class KnowledgeError(Exception):
    """A knowledge file is wrong; the message names the file and the field."""

    def __init__(self, file: str, field: str, message: str) -> None:
        super().__init__(f"{file}: {field}: {message}")
        self.file, self.field, self.message = file, field, message


class StartupError(Exception):
    """A file or directory the server needs at start is unusable; the message names it."""


def first_error(messages: Any, path: str = "") -> tuple[str, str]:
    """Flatten marshmallow's nested messages to the first `dotted.field` and its message."""
    if isinstance(messages, dict):
        key = sorted(messages, key=str)[0]
        sub = f"{path}.{key}" if path and key != "_schema" else (path or str(key))
        if key == "value" and isinstance(messages[key], dict):  # Dict(values=...) nesting
            sub = path
        return first_error(messages[key], sub)
    if isinstance(messages, list) and messages:
        return (
            first_error(messages[0], path) if not isinstance(messages[0], str) else (path or "-", messages[0])
        )
    return path or "-", str(messages)
