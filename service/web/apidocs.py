"""The OpenAPI 3.1 document (`/openapi.json`) and a readable page of it (`/docs`).

The document is data (`openapi.yaml`), with `servers` set from the configured base URL and the
shipped samples added as request examples (so Swagger's "Try it out" sends a real Bundle). The page
is Swagger UI 5 from the `flask-openapi3-swagger` package, served from this app: no CDN, so it
works inside a hospital network with no way out.
"""

from __future__ import annotations

import copy
import importlib.resources
import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, Response, current_app, jsonify, send_from_directory
from werkzeug.exceptions import NotFound

from service.samples import cds_hooks_files, expected_for, sample_files, samples_dir

docs = Blueprint("docs", __name__)

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Spinefoot API</title>
  <link rel="stylesheet" href="docs/assets/css/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/assets/js/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true});
  </script>
</body>
</html>
"""


@cache
def _document() -> dict[str, Any]:
    text = importlib.resources.files("service.web").joinpath("openapi.yaml").read_text("utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    paths = document["paths"]
    for content in paths["/fhir/RiskAssessment/$assess"]["post"]["requestBody"]["content"].values():
        content["examples"] = _examples(sample_files())
    hooks = paths["/cds-services/{id}"]["post"]["requestBody"]["content"]["application/json"]
    hooks["examples"] = _examples(cds_hooks_files())
    return document


def _examples(files: list[Path]) -> dict[str, Any]:
    """Each file as an OpenAPI example, named by its stem, summarised by its expected pathway."""
    examples = {}
    for path in files:
        expected = expected_for(samples_dir() / path.name) or {}
        examples[path.stem] = {
            "summary": f"{path.stem} (expected: {expected.get('pathway', '?')})",
            "value": json.loads(path.read_text(encoding="utf-8")),
        }
    return examples


def openapi_document(base_url: str | None) -> dict[str, Any]:
    document = copy.deepcopy(_document())
    if base_url:
        document["servers"] = [{"url": base_url}]
    return document


@cache
def _swagger_assets() -> Path:
    """Found without importing the package (it belongs to another framework's plugin system)."""
    spec = importlib.util.find_spec("flask_openapi3_swagger")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("flask-openapi3-swagger is not installed")
    return Path(spec.submodule_search_locations[0]) / "templates" / "swagger"


@docs.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(openapi_document(current_app.extensions["spinefoot"].settings.base_url))


@docs.get("/docs")
def docs_page() -> Response:
    return Response(_PAGE, mimetype="text/html")


@docs.get("/docs/assets/<path:name>")
def docs_asset(name: str) -> Response:
    if not name.startswith(("css/", "js/")):
        raise NotFound()
    return send_from_directory(_swagger_assets(), name, max_age=86400)
