"""Fetching what a CDS Hooks client did not prefetch, from its FHIR server (httpx).

Only servers the site allowed (`SPINEFOOT_CDS_FHIR_SERVERS`) are contacted: a request cannot make
the service call an arbitrary URL with a bearer token. Paging follows `link[next]` on the same
server only, up to a bound, and no URL with `.` or `..` segments is followed (they could leave
the allowed base path with the token). One call reads at most `max_bytes` in all (decoded, so a
compressed bomb counts in full) within `deadline` seconds, and JSON no deeper than the request
limit. Any failure is a `PreconditionFailed` (412, as CDS Hooks prescribes when the service
cannot obtain the data it needs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from service.assess.parse import Limits, parse_json
from service.errors import InvalidRequest, PreconditionFailed

_FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class FetchLimits:
    timeout: float  # seconds for each request
    max_pages: int  # per query
    max_bytes: int = 10 * 1024 * 1024  # per call, all requests together
    deadline: float = 15.0  # seconds per call, all requests together
    max_depth: int = 64  # JSON nesting


class FhirClient:
    """One client per hook call: the base URL and token belong to that call."""

    def __init__(self, base_url: str, token: str | None, limits: FetchLimits) -> None:
        """No token: an open server, asked without any Authorization header."""
        self._base = base_url.rstrip("/")
        self._limits = limits
        self._bytes_left = limits.max_bytes
        self._deadline = time.monotonic() + limits.deadline
        self._http = httpx.Client(
            headers={
                "Accept": "application/fhir+json",
                **({"Authorization": f"Bearer {token}"} if token else {}),
            },
            timeout=limits.timeout,
            follow_redirects=False,
        )

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def get(self, query: str) -> list[dict[str, Any]]:
        """Bundle entries: of a read (`Patient/1`: one, none if 404) or a search (all pages).

        A search is `POST {type}/_search` with its parameters as a form (R4 servers support
        both forms), so the patient's id is in no URL a proxy or server log keeps; the pages
        after it are the server's own `next` links."""
        path, _, params = query.lstrip("/").partition("?")
        url: str | None = f"{self._base}/{path}/_search" if params else f"{self._base}/{path}"
        form: str | None = params or None
        entries: list[dict[str, Any]] = []
        pages = 0
        while url:
            pages += 1
            if pages > self._limits.max_pages:
                raise PreconditionFailed.single(
                    "too-costly",
                    f"the FHIR server's results for {_path(query)} run to more than "
                    f"{self._limits.max_pages} pages",
                )
            document = self._get_json(url, query, form)
            if document is None:
                return entries
            if document.get("resourceType") != "Bundle":
                return [{"fullUrl": url, "resource": document}]
            entries.extend(bundle_entries(document))
            url, form = self._next_page(document, query), None
        return entries

    def _get_json(self, url: str, query: str, form: str | None = None) -> dict[str, Any] | None:
        """GET `url`, or POST `form` to it (a search), within the call's budgets."""
        method, headers = ("POST", {"Content-Type": _FORM}) if form is not None else ("GET", {})
        try:
            with self._http.stream(
                method, url, content=form, headers=headers, timeout=self._time_left(query)
            ) as response:
                if response.status_code == 404 and "?" not in query:
                    return None
                if response.status_code != 200:
                    raise PreconditionFailed.single(
                        "transient", f"the FHIR server answered {response.status_code} to {_path(query)}"
                    )
                body = self._read(response, query)
        except httpx.HTTPError as exc:
            raise PreconditionFailed.single(
                "timeout" if isinstance(exc, httpx.TimeoutException) else "transient",
                f"could not fetch {_path(query)} from the FHIR server: {type(exc).__name__}",
            ) from None
        try:
            document = parse_json(body, Limits(max_depth=self._limits.max_depth))
        except InvalidRequest:
            document = None
        if not isinstance(document, dict):
            raise PreconditionFailed.single(
                "structure", f"the FHIR server's answer to {_path(query)} is not a FHIR resource"
            )
        return document

    def _time_left(self, query: str) -> float:
        """This request's timeout: the per-request one, or what is left of the call's."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise PreconditionFailed.single(
                "timeout",
                f"fetching {_path(query)} took longer than the {self._limits.deadline} s "
                f"allowed for one call",
            )
        return min(self._limits.timeout, left)

    def _read(self, response: httpx.Response, query: str) -> bytes:
        """The body within the call's byte and time budgets (checked as it arrives)."""
        chunks = []
        for chunk in response.iter_bytes():
            self._bytes_left -= len(chunk)
            if self._bytes_left < 0:
                raise PreconditionFailed.single(
                    "too-costly",
                    f"the FHIR server's answers for {_path(query)} exceed the "
                    f"{self._limits.max_bytes} bytes allowed for one call",
                )
            self._time_left(query)
            chunks.append(chunk)
        return b"".join(chunks)

    def _next_page(self, bundle: dict[str, Any], query: str) -> str | None:
        links = bundle.get("link")
        if not isinstance(links, list):
            return None
        url = next(
            (link.get("url") for link in links if isinstance(link, dict) and link.get("relation") == "next"),
            None,
        )
        if url is None:
            return None
        if not isinstance(url, str) or not same_server(url, self._base):
            raise PreconditionFailed.single(
                "security", f"the FHIR server's next page for {_path(query)} is on another server"
            )
        return url


def same_server(url: str, base: str) -> bool:
    """Same scheme, host and port, and under the base path (with no `.` or `..` segment, even
    percent-encoded, which would let the path leave the base)."""
    target, origin = urlsplit(url), urlsplit(base)
    if _has_dot_segment(target.path) or _has_dot_segment(origin.path):
        return False
    return (target.scheme, target.netloc) == (origin.scheme, origin.netloc) and (
        target.path + "/"
    ).startswith(origin.path.rstrip("/") + "/")


def _has_dot_segment(path: str) -> bool:
    return any(segment in (".", "..") for segment in unquote(path).replace("\\", "/").split("/"))


def bundle_entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """A Bundle's entries (resource and fullUrl), without the OperationOutcomes a server adds to
    search results."""
    found = []
    entries = bundle.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") != "OperationOutcome":
            found.append({k: v for k, v in entry.items() if k in ("fullUrl", "resource")})
    return found


def _path(query: str) -> str:
    """The query without its parameters: they hold the patient id, which is not for the log."""
    return query.split("?", 1)[0]
