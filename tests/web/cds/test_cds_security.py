"""CDS Hooks client JWTs: every way a token can be wrong is a bare 401; a good one passes once."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask.testing import FlaskClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from service.errors import StartupError
from service.settings import Settings, SettingsError, load_settings
from service.web.app import create_app
from service.web.cds import auth as cds_auth
from tests.support.cds import SERVICE, hook_request, server_style
from tests.support.hostile import hostile_server
from tests.support.paths import FIXED_NOW, KNOWLEDGE, SAMPLE_FILES

BASE = "https://cds.example.org/spinefoot"
ISSUER = "https://ehr.example.org"
NOW = int(FIXED_NOW.timestamp())


class Keys:
    """An EHR's signing keys: RSA for RS384, P-384 for ES384, and one the service never saw."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP384R1())
        self.stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self, *, with_stranger: bool = False) -> dict[str, Any]:
        keys = [
            {
                **json.loads(RSAAlgorithm.to_jwk(self.rsa.public_key())),
                "kid": "rsa-1",
                "alg": "RS384",
                "use": "sig",
            },
            {
                **json.loads(ECAlgorithm.to_jwk(self.ec.public_key())),
                "kid": "ec-1",
                "alg": "ES384",
                "use": "sig",
            },
        ]
        if with_stranger:
            keys.append(
                {
                    **json.loads(RSAAlgorithm.to_jwk(self.stranger.public_key())),
                    "kid": "rsa-2",
                    "alg": "RS384",
                    "use": "sig",
                }
            )
        return {"keys": keys}


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture()
def jwks_file(tmp_path: Path, keys: Keys) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(keys.jwks()))
    return path


@pytest.fixture()
def client(tmp_path: Path, jwks_file: Path) -> FlaskClient:
    settings = Settings(
        knowledge_dir=KNOWLEDGE,
        base_url=BASE,
        cds_jwt=True,
        cds_jwt_issuers=(ISSUER,),
        cds_jwks=str(jwks_file),
        cds_replay_db=tmp_path / "jti.sqlite3",
    )
    return create_app(settings, now=lambda: FIXED_NOW).test_client()


def claims(**changes: Any) -> dict[str, Any]:
    base = {
        "iss": ISSUER,
        "sub": "ehr-client",
        "aud": BASE + SERVICE,
        "iat": NOW,
        "exp": NOW + 300,
        "jti": str(uuid.uuid4()),
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def token(keys: Keys, alg: str = "RS384", kid: str = "rsa-1", **changes: Any) -> str:
    key = {"RS384": keys.rsa, "ES384": keys.ec}[alg] if kid != "rsa-2" else keys.stranger
    return jwt.encode(claims(**changes), key, algorithm=alg, headers={"kid": kid})


def call(client: FlaskClient, bearer: str | None, path: str = SERVICE) -> Any:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    if path.endswith("/cds-services"):
        return client.get(path, headers=headers)
    return client.post(path, json=hook_request(server_style(SAMPLE_FILES[0])), headers=headers)


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_a_good_token_is_accepted_once(client: FlaskClient, keys: Keys, alg: str) -> None:
    good = token(keys, alg, kid={"RS384": "rsa-1", "ES384": "ec-1"}[alg])
    assert call(client, good).status_code == 200
    assert call(client, good).status_code == 401  # the same jti again: a replay


def test_discovery_needs_a_token_for_its_own_url(client: FlaskClient, keys: Keys) -> None:
    assert call(client, None, "/cds-services").status_code == 401
    good = token(keys, aud=BASE + "/cds-services")
    assert call(client, good, "/cds-services").status_code == 200


def _unsigned(keys: Keys) -> str:
    return jwt.encode(claims(), None, algorithm="none", headers={"kid": "rsa-1"})


def _hmac_with_the_public_key(keys: Keys) -> str:
    """The classic confusion attack: HS256 keyed with the published RSA public key."""
    public = keys.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "kid": "rsa-1"}).encode())
    payload = jwt.utils.base64url_encode(json.dumps(claims()).encode())
    signature = hmac.new(public, header + b"." + payload, hashlib.sha256).digest()
    return (header + b"." + payload + b"." + jwt.utils.base64url_encode(signature)).decode()


