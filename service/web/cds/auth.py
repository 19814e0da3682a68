"""CDS Hooks 2.0 client authentication: a signed JWT in `Authorization: Bearer`.

Accepted only when: the algorithm is RS384 or ES384 (never `none`, never HMAC); the key is the
configured JWKS's key with the token's `kid` (the JWKS is cached, and re-read once on an unknown
`kid`, at most every 10 s); the signature verifies; `iss` is allowed; `aud` is this endpoint's
URL; `iat` and `exp` are present, `iat` not in the future, `exp` not past, and the token lives
at most 5 minutes (the specification's limit); `nbf`, if given, is not in the future; these are
finite numbers; `jti` was never seen before. Used `jti`s are kept
in SQLite until they expire, so a token replayed to another worker process is refused too.

Every refusal is the same `Unauthorized`; the reason goes to the log as a short code, never the
token.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
from jwt import PyJWK, PyJWKSet

from service.errors import StartupError, StorageUnavailable, Unauthorized

_KEY_TYPES = {"RS384": "RSA", "ES384": "EC"}  # the algorithms accepted, and their keys
MAX_LIFETIME = 300  # seconds between iat and exp
LEEWAY = 30  # seconds of clock skew tolerated
REFRESH_INTERVAL = 10.0  # seconds between re-reads of the JWKS on unknown kids
MAX_JWKS_BYTES = 1 << 20
log = logging.getLogger("spinefoot")


class KeySet:
    """The issuers' public keys from a JWKS file or URL, cached; re-read on an unknown kid."""

    def __init__(self, source: str, timeout: float = 5.0) -> None:
        self._source, self._timeout = source, timeout
        self._keys: dict[str, PyJWK] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def key(self, kid: str) -> PyJWK | None:
        """One re-read at a time; meanwhile other requests use the keys there are. The lock is
        never waited on: a gevent worker's requests share one thread, and a request holding a
        real lock across network I/O would block all of them."""
        if kid not in self._keys and time.monotonic() - self._loaded_at >= REFRESH_INTERVAL:
            if self._lock.acquire(blocking=False):
                try:
                    self._reload()
                finally:
                    self._lock.release()
        return self._keys.get(kid)

    def _reload(self) -> None:
        self._loaded_at = time.monotonic()
        try:
            keys = PyJWKSet.from_dict(json.loads(self._read())).keys
        except (OSError, ValueError, jwt.PyJWTError, httpx.HTTPError) as exc:
            log.warning("JWKS could not be read: %s", type(exc).__name__)
            return  # keep the keys we had
        self._keys = {key.key_id: key for key in keys if key.key_id}

    def _read(self) -> bytes:
        """The JWKS document, from a URL within `timeout` seconds in all and MAX_JWKS_BYTES (a
        slow or endless JWKS answer must not hold the request: it becomes a 401)."""
        if not self._source.startswith(("http://", "https://")):
            return Path(self._source).read_bytes()
        deadline = time.monotonic() + self._timeout
        body = bytearray()
        with httpx.stream("GET", self._source, timeout=self._timeout) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError("the JWKS is too large")
                if time.monotonic() > deadline:
                    raise TimeoutError("the JWKS took too long")
        return bytes(body)


class ReplayCache:
    """`jti`s seen, shared by all worker processes through one SQLite file.

    A file that cannot be created stops the start; at run time a full disk answers 503, and a
    corrupt file is moved aside and rebuilt (the request that found it still gets 503).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._create()
        except (OSError, sqlite3.Error) as exc:
            raise StartupError(f"replay cache {path}: {exc}") from None

    def _create(self) -> None:
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS jti (id TEXT PRIMARY KEY, exp INTEGER NOT NULL)")
            db.execute("CREATE INDEX IF NOT EXISTS jti_exp ON jti (exp)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=5.0, isolation_level=None)

    def first_use(self, jti: str, exp: int, now: int) -> bool:
        db = self._connect()
        try:
            db.execute("DELETE FROM jti WHERE exp < ?", (now - LEEWAY,))
            db.execute("INSERT INTO jti (id, exp) VALUES (?, ?)", (jti, exp))
            return True
        except sqlite3.IntegrityError:
            return False
        except sqlite3.DatabaseError as exc:
            self._recover(exc)
            raise StorageUnavailable.single(
                "transient", "the replay cache is unavailable; retry shortly"
            ) from None
        finally:
            db.close()

    def _recover(self, error: sqlite3.DatabaseError) -> None:
        """Rebuild a corrupt file; a full or locked one (OperationalError) is left as it is."""
        log.error("CDS Hooks replay cache failed: %s", type(error).__name__)
        if isinstance(error, sqlite3.OperationalError):
            return
        try:
            self._path.replace(self._path.with_name(self._path.name + ".corrupt"))
            self._create()
            log.warning("CDS Hooks replay cache rebuilt; the corrupt file is kept beside it")
        except (OSError, sqlite3.Error) as exc:
            log.error("CDS Hooks replay cache could not be rebuilt: %s", type(exc).__name__)


class TokenVerifier:
    def __init__(
        self, issuers: tuple[str, ...], keys: KeySet, replay: ReplayCache, clock: Callable[[], datetime]
    ) -> None:
        self._issuers, self._keys, self._replay, self._clock = issuers, keys, replay, clock

    def verify(self, authorization: str | None, audience: str) -> dict[str, Any]:
        """The token's claims, or Unauthorized."""
        try:
            return self._claims(authorization, audience)
        except (jwt.PyJWTError, _Refused, TypeError, ValueError) as exc:  # a malformed key too
            log.info("CDS Hooks JWT refused: %s", exc if isinstance(exc, _Refused) else type(exc).__name__)
            raise Unauthorized.single("login", "authentication failed") from None

    def _claims(self, authorization: str | None, audience: str) -> dict[str, Any]:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _Refused("no bearer token")
        header = jwt.get_unverified_header(token)
        if header.get("alg") not in _KEY_TYPES:
            raise _Refused("algorithm not allowed")
        key = self._keys.key(str(header.get("kid") or ""))
        if key is None:
            raise _Refused("unknown kid")
        if key.key_type != _KEY_TYPES[header["alg"]]:
            raise _Refused("key type does not match the algorithm")
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[header["alg"]],
            audience=audience,
            issuer=list(self._issuers),
            options={
                "require": ["iss", "aud", "exp", "iat", "jti"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
        now = int(self._clock().timestamp())
        issued, expires = _instant(claims, "iat"), _instant(claims, "exp")
        not_before = _instant(claims, "nbf") if "nbf" in claims else issued
        if (
            issued > now + LEEWAY
            or not_before > now + LEEWAY
            or expires < now - LEEWAY
            or expires - issued > MAX_LIFETIME
        ):
            raise _Refused("outside its lifetime")
        if not self._replay.first_use(str(claims["jti"]), int(expires), now):
            raise _Refused("jti replayed")
        return claims


def _instant(claims: dict[str, Any], name: str) -> float:
    """A NumericDate claim: a finite number (NaN would pass every comparison), never a bool."""
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Refused(f"{name} not a finite number")
    return float(value)


class _Refused(Exception):
    """A reason for the log (never for the client)."""
