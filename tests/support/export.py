"""Bundles turned into a Bulk Data export, as a FHIR server would write it.

Each patient's resources get durable references (`Type/<id>`, from `urn:uuid:` or absolute
fullUrls), optionally ids made unique with a prefix (the samples reuse `p1`, `con1`...), and go
one per line into one NDJSON file per resource type, with a manifest.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.support.generate import generated_bundle
from tests.support.paths import REALWORLD, SAMPLE_FILES

TRANSACTION_TIME = "2026-03-01T08:00:00Z"


def unwrap(document: dict[str, Any]) -> dict[str, Any]:
    """The Bundle of a sample (one is a Parameters wrapper)."""
    if document["resourceType"] == "Parameters":
        bundle: dict[str, Any] = next(p["resource"] for p in document["parameter"] if p["name"] == "bundle")
        return bundle
    return document


def durable_resources(bundle: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """The bundle's resources in order, ids prefixed, references rewritten to `Type/<id>`."""
    renamed: dict[str, str] = {}
    resources = []
    for entry in bundle["entry"]:
        resource = json.loads(json.dumps(entry["resource"]))
        old = f"{resource['resourceType']}/{resource['id']}"
        resource["id"] = f"{prefix}{resource['id']}"
        new = f"{resource['resourceType']}/{resource['id']}"
        for key in (entry.get("fullUrl"), old):
            if key:
                renamed[key] = new
        resources.append(resource)
    return [_rewrite(r, renamed) for r in resources]


def _rewrite(node: Any, renamed: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            k: (_target(v, renamed) if k == "reference" and isinstance(v, str) else _rewrite(v, renamed))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite(v, renamed) for v in node]
    return node


def _target(reference: str, renamed: dict[str, str]) -> str:
    if reference in renamed:
        return renamed[reference]
    parts = reference.rstrip("/").split("/")
    return renamed.get("/".join(parts[-2:]), reference)


def as_bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """What an EHR would post to `$assess` for the same patient."""
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def write_export(
    folder: Path, patients: list[list[dict[str, Any]]], gz: bool = False, manifest: bool = True
) -> Path:
    """One `Type.ndjson[.gz]` per resource type (patients' lines in turn) and a manifest."""
    by_type: dict[str, list[str]] = defaultdict(list)
    for resources in patients:
        for resource in resources:
            by_type[resource["resourceType"]].append(json.dumps(resource))
    folder.mkdir(parents=True, exist_ok=True)
    output = []
    for rtype in sorted(by_type):
        name = f"{rtype}.ndjson" + (".gz" if gz else "")
        text = "\n".join(by_type[rtype]) + "\n"
        data = gzip.compress(text.encode(), mtime=0) if gz else text.encode()
        (folder / name).write_bytes(data)
        output.append(
            {"type": rtype, "url": f"https://fhir.example.org/files/{name}", "count": len(by_type[rtype])}
        )
    if manifest:
        (folder / "manifest.json").write_text(
            json.dumps(
                {
                    "transactionTime": TRANSACTION_TIME,
                    "request": "https://fhir.example.org/Patient/$export",
                    "requiresAccessToken": False,
                    "output": output,
                    "error": [],
                }
            )
        )
    return folder


def sample_patients() -> list[list[dict[str, Any]]]:
    """The shipped samples (not *.expected.json), one patient each, ids prefixed `sNN-`."""
    return [durable_resources(unwrap(json.loads(p.read_text())), f"s{p.name[:2]}-") for p in SAMPLE_FILES]


def synthea_patients() -> list[list[dict[str, Any]]]:
    """The 12 real-world Synthea patients copied into tests/data/realworld (see its README)."""
    return [
        durable_resources(json.loads(p.read_bytes()))
        for p in sorted((REALWORLD / "synthea").glob("*/*.json"), key=lambda p: p.name)
    ]


def generated_patients(count: int) -> list[list[dict[str, Any]]]:
    """Generated patients (tests/support/generate.py), ids prefixed `gN-`."""
    return [durable_resources(generated_bundle(seed)[0], f"g{seed}-") for seed in range(count)]
