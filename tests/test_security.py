"""Static security checks on every rendered stack: bandit finds nothing of medium or high severity
in the generated code, and a secret scanner finds no credential in the rendered tree beyond the
throw-away values the tests and CI service containers use on purpose."""

import hashlib
import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .harness import render
from .test_render import AUTH, DATABASES, FRAMEWORKS, SERVER_DATABASE_FRAMEWORKS

BIN = Path(sys.executable).parent

# Every framework x auth x database the questionnaire allows; CI providers alternate.
STACKS = [
    {"framework": framework, "auth": auth, "database": database, "ci": ("github", "gitlab")[i % 2]}
    for i, (framework, auth, database) in enumerate(itertools.product(FRAMEWORKS, AUTH, DATABASES))
    if database == "sqlite" or framework in SERVER_DATABASE_FRAMEWORKS
] + [
    # Celery's code in each framework, on each broker, with and without users.
    {"framework": framework, "auth": AUTH[index % 2], "celery": True, "broker": broker}
    for index, (framework, broker) in enumerate(
        itertools.product(FRAMEWORKS, ["sqlite", "redis", "rabbitmq"])
    )
]

# Values that look like secrets to a scanner and are meant to be in the tree: passwords of
# throw-away test users, example URLs in tests and docs, and the local CI service containers.
# Anything else the scanner flags fails the test.
PLACEHOLDERS = {
    "a new horse battery",
    "analytical engine",
    "bad",
    "correct horse battery",
    "guest",  # RabbitMQ's own local-only default account, in the default broker URL
    "long enough",
    "nope nope",
    "not hers",
    "p%40ss",
    "p@ss",  # the same, decoded
    "postgres",
    "pw",
    "s3cret",
    "secret",
    "short",
    "whatever",
    "wrong one",
    "yes",
}
# detect-secrets reports each secret by its SHA-1.
PLACEHOLDER_HASHES = {hashlib.sha1(value.encode()).hexdigest() for value in PLACEHOLDERS}


def stack_id(answers: dict[str, object]) -> str:
    return "-".join(str(value) for value in answers.values() if value is not True)


@pytest.fixture(scope="module", params=STACKS, ids=stack_id)
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("security") / "my-service", request.param)


def code_paths(project: Path) -> list[str]:
    """The service's own code: the package, migrations and Django's manage.py (tests are left
    out: bandit flags their asserts by design)."""
    candidates = ("src", "migrations", "manage.py")
    return [name for name in candidates if (project / name).exists()]


def bandit(project: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [BIN / "bandit", "--recursive", "--format", "json", "--quiet", *code_paths(project)],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    assert not report["errors"], report["errors"]
    return [issue for issue in report["results"] if issue["issue_severity"] in {"MEDIUM", "HIGH"}]


def secrets(project: Path) -> list[str]:
    """Findings of detect-secrets on every file of the rendered tree, as `file:line type`."""
    result = subprocess.run(
        [BIN / "detect-secrets", "scan", "--all-files", "."],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    return [
        f"{path}:{finding['line_number']} {finding['type']}"
        for path, findings in json.loads(result.stdout)["results"].items()
        for finding in findings
        if finding["hashed_secret"] not in PLACEHOLDER_HASHES
    ]


def test_bandit_finds_nothing_of_medium_or_high_severity(project: Path) -> None:
    findings = bandit(project)
    assert not findings, [
        f"{issue['filename']}:{issue['line_number']} {issue['test_id']} {issue['issue_text']}"
        for issue in findings
    ]


def test_no_secret_is_rendered(project: Path) -> None:
    assert not secrets(project)


def test_the_checks_catch_what_they_look_for(tmp_path: Path) -> None:
    """A hard-coded credential and a shell injection planted in a rendered project are found."""
    project = render(tmp_path / "my-service", {})
    planted = project / "src" / "my_service" / "planted.py"
    planted.write_text(
        "import subprocess\n\n"
        'API_TOKEN = "ghp_4f9Qm2Xc7Lr8Tz1Vb6Nk3Hs5Jd0Wy2Pa7Ue9"\n\n\n'
        "def run(command: str) -> None:\n"
        "    subprocess.run(command, shell=True, check=True)\n"
    )
    assert any("planted.py" in finding for finding in secrets(project))
    assert {issue["test_id"] for issue in bandit(project)} >= {"B602"}
