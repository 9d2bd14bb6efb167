"""Every combination renders cleanly: no leftover Jinja or unchosen files, formatted, lint clean."""

import itertools
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from .conftest import DOCUMENTED_FILES
from .harness import copier_config, leftover_jinja

FRAMEWORKS = ["fastapi", "flask", "django"]
AUTH = ["jwt", "none"]
DATABASES = ["sqlite", "postgresql", "mysql"]
SERVER_DATABASE_FRAMEWORKS = {"fastapi", "flask", "django"}
PYTHON_VERSIONS = ["3.11", "3.12", "3.13"]
BROKERS = ["sqlite", "redis", "rabbitmq"]
AGENT_FILE_SETS = [
    [],
    ["agents_md"],
    ["agents_md", "claude"],
    ["copilot", "cursor", "gemini"],
    ["agents_md", "claude", "copilot", "cursor", "gemini"],
]
AGENT_FILES_BY_CHOICE = {
    "agents_md": {"AGENTS.md"},
    "claude": {"CLAUDE.md", ".claude/agents/backend-agent.md"},
    "copilot": {".github/copilot-instructions.md", ".github/agents/backend.agent.md"},
    "cursor": {".cursor/rules/backend.mdc"},
    "gemini": {"GEMINI.md"},
}
LICENSES = ["MIT", "Apache-2.0", "BSD-3-Clause", "proprietary"]

