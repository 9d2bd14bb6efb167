"""Bad answers are refused at the question, with a message saying what to type instead."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from pytest_copie.plugin import Copie

from .harness import TEMPLATE_ROOT, questions, render

FRAMEWORKS = ["fastapi", "flask", "django"]

# (answers, words the refusal must contain)
REFUSED = [
    ({"project_name": ""}, "Type 1-64 characters"),
    ({"project_name": "9lives"}, "starting with a letter"),
    ({"project_name": "../../etc"}, "starting with a letter"),
    ({"project_name": "Name; rm -rf /"}, "Type 1-64 characters"),
    ({"project_name": "x" * 65}, "Type 1-64 characters"),
    ({"project_slug": "My-Service"}, "lowercase Python identifier"),
    ({"project_slug": "1service"}, "lowercase Python identifier"),
    ({"project_slug": "my service"}, "lowercase Python identifier"),
    ({"project_slug": "src/evil"}, "lowercase Python identifier"),
    ({"project_slug": "class"}, "is a Python keyword"),
    ({"project_slug": "async"}, "is a Python keyword"),
    ({"project_slug": "json"}, "would shadow the Python module"),
    ({"project_slug": "fastapi"}, "would shadow the Python module"),
    ({"project_slug": "tests"}, "would shadow the Python module"),
    ({"project_slug": "werkzeug"}, "would shadow the Python module"),
    ({"project_slug": "ninja"}, "would shadow the Python module"),
    ({"description": ""}, "1-200 characters"),
    ({"description": "two\nlines"}, "no control characters or line breaks"),
    ({"author_name": ""}, "Type 1-100 characters"),
    ({"author_name": 'Evil "Quote'}, "without line breaks, quotes"),
    ({"author_email": "not-an-email"}, "Type an email address"),
    ({"author_email": "a@b"}, "Type an email address"),
    ({"author_email": "a b@example.com"}, "Type an email address"),
    ({"framework": "rails"}, "Invalid choice"),
    ({"database": "oracle"}, "Invalid choice"),
    ({"auth": "basic"}, "Invalid choice"),
    ({"broker": "kafka", "celery": True}, "Invalid choice"),
    ({"python_version": "3.10"}, "Invalid choice"),
    ({"license": "GPL"}, "Invalid choice"),
    ({"agent_files": ["claude"]}, "select agents_md too"),
    ({"agent_files": ["windsurf"]}, "Invalid choice"),
    ({"deploy": "kubernetes"}, "cannot share SQLite's file: type none here"),
    (
        {"deploy": "kubernetes", "database": "postgresql", "celery": True, "broker": "sqlite"},
        "SQLite broker's file: type none here",
    ),
    ({"deploy": "helm"}, "Invalid choice"),
    ({"realtime": True, "database": "mysql"}, "copy again with redis yes"),
]


@pytest.mark.parametrize(
    ("answers", "message"),
    REFUSED,
    ids=[f"{next(iter(a))}={next(iter(a.values()))!r:.30}" for a, _ in REFUSED],
)
def test_bad_answer_is_refused_with_a_message_and_writes_nothing(
    copie: Copie, answers: dict[str, object], message: str
) -> None:
    """Through pytest-copie, as the answers' defaults under `--defaults`: Copier validates them
    like `--data` answers."""
    result = copie.copy(extra_answers=answers, template_dir=TEMPLATE_ROOT)
    assert isinstance(result.exception, ValueError), result
    assert re.search(message, str(result.exception)), result.exception
    assert next(iter(answers)) in str(result.exception)
    # pytest-copie makes the project's folder before Copier runs: it is left empty.
    (folder,) = copie.test_dir.iterdir()
    assert list(folder.iterdir()) == []


def test_the_cli_refuses_a_bad_data_answer_before_writing(tmp_path: Path) -> None:
    destination = tmp_path / "project"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "copier",
            "copy",
            "--trust",
            "--defaults",
            "-d",
            "project_slug=class",
            str(TEMPLATE_ROOT),
            str(destination),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "'class' is a Python keyword: type another name" in result.stderr
    assert not destination.exists()


@pytest.mark.parametrize(
    "answers",
    [
        {"project_name": "Orders Service"},
        {"project_name": "Billing-API v2.0"},
        {"project_slug": "billing_api_2"},
        {"description": 'Ünïcode — and "quotes" are fine in a description'},
        {"author_name": "Zoë O'Brien"},
        {"author_email": "first.last+tag@sub.example.co.uk"},
        {"agent_files": []},
        {"agent_files": ["agents_md"]},
    ],
)
def test_good_answers_are_accepted(tmp_path: Path, answers: dict[str, object]) -> None:
    project = render(tmp_path / "project", answers)
    assert (project / "pyproject.toml").is_file()


@pytest.mark.parametrize("database", ["postgresql", "mysql"])
@pytest.mark.parametrize("framework", ["fastapi", "flask", "django"])
def test_every_framework_accepts_every_database_server(
    tmp_path: Path, framework: str, database: str
) -> None:
    project = render(tmp_path / "project", {"framework": framework, "database": database})
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert (answers["framework"], answers["database"]) == (framework, database)
    assert f"DATABASE_URL={database}://" in (project / ".env.example").read_text()


def test_slug_is_derived_from_the_name(tmp_path: Path) -> None:
    project = render(tmp_path / "project", {"project_name": "Orders Service - EU"})
    assert (project / "src" / "orders_service_eu").is_dir()


def test_every_question_has_help() -> None:
    missing = [name for name, spec in questions().items() if not spec.get("help")]
    assert missing == []


def test_every_free_text_question_has_a_validator() -> None:
    free_text = [
        name
        for name, spec in questions().items()
        if spec.get("type", "str") == "str" and "choices" not in spec
    ]
    assert free_text == [
        "project_name",
        "project_slug",
        "description",
        "author_name",
        "author_email",
    ]
    assert all("validator" in questions()[name] for name in free_text)


# Hostile values for every free-text question: path tricks, shell metacharacters, quotes and
# escapes, template syntax, markup, unicode, control characters, empty and over-long text.
HOSTILE_TEXT = [
    "",
    " ",
    "..",
    "../../outside",
    "/etc/passwd",
    "C:\\Users\\new\\x41",
    "a\\",
    "$(touch /tmp/pwned); `id` | cat && echo >x",
    '"""',
    'ends with a quote"',
    "O'Brien's \"service\"",
    "{{ 7 * 7 }} {% raw %} {#",
    "<script>alert(1)</script>",
    "# heading: [x], {y}: z",
    "---",
    "żółć — 日本語 🚀",
    "\u202eevil",
    "line\nbreak",
    "tab\there",
    "nul\x00byte",
    "x" * 300,
    "class",
    "tests",
]
FREE_TEXT = ["project_name", "project_slug", "description", "author_name", "author_email"]


