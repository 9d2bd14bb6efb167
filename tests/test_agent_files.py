"""Agent files tell the truth: valid frontmatter, commands the suite runs, only chosen technology.

Every combination of the render matrix is checked here. The frontmatter of each format is
validated against a JSON Schema in tests/schemas/ written from the vendor's documentation; the
agnix linter must find no errors; every command an agent file names is one the generated-project
tests run; and no agent file or README names a framework, database, broker or auth feature the
answers did not choose.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from .conftest import DOCUMENTED_FILES, FULL_VARIANTS, GeneratedProject
from .docs_agent_files import DOC_PATH, REGENERATE, render_doc
from .harness import (
    TEMPLATE_ROOT,
    choice_values,
    documented_command,
    documented_commands,
    is_client_app_command,
    is_one_shot_command,
    is_server_command,
    is_worker_command,
    questions,
    render,
)
from .test_render import AGENT_FILES_BY_CHOICE, MATRIX, matrix_id

SCHEMA_DIR = TEMPLATE_ROOT / "tests" / "schemas"

# Which schema checks which files: every file that matches a pattern is validated, so a new
# subagent, custom agent or rule is covered as soon as the template renders it.
FRONTMATTER_SCHEMAS = {
    ".claude/agents/*.md": "claude-subagent.schema.json",
    ".github/agents/*.agent.md": "copilot-custom-agent.schema.json",
    ".cursor/rules/*.mdc": "cursor-rule.schema.json",
}

AGENT_FILES = sorted(set().union(*AGENT_FILES_BY_CHOICE.values()))


@pytest.fixture(scope="module", params=MATRIX, ids=matrix_id)
def rendered(request: pytest.FixtureRequest, shared_render):
    answers = request.param
    return answers, shared_render(answers)


@cache
def validator(schema_name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / schema_name).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def split_frontmatter(text: str) -> tuple[Any, str]:
    assert text.startswith("---\n"), "frontmatter must open on the first line"
    header, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(header), body


def schema_errors(schema_name: str, meta: Any) -> list[str]:
    errors = validator(schema_name).iter_errors(meta)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}" for error in errors
    ]


def frontmatter_files(project: Path) -> Iterator[tuple[str, str]]:
    for pattern, schema_name in FRONTMATTER_SCHEMAS.items():
        for path in sorted(project.glob(pattern)):
            yield str(path.relative_to(project)), schema_name


def present_agent_files(project: Path) -> list[str]:
    return [name for name in AGENT_FILES if (project / name).exists()]


# --- Frontmatter ----------------------------------------------------------------------------------


def test_frontmatter_matches_the_vendor_schema(rendered) -> None:
    answers, project = rendered
    checked = []
    for name, schema_name in frontmatter_files(project):
        meta, body = split_frontmatter((project / name).read_text())
        assert schema_errors(schema_name, meta) == [], name
        assert body.strip(), f"{name}: the instructions after the frontmatter are empty"
        checked.append(name)
    expected = {
        "claude": ".claude/agents/backend-agent.md",
        "copilot": ".github/agents/backend.agent.md",
        "cursor": ".cursor/rules/backend.mdc",
    }
    assert sorted(checked) == sorted(
        path for choice, path in expected.items() if choice in answers["agent_files"]
    )


def test_claude_md_imports_agents_md(rendered) -> None:
    _, project = rendered
    claude = project / "CLAUDE.md"
    if claude.exists():
        assert claude.read_text().startswith("@AGENTS.md\n")
        assert (project / "AGENTS.md").exists()


def test_copilot_handoffs_only_name_rendered_agents(rendered) -> None:
    """Handoffs may only point at Copilot custom agents this project actually has."""
    _, project = rendered
    agents = sorted(project.glob(".github/agents/*.agent.md"))
    names = set()
    for path in agents:
        meta, _ = split_frontmatter(path.read_text())
        names.add(meta.get("name") or path.name.removesuffix(".agent.md"))
    for path in agents:
        meta, _ = split_frontmatter(path.read_text())
        for handoff in meta.get("handoffs", []):
            assert handoff["agent"] in names - {meta.get("name")}, (path.name, handoff)


def test_cursor_globs_match_files_of_the_project(rendered) -> None:
    _, project = rendered
    for path in project.glob(".cursor/rules/*.mdc"):
        meta, _ = split_frontmatter(path.read_text())
        globs = meta["globs"] if isinstance(meta["globs"], list) else meta["globs"].split(",")
        for pattern in (glob.strip() for glob in globs):
            assert next(project.glob(pattern), None), f"{path.name}: {pattern} matches nothing"


# One valid frontmatter per schema, as documented; each case below changes one key of it.
VALID_FRONTMATTER: dict[str, dict[str, Any]] = {
    "claude-subagent.schema.json": {
        "name": "backend-agent",
        "description": "Implements backend changes with tests.",
        "tools": "Read, Edit, Write, Grep, Glob, Bash",
        "model": "claude-sonnet-4-6",
        "color": "blue",
    },
    "copilot-custom-agent.schema.json": {
        "name": "backend",
        "description": "Implements backend changes with tests.",
        "tools": ["read", "edit", "search", "execute", "github/*"],
        "handoffs": [
            {"label": "Review", "agent": "reviewer", "prompt": "Review the change.", "send": False}
        ],
    },
    "cursor-rule.schema.json": {
        "description": "How the service is built and tested.",
        "globs": "src/**/*.py,tests/**/*.py",
        "alwaysApply": False,
    },
}
DROP = object()
# What users write by hand today (see the seeds of hand-written agent prompts) that the tools
# do not accept: invented keys, handoffs with `target`, tools and models that do not exist.
INVALID_CHANGES = [
    ("claude-subagent.schema.json", "triggers", ["Backend framework detected"]),
    ("claude-subagent.schema.json", "context_aware", True),
    ("claude-subagent.schema.json", "model", "claude-4-5-opus"),
    ("claude-subagent.schema.json", "tools", "Bash, Glob, Grep, LS, MultiEdit"),
    ("claude-subagent.schema.json", "color", "magenta"),
    ("claude-subagent.schema.json", "name", "Backend Agent"),
    ("claude-subagent.schema.json", "description", DROP),
    ("copilot-custom-agent.schema.json", "handoffs", [{"target": "api-agent", "label": "API"}]),
    ("copilot-custom-agent.schema.json", "handoffs", [{"agent": "reviewer", "label": "Review"}]),
    ("copilot-custom-agent.schema.json", "tools", ["read", "runCommands"]),
    ("copilot-custom-agent.schema.json", "infer", True),
    ("copilot-custom-agent.schema.json", "description", DROP),
    ("cursor-rule.schema.json", "alwaysApply", "true"),
    ("cursor-rule.schema.json", "globs", "/src/**/*.py"),
    ("cursor-rule.schema.json", "priority", 1),
]


@pytest.mark.parametrize("schema_name", sorted(VALID_FRONTMATTER))
def test_schemas_accept_documented_frontmatter(schema_name: str) -> None:
    assert schema_errors(schema_name, VALID_FRONTMATTER[schema_name]) == []


@pytest.mark.parametrize(
    ("schema_name", "key", "value"),
    INVALID_CHANGES,
    ids=[f"{schema.split('.')[0]}-{key}" for schema, key, _ in INVALID_CHANGES],
)
def test_schemas_refuse_what_the_tools_do_not_accept(
    schema_name: str, key: str, value: Any
) -> None:
    meta = dict(VALID_FRONTMATTER[schema_name])
    if value is DROP:
        del meta[key]
    else:
        meta[key] = value
    assert schema_errors(schema_name, meta) != []


# --- agnix ----------------------------------------------------------------------------------------

# Warnings agnix may report, with the reason each is wrong for these files. Anything else fails.
ACCEPTED_AGNIX_WARNINGS = {
    # "Cursor does not inline @-imports from CLAUDE.md": Cursor reads AGENTS.md itself and gets the
    # whole guide from .cursor/rules/backend.mdc, so nothing is missing for it.
    "XP-008": lambda answers: {"claude", "cursor"} <= set(answers["agent_files"]),
}


def agnix_path() -> str:
    found = shutil.which("agnix", path=str(Path(sys.executable).parent)) or shutil.which("agnix")
    assert found, "agnix is a pinned dev dependency: run `uv sync --locked`"
    return found


def test_agnix_finds_no_errors(rendered) -> None:
    answers, project = rendered
    if not present_agent_files(project):
        return
    result = subprocess.run(
        [agnix_path(), "--format", "json", "."],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    report = json.loads(result.stdout)
    assert report["files_checked"] == len(present_agent_files(project)), report
    problems = [
        f"{item['level']} {item['rule']} {item['file']}:{item['line']}: {item['message']}"
        for item in report["diagnostics"]
        if item["level"] == "error"
        or (
            item["level"] == "warning"
            and not ACCEPTED_AGNIX_WARNINGS.get(item["rule"], lambda _: False)(answers)
        )
    ]
    assert problems == []
    assert report["summary"]["errors"] == 0
    assert result.returncode == 0, result.stderr


# --- Commands -------------------------------------------------------------------------------------

# Tools a command in an agent file can start with; a code span or block line starting with one of
# these is a command, wherever it sits.
COMMAND_PREFIXES = (
    "uv ",
    "uvx ",
    "python ",
    "python3 ",
    "pip ",
    "pytest ",
    "alembic ",
    "ruff ",
    "mypy ",
    "celery ",
    "flask ",
    "django-admin ",
    "fastapi ",
    "docker ",
    "git ",
    "make ",
    "curl ",
)
# Commands an agent file names without telling the agent to run them, and why the suite skips them.
NAMED_NOT_RUN = {
    "uv add": "listed under 'Ask first': the agent asks before it adds a dependency",
}
# The Flet client's desktop window: it needs a screen, and on Linux its first run downloads Flet's
# desktop runtime from GitHub, which this suite cannot reach. The client's own tests check that the
# command asks Flet for the window (client/tests/test_main.py); its web mode, the same app, runs in
# tests/test_client.py.
DESKTOP_WINDOW = re.compile(r"^uv run --directory client python -m \w+_client$")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


def commands_anywhere(markdown: str) -> set[str]:
    """Commands in every code block (any language) and every inline code span."""
    found = set()
    for block in FENCE.findall(markdown):
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip()
            if command.startswith(COMMAND_PREFIXES):
                found.add(command)
    for span in CODE_SPAN.findall(FENCE.sub("", markdown)):
        if span.strip().startswith(COMMAND_PREFIXES):
            found.add(span.strip())
    return found


def test_every_agent_file_is_one_the_suite_reads() -> None:
    assert set(AGENT_FILES) <= set(DOCUMENTED_FILES)


@pytest.fixture(scope="module")
def commands_the_suite_runs(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Commands run on the full variants: every one-shot command documented in their README and
    agent files (test_generated_project.py), the first server command (the `live` fixture), the
    Celery worker and beat commands (test_celery.py) and the Flet client's web mode
    (test_client.py)."""
    commands: set[str] = set()
    for variant, answers in FULL_VARIANTS.items():
        project = render(tmp_path_factory.mktemp(variant) / "service", answers)
        documented = GeneratedProject(variant, answers, project).commands()
        servers = [command for command in documented if is_server_command(command)]
        commands |= {command for command in documented if is_one_shot_command(command)}
        commands |= {command for command in documented if is_worker_command(command)}
        if any(is_client_app_command(command) for command in documented):
            commands.add(documented_command((project / "README.md").read_text(), "in a browser"))
        commands |= set(servers[:1])
    return commands