# Every framework x auth x python_version x agent_files combination; licences rotate through them.
MATRIX = [
    {
        "framework": framework,
        "auth": auth,
        "python_version": version,
        "agent_files": agents,
        "license": LICENSES[index % 4],
        # Frameworks wired for the server databases rotate through them.
        "database": DATABASES[index % 3] if framework in SERVER_DATABASE_FRAMEWORKS else "sqlite",
        # Every other row has Celery, brokers rotating.
        **({"celery": True, "broker": BROKERS[index % 3]} if index % 2 else {}),
        # Redis on two rows in four, so it meets every Celery setting.
        "redis": bool(index // 2 % 2),
        # GraphQL with two of the five agent-file sets (AGENTS.md alone, and every file), so it
        # meets every framework, auth and Python version, and every agent file mentions it.
        "graphql": index % 5 in {1, 4},
        # Real-time events on half the rows of every framework, with and without Celery, but not
        # on MySQL without Redis, which the questionnaire refuses.
        "realtime": index % 4 in {0, 1}
        and not (DATABASES[index % 3] == "mysql" and not index // 2 % 2),
        # The Flet client on every third row, so it meets every framework, auth and Python
        # version, with and without real-time events and Celery.
        "client": "flet" if index % 3 == 0 else "none",
    }
    for index, (framework, auth, version, agents) in enumerate(
        itertools.product(FRAMEWORKS, AUTH, PYTHON_VERSIONS, AGENT_FILE_SETS)
    )
] + [
    # Each framework with every option on and every agent file: the longest agent files (agnix
    # holds them to Claude Code's 200 lines) and the only rows with the admin site and Kubernetes.
    {
        "framework": framework,
        "auth": "jwt",
        "python_version": PYTHON_VERSIONS[-1],
        "agent_files": AGENT_FILE_SETS[-1],
        "license": "MIT",
        "database": "postgresql",
        "celery": True,
        "broker": "redis",
        "redis": True,
        "graphql": True,
        "realtime": True,
        "admin": True,
        "client": "flet",
        "deploy": "kubernetes",
    }
    for framework in FRAMEWORKS
]

# Files that exist only with auth=jwt, per framework.
JWT_FILES = {
    "fastapi": {
        "src/my_service/security.py",
        "src/my_service/rate_limit.py",
        "src/my_service/mail.py",
        "src/my_service/users/api.py",
        "tests/users/test_api.py",
        "tests/accounts.py",
    },
    "django": {
        "src/my_service/security.py",
        "src/my_service/auth.py",
        "src/my_service/rate_limit.py",
        "src/my_service/mail.py",
        "src/my_service/users/api.py",
        "src/my_service/users/migrations/0001_initial.py",
        "tests/users/test_api.py",
        "tests/accounts.py",
    },
    "flask": {
        "src/my_service/security.py",
        "src/my_service/rate_limit.py",
        "src/my_service/mail.py",
        "src/my_service/users/api.py",
        "tests/users/test_api.py",
        "tests/accounts.py",
    },
}


def matrix_id(answers: dict[str, object]) -> str:
    agents = "+".join(answers["agent_files"]) or "no-agents"  # type: ignore[arg-type]
    celery = f"-celery-{answers['broker']}" if answers.get("celery") else ""
    redis = "-redis" if answers.get("redis") else ""
    graphql = "-graphql" if answers.get("graphql") else ""
    realtime = "-realtime" if answers.get("realtime") else ""
    rest = "".join(
        f"-{name}"
        for name, on in [
            ("admin", answers.get("admin")),
            ("flet", answers.get("client") == "flet"),
            ("kubernetes", answers.get("deploy") == "kubernetes"),
        ]
        if on
    )
    return (
        f"{answers['framework']}-{answers['auth']}-py{answers['python_version']}"
        f"-{agents}-{answers['license']}-{answers['database']}{celery}{redis}{graphql}{realtime}"
        f"{rest}"
    )


@pytest.fixture(scope="module", params=MATRIX, ids=matrix_id)
def rendered(request: pytest.FixtureRequest, shared_render):
    answers = request.param
    return answers, shared_render(answers)


def files(project: Path) -> set[str]:
    return {str(path.relative_to(project)) for path in project.rglob("*") if path.is_file()}


def ruff(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # No .ruff_cache: the projects are shared with other tests, read-only.
        [sys.executable, "-m", "ruff", *args, "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_no_jinja_is_left(rendered) -> None:
    _, project = rendered
    assert leftover_jinja(project) == []


def test_only_chosen_options_produce_files(rendered) -> None:
    answers, project = rendered
    present = files(project)
    jwt_files = JWT_FILES[answers["framework"]]
    if answers["auth"] == "jwt":
        assert jwt_files <= present
    else:
        assert not jwt_files & present
        assert not any("users" in name for name in present)
    celery_files = {
        "src/my_service/celery_app.py",
        "src/my_service/worker.py",
        f"src/my_service/{'users' if answers['auth'] == 'jwt' else 'items'}/tasks.py",
    }
    if answers.get("celery"):
        assert celery_files <= present
    else:
        celery_names = ("tasks.py", "worker.py", "celery_app.py")
        assert not any(name.endswith(celery_names) for name in present)
    realtime_files = {"src/my_service/realtime.py", "tests/test_realtime.py"}
    if answers["realtime"]:
        assert realtime_files <= present
    else:
        assert not realtime_files & present
    for choice, names in AGENT_FILES_BY_CHOICE.items():
        if choice in answers["agent_files"]:
            assert names <= present, choice
        else:
            assert not names & present, choice


def test_no_empty_files_except_package_markers(rendered) -> None:
    _, project = rendered
    empty = {
        name
        for name in files(project)
        if (project / name).stat().st_size == 0 and not name.endswith(("__init__.py", "py.typed"))
    }
    assert empty == set()


def test_python_is_formatted_and_lint_clean(rendered) -> None:
    _, project = rendered
    formatted = ruff("format", "--check", "--diff", ".", cwd=project)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    linted = ruff("check", ".", cwd=project)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_answers_file_holds_the_answers_and_nothing_computed(rendered) -> None:
    answers, project = rendered
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    for name, value in answers.items():
        assert recorded[name] == value
    computed = {
        name
        for name, spec in copier_config().items()
        if isinstance(spec, dict) and spec.get("when") is False
    }
    assert computed, "copier.yml should define computed values"
    assert not computed & set(recorded)
    assert not any("secret" in name.lower() for name in recorded)


def test_pyproject_targets_the_chosen_python(rendered) -> None:
    answers, project = rendered
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    version = answers["python_version"]
    assert pyproject["project"]["requires-python"] == ">=3.11"
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + version.replace(".", "")
    assert pyproject["tool"]["mypy"]["python_version"] == version


def test_license_matches_the_answer(rendered) -> None:
    answers, project = rendered
    text = (project / "LICENSE").read_text()
    first_words = {
        "MIT": "MIT License",
        "Apache-2.0": "Apache License",
        "BSD-3-Clause": "BSD 3-Clause License",
        "proprietary": "All rights reserved",
    }
    assert first_words[answers["license"]] in text
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    expected = (
        "LicenseRef-Proprietary" if answers["license"] == "proprietary" else answers["license"]
    )
    assert pyproject["project"]["license"] == expected


def test_template_dev_tools_match_the_generated_pins() -> None:
    """The template checks formatting with the same ruff the generated projects pin."""
    pins = copier_config()["pins"]["default"]
    dev = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert f"ruff=={pins['ruff']}" in dev["dependency-groups"]["dev"]


EMPTY_CODE_SPAN = re.compile(r"(?<!`)``(?!`)")


def test_documents_have_no_empty_values(rendered) -> None:
    _, project = rendered
    for name in DOCUMENTED_FILES:
        path = project / name
        if path.exists():
            text = path.read_text()
            assert not EMPTY_CODE_SPAN.search(text), f"{name} has an empty `` value"


def test_instruction_files_put_the_rules_first_and_stay_small(rendered) -> None:
    _, project = rendered
    for name in ("AGENTS.md", "GEMINI.md", ".github/copilot-instructions.md"):
        path = project / name
        if not path.exists():
            continue
        text = path.read_text()
        assert len(text.encode()) < 32 * 1024, name
        head = text[:4000]
        for must in ("## Commands", "uv run pytest", "uv run mypy", "## Boundaries", "**Never:**"):
            assert must in head, f"{name}: {must}"