def frontmatter(text: str) -> str | None:
    if not text.startswith("---\n"):
        return None
    return text.split("\n---\n", 1)[0].removeprefix("---\n")


def assert_sound(project: Path) -> None:
    """Every rendered Python file compiles and every TOML and YAML document parses."""
    for path in project.rglob("*"):
        if not path.is_file() or ".git" in path.parts:
            continue
        text = path.read_text()
        if path.suffix == ".py":
            compile(text, str(path), "exec")
        elif path.suffix == ".toml":
            tomllib.loads(text)
        elif path.suffix in {".yml", ".yaml"}:
            list(yaml.safe_load_all(text))
        elif path.suffix in {".md", ".mdc"} and (header := frontmatter(text)) is not None:
            assert isinstance(yaml.safe_load(header), dict), path
    for command in (["check", "--quiet"], ["format", "--check", "--quiet"]):
        result = subprocess.run(
            [Path(sys.executable).parent / "ruff", *command, "."],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def refusal(destination: Path, answers: dict[str, object]) -> str | None:
    """The questionnaire's refusal of these answers, or None when the project rendered."""
    try:
        render(destination, answers)
    except ValueError as error:
        return str(error)
    return None


@pytest.mark.parametrize("question", FREE_TEXT)
def test_hostile_text_is_refused_or_rendered_safely(tmp_path: Path, question: str) -> None:
    """Each hostile value is refused with a message before anything is written, or is accepted
    and the project stays sound: the value lands verbatim in pyproject.toml and breaks no Python,
    TOML or YAML file."""
    accepted = []
    for index, value in enumerate(HOSTILE_TEXT):
        destination = tmp_path / f"project-{index}"
        framework = FRAMEWORKS[index % len(FRAMEWORKS)]
        answers = {question: value, "framework": framework, "docker": framework == "fastapi"}
        message = refusal(destination, answers)
        if message is not None:
            # The package name is derived from the project name, so a name can be refused there.
            asked = {question, "project_slug"} if question == "project_name" else {question}
            assert any(f"question '{name}'" in message for name in asked), message
            assert "Type" in message or "type another name" in message, message
            assert not destination.exists()
            continue
        accepted.append(value)
        assert_sound(destination)
        pyproject = tomllib.loads((destination / "pyproject.toml").read_text())["project"]
        if question == "description":
            assert pyproject["description"] == value
        elif question == "author_name":
            assert pyproject["authors"][0]["name"] == value
    # The checks above must have seen both outcomes for the questions that take prose.
    if question in {"description", "author_name"}:
        assert accepted, "no hostile value was accepted: the soundness checks never ran"
