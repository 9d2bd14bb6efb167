"""Each generated project works as its README and agent files say, command by command."""

import os
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from .conftest import GeneratedProject, on_variants, one_each
from .harness import (
    answer_refusal,
    assert_ok,
    is_one_shot_command,
    migration_files,
    project_env,
    run,
)


def test_post_copy_made_a_repository_with_a_lock_file(generated: GeneratedProject) -> None:
    log = run("git log --format=%s", generated.path)
    assert_ok(log, "git log")
    assert log.stdout.splitlines() == ["Start from copier-backend"]
    tracked = run("git ls-files", generated.path).stdout.splitlines()
    assert "uv.lock" in tracked
    assert ".copier-answers.yml" in tracked
    # Migrating created app.db, which .gitignore keeps out of the repository.
    assert run("git status --porcelain", generated.path).stdout == ""


def test_every_documented_command_works(
    generated: GeneratedProject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    commands = generated.commands()
    one_shot = [command for command in commands if is_one_shot_command(command)]
    expected = {"uv sync", "uv run pytest", "uv run ruff check", "uv run mypy"}
    assert expected <= set(one_shot), f"documented commands: {commands}"
    before = migration_files(generated.path)
    # The superuser command reads its password where the README says, never the command line.
    passwords = {"SUPERUSER_PASSWORD": "long enough", "DJANGO_SUPERUSER_PASSWORD": "long enough"}
    # mypy's cache is shared by the variants of a framework on this worker, as a developer's
    # machine keeps it between runs: mypy checks each cached module against its file's hash and
    # its options, so only the third-party modules that are the same are taken from it (strict
    # mypy spends most of a cold run in them).
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    cache = tmp_path_factory.getbasetemp() / f"mypy-cache-{worker}-{generated.framework}"
    for command in one_shot:
        own = passwords if "superuser" in command else {}
        env = project_env(MYPY_CACHE_DIR=str(cache), **own)
        result = run(command, generated.path, env=env)
        assert_ok(result, command)
        if command == "uv run pytest":
            summary = result.stdout.strip().splitlines()[-1]
            assert re.search(r"\d+ passed", summary), summary
            assert "skipped" not in summary, "the generated tests must all run"
    for migration in migration_files(generated.path) - before:
        # With models and migrations in step, the documented "write a migration" command must
        # find nothing to do: Django writes no file, Alembic an empty one.
        text = migration.read_text()
        assert "def upgrade() -> None:" in text, f"unexpected migration {migration}:\n{text}"
        upgrade = text.split("def upgrade() -> None:", 1)[1].split("def downgrade", 1)[0]
        statements = [
            line.strip() for line in upgrade.splitlines() if line.strip() and "#" not in line
        ]
        assert statements == ["pass"], text
        migration.unlink()
    if generated.answers.get("graphql"):
        # The documented schema command printed the schema the project committed, byte for byte.
        changed = run("git status --porcelain -- schema.graphql", generated.path).stdout
        assert changed == "", changed


@on_variants(["default"])
def test_pre_commit_runs_the_ci_checks_and_stops_a_commit_that_fails_them(
    generated: GeneratedProject,
) -> None:
    """The hooks are the documented lint, format and type checks, run from the locked environment
    (local hooks: nothing to download, no second set of versions), and they stop a bad commit."""
    config = yaml.safe_load((generated.path / ".pre-commit-config.yaml").read_text())
    assert {repo["repo"] for repo in config["repos"]} == {"local"}
    entries = [hook["entry"] for repo in config["repos"] for hook in repo["hooks"]]
    # The README's commands, fixing rather than checking the format as a commit hook does.
    documented = {"uv run ruff check", "uv run ruff format --check", "uv run mypy"}
    assert documented <= set(generated.commands())
    plain = [entry.replace(" --frozen", "").replace(" --force-exclude", "") for entry in entries]
    assert plain == ["uv lock --check", "uv run ruff check", "uv run ruff format", "uv run mypy"]
    dev = tomllib.loads((generated.path / "pyproject.toml").read_text())["dependency-groups"]
    assert any(re.fullmatch(r"pre-commit==[\d.]+", pin) for pin in dev["dev"]), dev

    assert_ok(run("uv run pre-commit install", generated.path), "uv run pre-commit install")
    head = run("git rev-parse HEAD", generated.path).stdout
    probe = Path("src") / "pre_commit_probe.py"
    (generated.path / probe).write_text("import os\n")  # an unused import: ruff's F401
    try:
        assert_ok(run(f"git add {probe}", generated.path), "git add")
        commit = run("git commit -q -m 'An unused import'", generated.path)
        hooks = commit.stdout + commit.stderr  # git shows the hook's output on stderr
        assert commit.returncode != 0, hooks
        assert re.search(r"^ruff check\.+Failed$", hooks, re.MULTILINE), hooks
        assert "F401" in hooks, hooks
        assert run("git rev-parse HEAD", generated.path).stdout == head
    finally:
        run(f"git rm -q --cached --ignore-unmatch {probe}", generated.path)
        (generated.path / probe).unlink(missing_ok=True)
    assert run("git status --porcelain", generated.path).stdout == ""


@on_variants(
    one_each("framework", "database", where=lambda answers: answers["database"] != "sqlite")
)
def test_the_tests_need_no_database_url(generated: GeneratedProject) -> None:
    """With DATABASE_URL unset (environment and .env) the project's tests run on SQLite, even in
    a project made for a server (each framework and server once; a SQLite project's .env sets
    none anyway); the Django flavour's settings test checks the vendor."""
    env_file = generated.path / ".env"
    aside = generated.path.parent / "env.aside"
    if env_file.exists():
        env_file.rename(aside)
    try:
        command = "uv run pytest -q tests/test_settings.py tests/test_migrations.py"
        # As the generated CI runs them: no .env, ENVIRONMENT=test in the environment.
        result = run(command, generated.path, env={**project_env(), "ENVIRONMENT": "test"})
        assert_ok(result, command)
        summary = result.stdout.strip().splitlines()[-1]
        assert re.search(r"\d+ passed", summary), summary
        assert "skipped" not in summary, summary
    finally:
        if aside.exists():
            aside.rename(env_file)


def installed_modules(venv: Path) -> set[str]:
    """Top-level names a project's environment can import (packages, modules, extensions)."""
    (site_packages,) = venv.glob("lib/python3*/site-packages")
    names = set()
    for entry in site_packages.iterdir():
        if entry.suffix in {".dist-info", ".pth"} or entry.name.startswith(("_", ".")):
            continue
        if entry.is_dir() or entry.suffix in {".py", ".so", ".pyi"}:
            names.add(entry.name.split(".", 1)[0])
    return names


def test_no_installed_module_can_be_the_project_slug(generated: GeneratedProject) -> None:
    """A package named like one of its own dependencies would shadow it (or be shadowed): the
    questionnaire refuses every name the generated environment installs."""
    slug = yaml.safe_load((generated.path / ".copier-answers.yml").read_text())["project_slug"]
    modules = installed_modules(generated.path / ".venv") - {slug}
    identifiers = {name for name in modules if re.fullmatch(r"[a-z][a-z0-9_]{0,49}", name)}
    accepted = sorted(name for name in identifiers if not answer_refusal("project_slug", name))
    assert not accepted, (
        f"add these to the refused names in includes/reserved_names.jinja: {accepted}"
    )
