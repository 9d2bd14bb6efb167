"""Bad answers are refused at the question, with a message saying what to type instead."""

import subprocess
import sys
from pathlib import Path

import pytest

from .harness import TEMPLATE_ROOT, questions, render

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
    ({"description": ""}, "1-200 characters"),
    ({"description": "two\nlines"}, "no control characters or line breaks"),
    ({"author_name": ""}, "Type 1-100 characters"),
    ({"author_name": 'Evil "Quote'}, "without line breaks, quotes"),
    ({"author_email": "not-an-email"}, "Type an email address"),
    ({"author_email": "a@b"}, "Type an email address"),
    ({"author_email": "a b@example.com"}, "Type an email address"),
    ({"framework": "rails"}, "Invalid choice"),
    ({"database": "oracle"}, "Invalid choice"),
    # Server databases are wired for FastAPI and Django so far: Flask refuses them.
    ({"database": "postgresql", "framework": "flask"}, "available with FastAPI and Django"),
    ({"database": "mysql", "framework": "flask"}, "available with FastAPI and Django"),
    ({"auth": "basic"}, "Invalid choice"),
    # Celery is wired for FastAPI so far: Flask and Django refuse it.
    (
        {"celery": True, "framework": "flask"},
        "answer no \\(celery=false\\), or choose framework fastapi",
    ),
    ({"celery": True, "framework": "django"}, "Celery is available with FastAPI"),
    ({"broker": "kafka", "celery": True}, "Invalid choice"),
    ({"python_version": "3.10"}, "Invalid choice"),
    ({"license": "GPL"}, "Invalid choice"),
    ({"agent_files": ["claude"]}, "select agents_md too"),
    ({"agent_files": ["windsurf"]}, "Invalid choice"),
]


@pytest.mark.parametrize(
    ("answers", "message"),
    REFUSED,
    ids=[f"{next(iter(a))}={next(iter(a.values()))!r:.30}" for a, _ in REFUSED],
)
def test_bad_answer_is_refused_with_a_message_and_writes_nothing(
    tmp_path: Path, answers: dict[str, object], message: str
) -> None:
    destination = tmp_path / "project"
    with pytest.raises(ValueError, match=message) as refusal:
        render(destination, answers)
    assert next(iter(answers)) in str(refusal.value)
    assert not destination.exists()


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
