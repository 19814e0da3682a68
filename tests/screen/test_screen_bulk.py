"""`spinefoot screen --from-export`: kick-off, polling, downloads and SMART Backend Services auth,
against a loopback `$export` server that answers 429, 503 and a slow status on purpose."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from service.assess.fhir import READ_TYPES
from service.cli import main
from service.screen.bulk import BulkDataError, BulkExportClient, SmartBackendAuth
from tests.support.bulk_server import CLIENT_ID, BulkServer
from tests.support.export import sample_patients, write_export

pytestmark = pytest.mark.slow  # a Bulk Data export polled and screened end to end

AS_OF = "2026-03-01T09:00:00Z"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The client's private key file and its public key (PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("keys") / "client.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, public.decode()


@pytest.fixture()
def server(tmp_path: Path, keys: tuple[Path, str]) -> BulkServer:
    export = write_export(tmp_path / "served", sample_patients()[:5])
    return BulkServer(export, keys[1])


def test_a_group_export_is_polled_retried_downloaded_and_screened(
    server: BulkServer, keys: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    with server:
        code = main(
            [
                "screen",
                "--from-export",
                f"{server.base}/fhir",
                "--group",
                "g1",
                "--since",
                "2025-01-01T00:00:00Z",
                "--out",
                str(out),
                "--as-of",
                AS_OF,
                "--token-url",
                f"{server.base}/token",
                "--client-id",
                CLIENT_ID,
                "--private-key",
                str(keys[0]),
                "--key-id",
                "k1",
            ]
        )
    assert code == 0
    assert f"{server.base}/status/1" in capsys.readouterr().err  # printed, to resume with
    assert len((out / "RiskAssessment.ndjson").read_text().splitlines()) == 5
    kick_offs = [r for r in server.requests if r[1].endswith("$export")]
    assert [r[1] for r in kick_offs] == ["/fhir/Group/g1/$export"] * 2  # 429, then accepted
    assert kick_offs[0][2] == {"_type": [",".join(sorted(READ_TYPES))], "_since": ["2025-01-01T00:00:00Z"]}
    assert server.calls["status"] == 4  # 503, 202 Retry-After, slow 202, manifest
    files = [r[1] for r in server.requests if r[1].startswith("/files/")]
    assert "/files/Encounter.ndjson" not in files and "/files/Patient.ndjson" in files
    assert all(r[3] for r in server.requests if r[0] == "GET")  # every GET carried the token
    assert [r[1] for r in server.requests if r[0] == "POST"] == ["/token"]  # token cached
    assert not (out / ".screen-download").exists()


def test_polling_honours_retry_after_then_backs_off(
    server: BulkServer, keys: tuple[Path, str], tmp_path: Path
) -> None:
    slept: list[float] = []
    with server:
        auth = SmartBackendAuth(f"{server.base}/token", CLIENT_ID, keys[0].read_text(), "k1")
        client = BulkExportClient(f"{server.base}/fhir", auth=auth, sleep=slept.append)
        status = client.kick_off()
        manifest = client.wait(status)
        target = client.download(manifest, tmp_path / "download")
    # 429 Retry-After 1; 503 -> back-off 1; 202 Retry-After 1; slow 202 -> back-off 2
    assert slept == [1.0, 1.0, 1.0, 2.0]
    local = json.loads((target / "manifest.json").read_text())
    assert {item["type"] for item in local["output"]} <= READ_TYPES
    assert all((target / item["url"]).is_file() for item in local["output"])


def test_a_refused_status_or_a_dead_server_is_a_clear_error(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404 if "status" in str(request.url) else 503)

    client = BulkExportClient(
        "http://127.0.0.1:9/fhir",
        http=httpx.Client(transport=httpx.MockTransport(refuse)),
        sleep=lambda _: None,
        retries=2,
    )
    with pytest.raises(BulkDataError, match="kick-off: HTTP 503"):
        client.kick_off()
    with pytest.raises(BulkDataError, match="status: HTTP 404"):
        client.wait("http://127.0.0.1:9/status")


def test_the_cli_says_which_step_failed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "screen",
            "--from-export",
            "http://127.0.0.1:9/fhir",
            "--out",
            str(tmp_path),
            "--client-id",
            CLIENT_ID,
        ]
    )
    assert code == 2 and "--token-url" in capsys.readouterr().err
