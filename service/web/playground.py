"""`/playground`: a page where an integration tester tries the service in a browser.

Pick a shipped sample or paste or upload a Bundle, set `asOf`, and see what `$assess` answers:
the pathway, each conclusion with its reasons, guidance and data gaps, the CDS card as an EHR
would show it, the raw JSON, a curl command that does the same, and for a sample whether the
result matches its `.expected.json`. Server-rendered; one small static script; a strict
Content-Security-Policy. Registered only with `SPINEFOOT_PLAYGROUND=true`, since it accepts
patient data; like the API it never logs what was posted.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, render_template, request
from markdown_it import MarkdownIt
from markupsafe import Markup

from service.assess.pipeline import Assessment
from service.assess.report import note_kind
from service.errors import InvalidRequest, SpinefootError
from service.outcome import operation_outcome
from service.samples import differences, expected_for, sample_files
from service.web.cds.cards import build_cards
from service.web.runtime import runtime

playground = Blueprint(
    "playground",
    __name__,
    static_folder="static",
    static_url_path="/playground/static",
    template_folder="templates",
)
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HOOK_INSTANCE = "00000000-0000-4000-8000-000000000014"  # cards shown here, never sent to an EHR
_MARKDOWN = MarkdownIt("js-default")  # CommonMark with raw HTML off: card text stays text


@dataclass(frozen=True)
class Attempt:
    """What was posted: a sample's name or a pasted/uploaded body, and the asOf asked for."""

    body: bytes
    as_of: str | None
    sample: str | None


@playground.after_request
def _strict_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@playground.get("/playground")
def page() -> str | tuple[str, int]:
    """The form; with `?sample=NAME` also that sample's result (a sample name is no patient data)."""
    name = request.args.get("sample")
    if not name:
        return _render()
    return _result(_sample_attempt(name, request.args.get("asOf") or None))


@playground.post("/playground")
def submit() -> tuple[str, int]:
    form, upload = request.form, request.files.get("file")
    as_of = form.get("asOf") or None
    if upload is not None and upload.filename:
        return _result(Attempt(upload.read(), as_of, None))
    if form.get("bundle", "").strip():
        return _result(Attempt(form["bundle"].encode("utf-8"), as_of, None))
    return _result(_sample_attempt(form.get("sample", ""), as_of))


def _sample_attempt(name: str, as_of: str | None) -> Attempt:
    """A shipped sample by file name (only those listed: a name is never a path)."""
    path = {p.name: p for p in sample_files()}.get(name)
    if path is None:
        return Attempt(b"", as_of, name or None)
    expected = expected_for(path) or {}
    return Attempt(path.read_bytes(), as_of or expected.get("asOf"), name)


def _result(attempt: Attempt) -> tuple[str, int]:
    rt = runtime()
    try:
        if not attempt.body:
            raise InvalidRequest.single("required", "choose a sample, or paste or upload a Bundle")
        assessment = rt.ready_pipeline().assess_body(attempt.body, attempt.as_of, rt.clock)
    except SpinefootError as exc:
        if exc.status >= 500:
            raise  # the app's handler: a generic answer, details only in the log
        return _render(
            attempt=attempt, status=exc.status, raw=operation_outcome(exc.issues), issues=exc.issues
        ), exc.status
    rt.note(assessment)
    return _render(
        attempt=attempt,
        status=200,
        raw=assessment.resource,
        assessment=assessment,
        **_views(assessment, attempt),
    ), 200


def _views(assessment: Assessment, attempt: Attempt) -> dict[str, Any]:
    """What the result page shows besides the raw JSON."""
    kb = runtime().ready_pipeline().kb
    cards = build_cards(kb, assessment.explanation, assessment.resource, HOOK_INSTANCE)
    notes = assessment.resource.get("note") or []
    sample = {p.name: p for p in sample_files()}.get(attempt.sample or "")
    expected = expected_for(sample) if sample else None
    return {
        "card": cards[0] if cards else None,
        "card_detail": Markup(_MARKDOWN.render(cards[0]["detail"])) if cards else None,
        "guidance": [n["text"] for n in notes if note_kind(n) == "guidance"],
        "gaps": [n["text"] for n in notes if note_kind(n) == "data-gap"],
        "ignored": [n["text"] for n in notes if note_kind(n) == "input-ignored"],
        "expected": expected,
        "differences": differences(assessment.resource, expected) if expected else None,
    }


def _render(**context: Any) -> str:
    attempt: Attempt | None = context.get("attempt")
    raw = context.get("raw")
    return render_template(
        "playground.html",
        samples=_sample_rows(),
        curl=_curl(attempt) if attempt else None,
        raw_json=json.dumps(raw, ensure_ascii=False, indent=2) if raw is not None else None,
        **context,
    )


def _sample_rows() -> list[tuple[str, str]]:
    return [(p.name, (expected_for(p) or {}).get("pathway", "")) for p in sample_files()]


def _curl(attempt: Attempt) -> str:
    """The same request from a shell: the sample's file, or a file the tester saves the body in."""
    base = runtime().settings.base_url or request.host_url.rstrip("/")
    url = f"{base}/fhir/RiskAssessment/$assess" + (f"?asOf={attempt.as_of}" if attempt.as_of else "")
    data = f"@fhir_samples/{attempt.sample}" if attempt.sample else "@bundle.json"
    return (
        f"curl -s -X POST {shlex.quote(url)} \\\n     -H 'Content-Type: application/fhir+json' "
        f"\\\n     --data-binary {shlex.quote(data)}"
    )
