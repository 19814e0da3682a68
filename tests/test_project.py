"""The project's own promises: CI runs the README's test command from a clone that stands alone;
the code is formatted, lint- and type-clean, and its imports point one way."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT

TOOLS = Path(sys.executable).parent  # installed with the test extra
MAX_MODULE_LINES = 300


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    start = readme.index("```sh")
    serve, test = readme[start + 1], readme[start + 2]
    assert serve.endswith("spinefoot serve") and test.endswith("pytest")
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()


@pytest.mark.parametrize(
    "tool,args",
    [
        ("ruff", ["check", "service", "tests", "benchmarks"]),
        ("ruff", ["format", "--check", "service", "tests", "benchmarks"]),
        pytest.param("mypy", [], marks=pytest.mark.slow),  # a minute or more when its cache is cold
        ("lint-imports", []),
    ],
)
def test_static_checks_pass(tool: str, args: list[str]) -> None:
    result = subprocess.run([str(TOOLS / tool), *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_import_against_the_layers_is_caught(tmp_path: Path) -> None:
    """The import contract is live: the assessment core importing the web layer breaks it."""
    shutil.copytree(ROOT / "service", tmp_path / "service", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "service" / "assess" / "leak.py").write_text("import service.web.responses\n")
    result = subprocess.run(
        [str(TOOLS / "lint-imports")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": str(TOOLS)},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "service.assess.leak -> service.web.responses" in result.stdout


def test_no_module_is_over_the_size_a_reader_takes_in() -> None:
    sizes = {
        str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in (ROOT / "service").rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_tests_and_benchmarks_read_nothing_outside_the_repository() -> None:
    """A clone with no sibling `shared/` must pass: third-party data is copied into tests/data."""
    readers = [
        p for folder in ("tests", "benchmarks") for p in (ROOT / folder).rglob("*.py") if p != Path(__file__)
    ]
    outside = [
        str(p.relative_to(ROOT))
        for p in readers
        if "../shared" in (text := p.read_text()) or '"shared"' in text or "ROOT.parent" in text
    ]
    assert outside == []


def _contributing_tree() -> set[str]:
    """The module paths CONTRIBUTING.md's layout tree names under `service/` (two spaces a level)."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    lines = text.split("## Layout", 1)[1].split("```")[1].splitlines()
    paths: set[str] = set()
    stack: list[str] = []
    for line in lines:
        name, depth = line.split()[0] if line.strip() else "", (len(line) - len(line.lstrip())) // 2
        if depth == 0 and name:
            stack = [name]
        elif name.endswith((".py", "/")) and stack[:1] == ["service/"] and len(stack) >= depth:
            stack[depth:] = [name]
            if name.endswith(".py"):
                paths.add("".join(stack))
    return paths


def test_contributing_names_every_module() -> None:
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "service").rglob("*.py") if p.name != "__init__.py"}
    assert _contributing_tree() == modules
