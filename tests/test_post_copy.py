"""The post-copy step: each part that cannot run is skipped with a message saying what to do.

Where the step runs as it does for a user, in the test's own environment, Copier runs it through
pytest-copie (`copie`). Where it must run in another environment (no git or uv on the PATH,
offline, an empty cache) or after the test changed the rendered project, the project is rendered
without it and the test runs the hook itself.
"""

import subprocess
import sys
from pathlib import Path

import pytest
from pytest_copie.plugin import Copie

from .harness import TEMPLATE_ROOT, project_env, render

HOOK = TEMPLATE_ROOT / "hooks" / "post_copy.py"
NEXT_STEPS = ["uv sync", "uv run alembic upgrade head", "uv run fastapi dev"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return render(tmp_path / "service", {})


def run_hook(project: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HOOK), *NEXT_STEPS],
        cwd=project,
        env=project_env(**env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def git(project: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=project, capture_output=True, text=True, check=True
    ).stdout


def copied_with_the_task(copie: Copie) -> Path:
    """`copier copy --defaults` with the post-copy task, as Copier runs it (its arguments are
    the next steps the answers give)."""
    result = copie.copy(template_dir=TEMPLATE_ROOT)
    assert result.exception is None, result.exception  # a task that fails is raised here
    assert result.project_dir is not None
    return result.project_dir


def test_creates_repository_lock_and_first_commit(
    copie: Copie, capfd: pytest.CaptureFixture[str]
) -> None:
    project = copied_with_the_task(copie)
    stdout = capfd.readouterr().out  # the hook's messages (Copier's own go to stderr)
    assert "Created a git repository" in stdout
    assert "Wrote uv.lock." in stdout
    assert "Made the first commit." in stdout
    assert "uv.lock" in git(project, "ls-files").splitlines()
    assert git(project, "status", "--porcelain") == ""
    for step in NEXT_STEPS:
        assert step in stdout


def test_leaves_an_enclosing_repository_alone(
    copie: Copie, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # pytest-copie renders inside tmp_path: make that the user's repository.
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    project = copied_with_the_task(copie)
    assert project.is_relative_to(tmp_path)
    assert "Already inside a git repository" in capfd.readouterr().out
    assert not (project / ".git").exists()
    assert git(tmp_path, "log", "--oneline", "--all") == ""  # no commit made for the user


def test_without_git_or_uv_it_says_what_to_run(project: Path, tmp_path: Path) -> None:
    # A PATH holding only the Python interpreter: no git, no uv.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    result = run_hook(project, PATH=str(bin_dir))
    assert result.returncode == 0
    assert "git not found: skipped `git init`" in result.stdout
    assert "uv not found: skipped locking" in result.stdout
    assert "uv lock" in result.stdout
    assert not (project / ".git").exists()


def test_offline_falls_back_to_the_uv_cache(project: Path) -> None:
    # Fill the cache the way an earlier online run would have, then cut the network.
    subprocess.run(["uv", "lock", "-q"], cwd=project, env=project_env(), check=True, timeout=600)
    (project / "uv.lock").unlink()
    result = run_hook(project, **offline())
    assert "Wrote uv.lock from uv's cache (offline)." in result.stdout, result.stdout
    assert (project / "uv.lock").is_file()


def test_offline_with_an_empty_cache_says_to_lock_later(project: Path, tmp_path: Path) -> None:
    result = run_hook(project, UV_CACHE_DIR=str(tmp_path / "empty-cache"), **offline())
    assert result.returncode == 0
    assert "When online, run: uv lock" in result.stdout
    assert not (project / "uv.lock").exists()
    assert "Made the first commit." in result.stdout  # the rest of the setup still happened


def offline() -> dict[str, str]:
    """Environment in which every download fails at once: a proxy nobody listens on."""
    dead_proxy = "http://127.0.0.1:9"
    return {
        "HTTPS_PROXY": dead_proxy,
        "HTTP_PROXY": dead_proxy,
        "ALL_PROXY": dead_proxy,
        "UV_HTTP_RETRIES": "0",
        "NO_PROXY": "",
    }


def recorded_source(project: Path) -> str:
    text = (project / ".copier-answers.yml").read_text()
    return next(line for line in text.splitlines() if line.startswith("_src_path:"))


def test_a_relative_template_path_is_recorded_as_an_absolute_one(project: Path) -> None:
    """`copier copy . ../service` records `.`, which `copier update` would look up inside the
    project; the step records the template's absolute path and says so."""
    answers = project / ".copier-answers.yml"
    answers.write_text(answers.read_text().replace(recorded_source(project), "_src_path: ."))
    result = run_hook(project)
    assert result.returncode == 0, result.stderr
    assert recorded_source(project) == f"_src_path: {TEMPLATE_ROOT}"
    assert "recorded its absolute path" in result.stdout
    assert "generate from the repository's URL" in result.stdout


@pytest.mark.parametrize("source", ["gh:acme/copier-backend", "https://git.example.com/t.git"])
def test_a_url_source_is_left_as_it_is(project: Path, source: str) -> None:
    answers = project / ".copier-answers.yml"
    recorded = answers.read_text().replace(recorded_source(project), f"_src_path: {source}")
    answers.write_text(recorded)
    result = run_hook(project)
    assert recorded_source(project) == f"_src_path: {source}"
    assert "_src_path" not in result.stdout