def test_every_command_in_an_agent_file_is_run_by_the_suite(
    rendered, commands_the_suite_runs: set[str]
) -> None:
    """Whatever combination an agent file comes from, each command in it runs on a full variant."""
    _, project = rendered
    for name in present_agent_files(project):
        text = (project / name).read_text()
        named = set(documented_commands(text)) | commands_anywhere(text)
        not_run = named - commands_the_suite_runs - set(NAMED_NOT_RUN)
        not_run = {command for command in not_run if not DESKTOP_WINDOW.match(command)}
        assert not_run == set(), f"{name} names commands the suite never runs"


def test_the_command_scanner_sees_inline_and_unlabelled_commands() -> None:
    text = "Run `uv run pytest -x` first.\n\n```\nuv run ruff check  # lint\n```\n\n`uv.lock`\n"
    assert commands_anywhere(text) == {"uv run pytest -x", "uv run ruff check"}
    assert documented_commands(text) == []


# --- Only chosen technology -----------------------------------------------------------------------

# What each value of an option may name. A term is allowed when the chosen value of any option
# lists it (SQLite is both a database and a broker) and forbidden when only unchosen values do.
# Values planned in the design are listed before copier.yml offers them, so the check is ready.
VOCABULARY: dict[str, dict[Any, tuple[str, ...]]] = {
    "framework": {
        "fastapi": ("FastAPI", "SQLAlchemy", "Alembic", "Starlette"),
        "flask": ("Flask", "SQLAlchemy", "Alembic", "Flask-Migrate"),
        "django": ("Django",),
    },
    "database": {
        "sqlite": ("SQLite", "aiosqlite"),
        # Server projects run their tests on SQLite when DATABASE_URL is not set.
        "postgresql": ("PostgreSQL", "Postgres", "psycopg", "asyncpg", "SQLite", "aiosqlite"),
        "mysql": ("MySQL", "MariaDB", "PyMySQL", "asyncmy", "mysqlclient", "SQLite", "aiosqlite"),
    },
    "celery": {
        True: ("Celery", "celery beat", "worker"),
        False: (),
    },
    "broker": {
        # kombu's SQLAlchemy transport: Django projects name (and install) SQLAlchemy for it.
        "sqlite": ("SQLite", "kombu", "SQLAlchemy"),
        "redis": ("Redis",),
        "rabbitmq": ("RabbitMQ", "AMQP"),
    },
    "redis": {
        True: ("Redis",),
        False: (),
    },
    "graphql": {
        True: ("GraphQL", "Strawberry", "GraphiQL", "schema.graphql"),
        False: (),
    },
    "realtime": {
        True: ("WebSocket", "AsyncAPI", "/api/v1/ws"),
        False: (),
    },
    "docker": {
        True: ("Docker", "Dockerfile", "compose.yaml"),
        False: (),
    },
    "client": {
        "flet": ("Flet", "flet-web", "client/"),
        "none": (),
    },
    "ci": {
        "github": ("GitHub Actions",),
        "gitlab": ("GitLab",),
        "none": (),
    },
    "auth": {
        "jwt": (
            "JWT",
            "PyJWT",
            "argon2",
            "pwdlib",
            "password",
            "access token",
            "bearer",
            "SECRET_KEY",
        ),
        "none": (),
    },
}
# The value an option has when the questionnaire does not ask it (yet): these are the design's
# defaults. Options missing here (broker) are simply not chosen when unasked.
UNASKED = {
    "framework": "fastapi",
    "database": "sqlite",
    "auth": "jwt",
    "celery": False,
    "redis": False,
    "graphql": False,
    "realtime": False,
}


