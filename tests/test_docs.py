"""The documentation: a strict MkDocs build, a short README that starts with the two commands,
includes that resolve, a table file per benchmark, and no dated or session wording."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
README_MAX_LINES = 200
COMMANDS = (
    "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/cosim study run block-size",
    "python3 -m venv .venv && .venv/bin/pip install -e '.[dev,minilm]' && .venv/bin/ruff check . "
    "&& .venv/bin/python -m pytest",
)
# A snippet include: the marker at the start of a line, then the quoted path, optionally
# followed by :start:end line ranges.
INCLUDE = re.compile(r'^\s*--8<--\s+"([^"]+)"\s*$', re.MULTILINE)
DATED = re.compile(
    r"\b\d{4}-\d{2}-\d{2}\b|\b(?:this|last|earlier|previous) session\b|\brerun this\b",
    re.IGNORECASE,
)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def doc_files() -> list[Path]:
    """Every Markdown file of the site, the included ones under docs/results/ too."""
    return sorted(DOCS.rglob("*.md"))


def include_target(spec: str) -> Path:
    """The file a ``--8<--`` include names (relative to the repository root, the snippets
    base_path), without its ``:start:end`` line ranges."""
    return ROOT / re.sub(r"(:\d*:\d*(,\d*:\d*)*)$", "", spec)


def test_mkdocs_build_is_strict_and_clean(tmp_path: Path) -> None:
    """``mkdocs build --strict`` with no warning at all (broken links, missing anchors,
    missing includes, pages left out of the nav)."""
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    assert "WARNING" not in log, log
    assert (tmp_path / "site" / "index.html").is_file()


def test_readme_is_short_and_starts_with_the_two_commands() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"
    assert lines[0].startswith("# ")
    body = [line for line in lines[1:] if line.strip()]
    assert body[0].startswith("```"), body[0]
    assert tuple(body[1:3]) == COMMANDS
    assert body[3] == "```"


def test_ci_runs_the_second_command() -> None:
    assert (
        COMMANDS[1].removeprefix("python3 -m venv .venv && ") in (ROOT / ".ci" / "run").read_text()
    )


@pytest.mark.parametrize("path", [README, *doc_files()], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_dated_or_session_wording(path: Path) -> None:
    found = DATED.findall(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)}: {found}"


def test_every_include_points_at_a_file() -> None:
    includes = []
    for page in doc_files():
        for spec in INCLUDE.findall(page.read_text(encoding="utf-8")):
            includes.append(spec)
            target = include_target(spec)
            assert target.is_file(), f"{page.relative_to(ROOT)} includes missing {spec}"
    assert includes, "no --8<-- includes found"


def test_every_benchmark_has_an_output_file_referenced_from_the_docs() -> None:
    pages = "\n".join(page.read_text(encoding="utf-8") for page in doc_files())
    scripts = sorted(p for p in (ROOT / "benchmarks").glob("bench_*.py"))
    assert scripts
    spec = importlib.util.spec_from_file_location(
        "_table_file", ROOT / "benchmarks" / "_table_file.py"
    )
    table_file = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table_file)
    for script in scripts:
        output = f"docs/results/{script.stem}.md"
        assert output in pages, f"{script.name}: {output} is not referenced from docs/"
        assert "default_out(__file__)" in script.read_text(encoding="utf-8"), script.name
        assert table_file.default_out(str(script)) == ROOT / output


def test_readme_links_resolve() -> None:
    links = [
        target
        for target in LINK.findall(README.read_text(encoding="utf-8"))
        if not re.match(r"[a-z]+:", target)
    ]
    assert any(link.startswith("docs/") for link in links)
    for link in links:
        path = ROOT / link.split("#", 1)[0]
        assert path.is_file(), f"README.md links to missing {link}"


def test_every_study_spec_field_is_documented() -> None:
    """docs/studies.md has a table row for each field of the spec and its sections."""
    from studies.spec import Outputs, ParetoSpec, PatternCase, StudySpec

    page = (DOCS / "studies.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", page, re.MULTILINE))
    for model in (StudySpec, PatternCase, ParetoSpec):
        missing = set(model.model_fields) - rows
        assert not missing, f"{model.__name__}: {sorted(missing)} not in docs/studies.md"
    for name in Outputs.model_fields:
        assert f"`{name}`" in page
