"""Isolation: many threads posting different samples at once each get their own answer."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from flask import Flask

from tests.support.assess import expected_for, post_bundle, summary
from tests.support.paths import SAMPLE_FILES

THREADS = 24
ROUNDS = 6


def test_concurrent_requests_never_mix_patients(app: Flask) -> None:
    work = [SAMPLE_FILES[i % len(SAMPLE_FILES)] for i in range(THREADS * ROUNDS)]
    expected = {s: {k: expected_for(s)[k] for k in ("pathway", "predictions")} for s in SAMPLE_FILES}

    def one(sample: object) -> tuple[object, int, dict[str, object]]:
        exp = expected_for(sample)  # type: ignore[arg-type]
        response = post_bundle(
            app.test_client(),
            sample.read_bytes(),  # type: ignore[attr-defined]
            as_of=exp["asOf"],
        )
        return sample, response.status_code, summary(response.get_json())

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(one, work))
    assert len(results) == len(work)
    for sample, status, got in results:
        assert status == 200
        assert got == expected[sample], sample
