"""A FHIR Bulk Data client: kick-off, status polling, downloads, SMART Backend Services auth.

Kick-off asks only for the resource types the pipeline reads (`_type`) with
`Prefer: respond-async`; the status URL is polled honouring `Retry-After`, else with exponential
back-off; 429, 5xx and transport errors are retried the same way. Files are downloaded with the
bearer token when the manifest says `requiresAccessToken`. The token comes from SMART Backend
Services (client-credentials grant with a JWT assertion signed by the client's key).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from service.assess.fhir import READ_TYPES
from service.screen.export import MANIFEST

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_RETRIED = frozenset({429, 500, 502, 503, 504})


class BulkDataError(Exception):
    """The export could not be obtained; the message says which step and the HTTP status."""


class SmartBackendAuth:
    """Access tokens by the client-credentials grant, each cached until shortly before expiry."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        private_key_pem: str,
        key_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token_url, self.client_id, self.key_id, self.clock = token_url, client_id, key_id, clock
        key = load_pem_private_key(private_key_pem.encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError("the SMART private key must be RSA (RS384) or EC (ES384)")
        self.key = key
        self.algorithm = "RS384" if isinstance(key, rsa.RSAPrivateKey) else "ES384"
        self._token: tuple[str, float] | None = None

    def token(self, http: httpx.Client) -> str:
        now = self.clock()
        if self._token and self._token[1] > now + 30:
            return self._token[0]
        response = http.post(
            self.token_url,
            data={
                "grant_type": "client_credentials",
                "scope": " ".join(f"system/{t}.read" for t in sorted(READ_TYPES)),
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.assertion(now),
            },
        )
        if response.status_code != 200:
            raise BulkDataError(f"token request: HTTP {response.status_code}")
        body = response.json()
        self._token = (str(body["access_token"]), now + float(body.get("expires_in", 300)))
        return self._token[0]

    def assertion(self, now: float) -> str:
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_url,
            "exp": int(now) + 300,
            "jti": uuid.uuid4().hex,
        }
        headers = {"kid": self.key_id} if self.key_id else None
        return jwt.encode(claims, self.key, algorithm=self.algorithm, headers=headers)


class BulkExportClient:
    def __init__(
        self,
        base_url: str,
        auth: SmartBackendAuth | None = None,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        first_delay: float = 1.0,
        max_delay: float = 120.0,
        retries: int = 6,
        max_wait: float = 24 * 3600.0,
    ) -> None:
        self.base_url, self.auth, self.sleep = base_url.rstrip("/"), auth, sleep
        self.http = http or httpx.Client(timeout=60.0, follow_redirects=True)
        self.first_delay, self.max_delay, self.retries, self.max_wait = (
            first_delay,
            max_delay,
            retries,
            max_wait,
        )

    def kick_off(self, group: str | None = None, since: str | None = None) -> str:
        """Start the export; returns its status URL (Content-Location)."""
        path = f"Group/{group}/$export" if group else "Patient/$export"
        params = {"_type": ",".join(sorted(READ_TYPES)), **({"_since": since} if since else {})}
        response = self._send(
            "GET",
            f"{self.base_url}/{path}",
            "kick-off",
            params=params,
            headers={"Accept": "application/fhir+json", "Prefer": "respond-async"},
        )
        location = response.headers.get("Content-Location")
        if response.status_code != 202 or not location:
            raise BulkDataError(f"kick-off: HTTP {response.status_code} without a status URL")
        return str(location)

    def wait(self, status_url: str) -> dict[str, Any]:
        """Poll until the export is complete; returns its manifest."""
        waited, attempt = 0.0, 0
        while True:
            response = self._send("GET", status_url, "status", headers={"Accept": "application/json"})
            if response.status_code == 200:
                manifest: dict[str, Any] = response.json()
                return manifest
            if response.status_code != 202:
                raise BulkDataError(f"status: HTTP {response.status_code}")
            delay = self._delay(response, attempt)
            attempt += 1
            waited += delay
            if waited > self.max_wait:
                raise BulkDataError(
                    f"status: not complete after {self.max_wait:.0f} s; resume later with --status-url"
                )
            self.sleep(delay)

    def download(self, manifest: dict[str, Any], target: Path) -> Path:
        """The read types' files into `target`, with a manifest.json naming them there."""
        target.mkdir(parents=True, exist_ok=True)
        output = []
        for i, item in enumerate(manifest.get("output") or []):
            if item.get("type") not in READ_TYPES:
                continue
            name = f"{item['type']}.{i:03d}.ndjson"
            self._fetch_file(str(item["url"]), target / name, bool(manifest.get("requiresAccessToken")))
            output.append({**item, "url": name})
        local = {**manifest, "output": output}
        (target / MANIFEST).write_text(json.dumps(local, indent=2))
        return target

    def _fetch_file(self, url: str, path: Path, with_token: bool) -> None:
        headers = {"Accept": "application/fhir+ndjson"}
        response = self._send("GET", url, "download", headers=headers, token=with_token)
        if response.status_code != 200:
            raise BulkDataError(f"download: HTTP {response.status_code}")
        path.write_bytes(response.content)

    def _send(self, method: str, url: str, step: str, token: bool = True, **kwargs: Any) -> httpx.Response:
        """One request, retried on 429, 5xx and transport errors after Retry-After or back-off."""
        headers = dict(kwargs.pop("headers", {}))
        attempt = 0
        while True:
            if self.auth is not None and token:
                headers["Authorization"] = f"Bearer {self.auth.token(self.http)}"
            try:
                response = self.http.request(method, url, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                if attempt >= self.retries:
                    raise BulkDataError(f"{step}: {type(exc).__name__}") from None
                delay = self._backoff(attempt)
            else:
                if response.status_code not in _RETRIED or attempt >= self.retries:
                    return response
                delay = self._delay(response, attempt)
            self.sleep(delay)
            attempt += 1

    def _delay(self, response: httpx.Response, attempt: int) -> float:
        after = response.headers.get("Retry-After", "")
        if after.strip().isdigit():
            return min(float(after), self.max_delay)
        return self._backoff(attempt)

    def _backoff(self, attempt: int) -> float:
        return float(min(self.first_delay * 2**attempt, self.max_delay))
