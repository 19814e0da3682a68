"""The project's own promises: CI runs the README's test command; the code is lint- and type-clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    start = readme.index("```sh")
    serve, test = readme[start + 1], readme[start + 2]
    assert serve.endswith("spinefoot serve") and test.endswith("pytest")
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()


@pytest.mark.parametrize("tool,args", [("ruff", ["check", "service", "tests"]), ("mypy", [])])
def test_static_checks_pass(tool: str, args: list[str]) -> None:
    executable = Path(sys.executable).parent / tool  # installed with the test extra
    result = subprocess.run([str(executable), *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
