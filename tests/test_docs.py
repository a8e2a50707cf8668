"""The documentation: the README stays what a newcomer reads first (two commands, links that
resolve), and the site in docs/ builds strictly — a broken link, a missing anchor or a page
left out of the navigation fails the build, which these tests prove by breaking a copy. The CLI
reference is generated from the Typer app, so it lists every command the app has."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from releasegate.app import app

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
README = ROOT / "README.md"


def test_the_readme_is_short_and_starts_with_the_two_commands() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    first_block = text.split("```", 2)[1]
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == [
        "make demo",
        "make test",
    ]


def test_every_link_of_the_readme_to_a_file_resolves() -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text())
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert local, "the README links its pages"
    missing = [link for link in local if not (ROOT / link).exists()]
    assert missing == []
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"cli.md"}  # cli.md: generated
    linked = {Path(link).name for link in local if link.startswith("docs/")}
    assert pages - linked == set(), "every page is reachable from the README"


def site(tmp_path: Path) -> Path:
    """A copy of mkdocs.yml and docs/, with the CLI reference generated from the Typer app."""
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("cli.md"))
    subprocess.run(
        [BIN / "typer", "releasegate.app", "utils", "docs", "--name", "releasegate",
         "--title", "CLI reference", "--output", tmp_path / "docs" / "cli.md"],
        check=True, capture_output=True, cwd=ROOT,
    )  # fmt: skip
    return tmp_path


def build(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "mkdocs", "build", "--strict", "--site-dir", project / "site"],
        cwd=project, capture_output=True, text=True, check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = site(tmp_path_factory.mktemp("site"))
    done = build(project)
    assert done.returncode == 0, done.stderr
    return project


def test_the_site_builds_strictly_with_every_page(built: Path) -> None:
    for page in (built / "docs").glob("*.md"):
        name = "" if page.stem == "index" else f"{page.stem}/"
        assert (built / "site" / name / "index.html").exists(), page.name


def test_the_cli_reference_lists_every_command_of_the_app(built: Path) -> None:
    reference = (built / "docs" / "cli.md").read_text()
    commands = [c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands]
    assert {"deploy", "freeze", "metrics", "event"} <= set(commands)
    for command in commands:
        assert f"## `releasegate {command}`" in reference, command
    assert "--override-freeze" in reference and "--since" in reference


@pytest.mark.parametrize(
    ("breakage", "said"),
    [
        (lambda docs: _append(docs / "freeze.md", "\nSee [metrics](metric.md).\n"), "metric.md"),
        (
            lambda docs: _append(docs / "freeze.md", "\nSee [bands](metrics.md#no-such-heading).\n"),
            "no-such-heading",
        ),
        (lambda docs: (docs / "orphan.md").write_text("# Orphan\n"), "orphan.md"),
    ],
    ids=["broken link", "missing anchor", "page not in the navigation"],
)
def test_a_broken_site_fails_the_strict_build(tmp_path: Path, breakage: object, said: str) -> None:
    project = site(tmp_path)
    breakage(project / "docs")  # type: ignore[operator]
    done = build(project)
    assert done.returncode != 0
    assert said in done.stderr


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)