def chosen_values(project: Path) -> dict[str, Any]:
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    chosen = {}
    for option in VOCABULARY:
        value = recorded.get(option, UNASKED.get(option))
        if isinstance(value, str) and value in {"yes", "no"}:
            value = value == "yes"
        chosen[option] = value
    return chosen


def term_pattern(term: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9_]){re.escape(term)}(?![A-Za-z0-9_])", re.IGNORECASE)


def test_vocabulary_covers_every_choice_in_copier_yml() -> None:
    for option, spec in questions().items():
        if option not in VOCABULARY:
            continue
        missing = [value for value in choice_values(spec) if value not in VOCABULARY[option]]
        assert missing == [], f"add {option}={missing} to VOCABULARY in {Path(__file__).name}"


def test_files_name_the_chosen_technology_and_nothing_else(rendered) -> None:
    _, project = rendered
    chosen = chosen_values(project)
    for option, value in chosen.items():
        assert value is None or value in VOCABULARY[option], (
            f"{option}={value!r}: add it to VOCABULARY"
        )
    allowed = {
        term.lower()
        for option, value in chosen.items()
        for term in VOCABULARY[option].get(value, ())
    }
    forbidden = {
        term
        for values in VOCABULARY.values()
        for terms in values.values()
        for term in terms
        if term.lower() not in allowed
    }
    must_name = [
        terms[0] for option, value in chosen.items() if (terms := VOCABULARY[option].get(value))
    ]
    for name in ["README.md", *present_agent_files(project)]:
        text = (project / name).read_text()
        named = sorted(term for term in forbidden if term_pattern(term).search(text))
        assert named == [], f"{name} names technology that was not chosen: {named}"
        if name != "CLAUDE.md":  # CLAUDE.md imports AGENTS.md instead of repeating it
            missing = [term for term in must_name if not term_pattern(term).search(text)]
            assert missing == [], f"{name} does not name the chosen {missing}"


def test_the_vocabulary_check_catches_an_unchosen_name(tmp_path: Path) -> None:
    answers = {"auth": "none", "agent_files": ["agents_md"]}
    project = render(tmp_path / "open-service", answers)
    agents = project / "AGENTS.md"
    agents.write_text(agents.read_text() + "\nHash each password with argon2; cache in Redis.\n")
    with pytest.raises(AssertionError, match=r"not chosen: \['Redis', 'argon2', 'password'\]"):
        test_files_name_the_chosen_technology_and_nothing_else((answers, project))


# --- Documentation --------------------------------------------------------------------------------


def test_agent_files_doc_matches_a_fresh_render(tmp_path: Path) -> None:
    expected = render_doc(tmp_path)
    assert DOC_PATH.exists(), f"docs/agent-files.md is missing: run `{REGENERATE}`"
    assert DOC_PATH.read_text() == expected, (
        f"docs/agent-files.md is out of date: run `{REGENERATE}`"
    )
