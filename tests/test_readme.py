"""The two commands a newcomer reads first work exactly as written."""

import shutil
import subprocess
from pathlib import Path

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


def test_readme_generate_command_works_as_written(tmp_path: Path) -> None:
    """Run from a copy of this checkout, so `../my-service` lands in the temporary folder."""
    checkout = tmp_path / "copier-backend"
    shutil.copytree(
        TEMPLATE_ROOT, checkout, ignore=shutil.ignore_patterns(".venv", "__pycache__", ".*_cache")
    )
    generate = readme_commands()[0]
    result = run(generate, checkout, env=project_env(), timeout=600)
    assert_ok(result, generate)
    project = tmp_path / "my-service"
    assert (project / "src" / "my_service" / "app.py").is_file()
    assert (project / "uv.lock").is_file(), result.stdout + result.stderr
    assert "Next steps:" in result.stdout
    log = run("git log --oneline", project)
    assert len(log.stdout.splitlines()) == 1