def _tampered(keys: Keys) -> str:
    head, payload, signature = token(keys).split(".")
    forged = jwt.utils.base64url_encode(json.dumps(claims(iss="https://evil.example")).encode())
    return ".".join([head, forged.decode(), signature])


REFUSED = {
    "no header": lambda k: None,
    "not a JWT": lambda k: "abc.def",
    "alg none": _unsigned,
    "HMAC with the public key": _hmac_with_the_public_key,
    "RS256": lambda k: jwt.encode(claims(), k.rsa, algorithm="RS256", headers={"kid": "rsa-1"}),
    "signature of another payload": _tampered,
    "unknown kid": lambda k: token(k, kid="rsa-2"),
    "no kid": lambda k: jwt.encode(claims(), k.rsa, algorithm="RS384"),
    "ES384 under the RSA kid": lambda k: jwt.encode(
        claims(), k.ec, algorithm="ES384", headers={"kid": "rsa-1"}
    ),
    "issuer not allowed": lambda k: token(k, iss="https://other-ehr.example.org"),
    "audience of another service": lambda k: token(k, aud=BASE + "/cds-services/other"),
    "audience of another host": lambda k: token(k, aud="https://evil.example" + SERVICE),
    "expired": lambda k: token(k, iat=NOW - 400, exp=NOW - 100),
    "issued in the future": lambda k: token(k, iat=NOW + 120, exp=NOW + 300),
    "lives longer than 5 minutes": lambda k: token(k, exp=NOW + 3600),
    "no exp": lambda k: token(k, exp=None),
    "no iat": lambda k: token(k, iat=None),
    "no jti": lambda k: token(k, jti=None),
    "no iss": lambda k: token(k, iss=None),
    "iat NaN (would pass every lifetime check)": lambda k: token(k, iat=float("nan")),
    "exp infinite": lambda k: token(k, exp=float("inf")),
    "iat true": lambda k: token(k, iat=True),
    "not before a minute from now": lambda k: token(k, nbf=NOW + 60),
    "nbf not a number": lambda k: token(k, nbf="soon"),
}


@pytest.fixture()
def log_text() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("spinefoot")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_every_bad_token_is_a_bare_401(
    client: FlaskClient, keys: Keys, log_text: io.StringIO, case: str
) -> None:
    bad = REFUSED[case](keys)
    response = call(client, bad)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_json()["issue"] == [
        {"severity": "error", "code": "login", "diagnostics": "authentication failed"}
    ]
    if bad and len(bad) > 20:
        assert bad not in log_text.getvalue() and bad.split(".")[1] not in log_text.getvalue()


def test_an_unknown_kid_makes_the_service_reread_the_keys(
    client: FlaskClient, keys: Keys, jwks_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert call(client, token(keys, kid="rsa-2")).status_code == 401
    jwks_file.write_text(json.dumps(keys.jwks(with_stranger=True)))  # the EHR rotated its keys
    assert call(client, token(keys, kid="rsa-2")).status_code == 401  # re-reads are rate-limited
    monkeypatch.setattr(cds_auth, "REFRESH_INTERVAL", 0.0)
    assert call(client, token(keys, kid="rsa-2")).status_code == 200


def test_the_replay_cache_is_shared_through_its_file(tmp_path: Path, jwks_file: Path, keys: Keys) -> None:
    """Two apps (as two worker processes would) with one cache file: a token passes once."""
    settings = Settings(
        knowledge_dir=KNOWLEDGE,
        base_url=BASE,
        cds_jwt=True,
        cds_jwt_issuers=(ISSUER,),
        cds_jwks=str(jwks_file),
        cds_replay_db=tmp_path / "shared.sqlite3",
    )
    first, second = (create_app(settings, now=lambda: FIXED_NOW).test_client() for _ in range(2))
    good = token(keys)
    assert call(first, good).status_code == 200
    assert call(second, good).status_code == 401


def test_enabling_jwt_without_keys_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="SPINEFOOT_CDS_JWKS"):
        load_settings(
            {"SPINEFOOT_CDS_JWT": "true", "SPINEFOOT_CDS_JWT_ISSUERS": ISSUER, "SPINEFOOT_BASE_URL": BASE}
        )


