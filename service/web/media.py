"""The request media types the FHIR endpoints accept."""

from __future__ import annotations

from flask import request

from service.errors import UnsupportedMediaType

ACCEPTED_TYPES = {"application/fhir+json", "application/json"}


def require_fhir_json() -> None:
    """415 unless the body is FHIR JSON: UTF-8, FHIR 4.0."""
    params = {k.lower(): v.lower() for k, v in request.mimetype_params.items()}
    if (
        request.mimetype not in ACCEPTED_TYPES
        or params.get("charset", "utf-8") != "utf-8"
        or params.get("fhirversion", "4.0") not in ("4.0", "4.0.1")
    ):
        raise UnsupportedMediaType.single(
            "not-supported",
            f"Content-Type must be application/fhir+json or application/json (UTF-8, FHIR 4.0); "
            f"got {request.content_type or 'none'!r}",
        )
