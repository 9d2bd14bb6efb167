"""The two commands a newcomer reads first work exactly as written."""

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from .harness import TEMPLATE_ROOT, assert_ok, documented_commands, project_env, run

README = TEMPLATE_ROOT / "README.md"


def readme_commands() -> list[str]:
    return documented_commands(README.read_text())


def test_readme_starts_with_the_generate_and_test_commands() -> None:
    generate, test = readme_commands()[:2]
    assert generate.startswith("uvx copier@")
    assert " copy " in generate
    assert "--defaults" in generate
    assert test == "uv run pytest"
    # The two commands come before any other section of the README.
    assert README.read_text().index(generate) < README.read_text().index("\n## ")


def test_ci_runs_the_readme_test_command() -> None:
    extracted = subprocess.run(
        [
            "bash",
            "-c",
            "sed -n 's/^\\(uv run pytest[^#]*\\)#.*run the template.s tests.*$/\\1/p' "
            "README.md | head -n 1 | sed 's/[[:space:]]*$//'",
        ],
        cwd=TEMPLATE_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert extracted.stdout.strip() == readme_commands()[1]
    assert "sed -n 's/^\\(uv run pytest" in (TEMPLATE_ROOT / ".ci" / "run").read_text()


IDENTITY = ["-c", "user.name=Template Maintainer", "-c", "user.email=maintainer@example.com"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *IDENTITY, *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def copier(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The copier command line, as the version this environment pins."""
    return subprocess.run(
        [sys.executable, "-m", "copier", *args],
        cwd=project,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_readme_generate_command_works_as_written(tmp_path: Path) -> None:
    """Run from a copy of this checkout, so `../my-service` lands in the temporary folder; then
    the project finds its template again: up to date, behind a newer release, updated to it."""
    checkout = tmp_path / "copier-backend"
    shutil.copytree(
        TEMPLATE_ROOT, checkout, ignore=shutil.ignore_patterns(".venv", "__pycache__", ".*_cache")
    )
    # The copy as a clean clone would be: what a developer has not committed, committed.
    git(checkout, "add", "--all")
    git(checkout, "commit", "--quiet", "--no-verify", "--allow-empty", "-m", "Working tree")
    generate = readme_commands()[0]
    result = run(generate, checkout, env=project_env(), timeout=600)
    assert_ok(result, generate)
    project = tmp_path / "my-service"
    assert (project / "src" / "my_service" / "app.py").is_file()
    assert (project / "uv.lock").is_file(), result.stdout + result.stderr
    assert "Next steps:" in result.stdout
    log = run("git log --oneline", project)
    assert len(log.stdout.splitlines()) == 1

    # The answers file names a source `copier update` reaches from inside the project.
    source = yaml.safe_load((project / ".copier-answers.yml").read_text())["_src_path"]
    assert Path(source) == checkout, source
    assert copier(project, "check-update", "--quiet").returncode == 0
    released = bool(git(checkout, "tag", "--list").strip())
    (checkout / "template" / "CONTRIBUTING.md").write_text("# Contributing\n")
    git(checkout, "add", "--all")
    git(checkout, "commit", "--quiet", "--no-verify", "-m", "A newer release")
    # A clone without release tags (a fork, a CI clone that drops tags) versions each commit
    # (0.0.0.postN.dev0+hash), so a newer commit is an update; with tags it is not a release.
    behind = copier(project, "check-update", "--quiet").returncode
    assert behind == (0 if released else 2), behind
    git(checkout, "tag", "-a", "99.0.0", "-m", "copier-backend 99.0.0")
    assert copier(project, "check-update", "--quiet").returncode == 2
    updated = copier(project, "update", "--trust", "--defaults")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert (project / "CONTRIBUTING.md").is_file()
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "99.0.0"