def test_expired_by_the_injected_clock_not_the_wall_clock(
    tmp_path: Path, jwks_file: Path, keys: Keys
) -> None:
    settings = Settings(
        knowledge_dir=KNOWLEDGE,
        base_url=BASE,
        cds_jwt=True,
        cds_jwt_issuers=(ISSUER,),
        cds_jwks=str(jwks_file),
        cds_replay_db=tmp_path / "jti.sqlite3",
    )
    later = create_app(settings, now=lambda: FIXED_NOW + timedelta(minutes=10)).test_client()
    assert call(later, token(keys)).status_code == 401


def test_an_unknown_service_is_not_revealed_without_a_token(client: FlaskClient) -> None:
    response = client.post("/cds-services/nope", json={})
    assert response.status_code == 401


def test_required_jwts_without_keys_stop_the_app_rather_than_turn_off() -> None:
    with pytest.raises(SettingsError, match="SPINEFOOT_CDS_JWT"):
        create_app(Settings(knowledge_dir=KNOWLEDGE, cds_jwt=True, base_url=BASE))


def test_a_token_valid_from_now_is_accepted(client: FlaskClient, keys: Keys) -> None:
    assert call(client, token(keys, nbf=NOW)).status_code == 200


def test_a_corrupt_replay_cache_answers_503_once_and_is_rebuilt(
    client: FlaskClient, keys: Keys, tmp_path: Path
) -> None:
    assert call(client, token(keys)).status_code == 200
    (tmp_path / "jti.sqlite3").write_bytes(b"not a database" * 512)
    response = call(client, token(keys))
    assert response.status_code == 503
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert call(client, token(keys)).status_code == 200
    assert (tmp_path / "jti.sqlite3.corrupt").exists()  # kept for whoever looks into it


def test_a_replay_cache_that_cannot_be_created_stops_the_start(tmp_path: Path, jwks_file: Path) -> None:
    (tmp_path / "a-file").write_text("")
    settings = Settings(
        knowledge_dir=KNOWLEDGE,
        base_url=BASE,
        cds_jwt=True,
        cds_jwt_issuers=(ISSUER,),
        cds_jwks=str(jwks_file),
        cds_replay_db=tmp_path / "a-file" / "jti.sqlite3",
    )
    with pytest.raises(StartupError, match="replay cache .*a-file/jti.sqlite3"):
        create_app(settings)


@pytest.mark.slow  # waits out a real timeout
def test_a_slow_jwks_url_is_a_401_with_a_reason_in_the_log(
    tmp_path: Path, keys: Keys, log_text: io.StringIO
) -> None:
    """The JWKS answer trickles for 16 s; the fetch gives up after its 5 s, and the call is
    refused (it was a 500 once gunicorn's worker timeout struck)."""
    with hostile_server() as upstream:
        settings = Settings(
            knowledge_dir=KNOWLEDGE,
            base_url=BASE,
            cds_jwt=True,
            cds_jwt_issuers=(ISSUER,),
            cds_jwks=f"{upstream}/slow/jwks",
            cds_replay_db=tmp_path / "jti.sqlite3",
        )
        client = create_app(settings, now=lambda: FIXED_NOW).test_client()
        started = time.monotonic()
        assert call(client, token(keys)).status_code == 401
        assert time.monotonic() - started < 10, "the JWKS fetch was not bounded"
    assert "JWKS could not be read: TimeoutError" in log_text.getvalue()
    assert "CDS Hooks JWT refused: unknown kid" in log_text.getvalue()
