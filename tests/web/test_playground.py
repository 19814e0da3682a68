"""The playground: off by default; with the setting on, a sample's result, a bad Bundle's
OperationOutcome, strict headers. In a real headless Chromium too (Debian's, via Playwright)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Page, sync_playwright
from werkzeug.serving import make_server

from service.settings import Settings
from service.web.app import create_app
from tests.support.assess import expected_for
from tests.support.paths import FIXED_NOW, KNOWLEDGE, SAMPLE_FILES

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INVALID = '{"resourceType": "Bundle", "type": "not-a-type", "entry": []}'


@pytest.fixture(scope="module")
def playground_app() -> Flask:
    return create_app(Settings(knowledge_dir=KNOWLEDGE, playground=True), now=lambda: FIXED_NOW)


@pytest.fixture()
def browser_client(playground_app: Flask) -> FlaskClient:
    return playground_app.test_client()


def test_the_playground_is_off_unless_turned_on(client: FlaskClient) -> None:
    assert client.get("/playground").status_code == 404
    assert client.get("/playground/static/playground.js").status_code == 404


def test_the_page_has_a_strict_content_security_policy(browser_client: FlaskClient) -> None:
    response = browser_client.get("/playground")
    assert response.status_code == 200 and response.mimetype == "text/html"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    page = response.get_data(as_text=True)
    assert "<script>" not in page and "http" not in page.split("<body>")[0].replace(
        "http-equiv", ""
    )  # no inline script, nothing from elsewhere (no CDN)
    for sample in SAMPLE_FILES:
        assert f'value="{sample.name}"' in page


@pytest.mark.parametrize("sample", SAMPLE_FILES, ids=lambda p: p.stem)
def test_each_sample_matches_its_expectation(browser_client: FlaskClient, sample: Path) -> None:
    page = browser_client.get(f"/playground?sample={sample.name}").get_data(as_text=True)
    assert "Matches " in page and "Differs" not in page
    assert "Care pathway: " in page and "curl -s -X POST" in page
    assert f"asOf={expected_for(sample)['asOf']}" in page


def test_a_pasted_invalid_bundle_shows_the_operation_outcome(browser_client: FlaskClient) -> None:
    response = browser_client.post("/playground", data={"bundle": INVALID})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "OperationOutcome" in page and "Bundle.type" in page


def test_an_uploaded_bundle_is_assessed(browser_client: FlaskClient) -> None:
    sample = SAMPLE_FILES[0]
    with sample.open("rb") as handle:
        response = browser_client.post(
            "/playground", data={"file": (handle, "mine.json"), "asOf": expected_for(sample)["asOf"]}
        )
    assert response.status_code == 200
    assert "@bundle.json" in response.get_data(as_text=True)  # curl: save your body there


def test_a_sample_name_is_never_a_path(browser_client: FlaskClient) -> None:
    response = browser_client.post("/playground", data={"sample": "../../pyproject.toml"})
    assert response.status_code == 400


def test_input_text_is_escaped_on_the_page(browser_client: FlaskClient) -> None:
    bundle = json.loads(SAMPLE_FILES[0].read_text())
    bundle["entry"][0]["resource"]["id"] = "<script>alert(1)</script>"
    page = browser_client.post("/playground", data={"bundle": json.dumps(bundle)}).get_data(as_text=True)
    assert "<script>alert(1)" not in page


# ---------------------------------------------------------------- in a real browser


@pytest.fixture(scope="module")
def live_url(playground_app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, playground_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def page_errors(live_url: str) -> Iterator[tuple[Page, list[str]]]:
    """A Chromium page and the console errors, page errors and failed requests it collects."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium (.ci/run does)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        page = browser.new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: errors.append(f"failed {r.url}"))
        yield page, errors
        browser.close()


@pytest.mark.slow  # headless Chromium
def test_a_sample_renders_its_card_in_chromium(live_url: str, page_errors: tuple[Page, list[str]]) -> None:
    page, errors = page_errors
    errors.clear()
    sample = next(s for s in SAMPLE_FILES if expected_for(s)["pathway"] == "emergency-assessment")
    page.goto(f"{live_url}/playground")
    page.select_option("#sample", sample.name)
    page.click("#assess")
    page.wait_for_selector("#card")
    assert "critical" in page.inner_text("#card .indicator").lower()
    assert "Emergency assessment" in page.inner_text("#pathway")
    assert "Matches" in page.inner_text("#expectation")
    assert errors == []


@pytest.mark.slow  # headless Chromium
def test_a_pasted_invalid_bundle_shows_its_outcome_in_chromium(
    live_url: str, page_errors: tuple[Page, list[str]]
) -> None:
    page, errors = page_errors
    errors.clear()
    page.goto(f"{live_url}/playground")
    page.fill("#bundle", INVALID)
    page.click("#assess")
    page.wait_for_selector("#outcome")
    assert "Bundle.type" in page.inner_text("#outcome")
    assert "HTTP 400" in page.inner_text("#result h2")
    # a 400 page load is reported by Chromium as a failed resource; nothing else may be
    assert [e for e in errors if "400" not in e] == []
