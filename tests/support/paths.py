"""Where the tests find things, and the fixed instant they assess at."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KNOWLEDGE = ROOT / "knowledge"
SAMPLES = ROOT / "fhir_samples"
DATA = ROOT / "tests" / "data"
REALWORLD = DATA / "realworld"  # third-party material, copied in (see its README for licences)
FIXED_NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ASSESS = "/fhir/RiskAssessment/$assess"

SAMPLE_FILES = sorted(p for p in SAMPLES.glob("*.json") if not p.name.endswith(".expected.json"))
