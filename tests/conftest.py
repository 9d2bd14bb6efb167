import fcntl
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from playwright.sync_api import Browser, BrowserContext, Route, sync_playwright
from pytest_copie.plugin import Copie

from .covering import variants
from .harness import (
    BROKER_SERVER_VARIABLES,
    DATABASE_SERVER_VARIABLES,
    TEMPLATE_ROOT,
    RunningServer,
    assert_ok,
    delete_broker_queue,
    documented_command,
    documented_commands,
    is_server_command,
    render,
    run,
    scratch_broker_settings,
    scratch_database,
    serve,
)
from .jinja_cache import compile_once

# Every render of the run compiles each Jinja source once (tests/jinja_cache.py).
compile_once()

# Answer sets whose generated projects get the whole treatment: post-copy task, uv sync, every
# documented command, the dev server and the HTTP contract. They are a covering array computed
# from copier.yml (tests/covering.py): every pair of option values, and every framework x auth x
# celery combination, is in at least one of them; the first is the default answers.
FULL_VARIANTS: dict[str, dict[str, Any]] = variants()


def one_each(
    *questions: str, where: Callable[[dict[str, Any]], bool] = lambda _: True
) -> list[str]:
    """Few full variants among those `where` accepts that, together, hold every value of each
    of these questions (each framework once and each broker once, say): for checks whose cost
    is per variant and whose code does not differ by the combination."""
    candidates = {name: answers for name, answers in FULL_VARIANTS.items() if where(answers)}

    def values(answers: dict[str, Any]) -> set[tuple[str, Any]]:
        return {(question, answers.get(question)) for question in questions}

    missing = set().union(*(values(answers) for answers in candidates.values()))
    chosen: list[str] = []
    while missing:
        name = max(candidates, key=lambda name: len(values(candidates[name]) & missing))
        chosen.append(name)
        missing -= values(candidates.pop(name))
    return chosen


def has_users(answers: dict[str, Any]) -> bool:
    return answers.get("auth") == "jwt"


def on_broker_server(answers: dict[str, Any]) -> bool:
    return bool(answers.get("celery")) and answers.get("broker") in BROKER_SERVER_VARIABLES


CELERY_VARIANTS = [name for name, answers in FULL_VARIANTS.items() if answers.get("celery")]
JWT_VARIANTS = [name for name, answers in FULL_VARIANTS.items() if has_users(answers)]

DOCUMENTED_FILES = (
    "README.md",
    "AGENTS.md",
    "CLAUDE.md",
    ".claude/agents/backend-agent.md",
    "GEMINI.md",
    ".github/copilot-instructions.md",
    ".github/agents/backend.agent.md",
    ".cursor/rules/backend.mdc",
)


def variant_id(name: str) -> str:
    """How a full variant shows in test ids: `test_health[{default}]`. The braces let the
    scheduler below find it in a node id."""
    return f"{{{name}}}"


def on_variants(names: list[str]) -> pytest.MarkDecorator:
    """Run a test once per named full variant, on its generated project."""
    return pytest.mark.parametrize("generated", names, indirect=True, ids=variant_id)


VARIANT_IN_NODE_ID = re.compile(r"\[[^\]]*\{(?P<variant>[\w.-]+)\}")
# Tests that share a costly fixture of their own: the podman image store, and the commands of
# every full variant that the agent-file tests read.
SHARED_FIXTURE_TESTS = {
    "tests/test_docker_ci.py::test_the_default_image_builds_migrates_and_serves",
    "tests/test_agent_files.py::test_every_command_in_an_agent_file_is_run_by_the_suite",
}


# Modules whose tests share a module-scoped fixture per parameter (a rendered combination).
RENDER_MATRIX_MODULES = {"tests/test_docker_ci.py", "tests/test_security.py"}


def shared_fixture_group(node_id: str) -> str | None:
    """The group of tests that must run on one worker, which builds their fixture once: every
    test of a full variant (its project is rendered, locked, synced and migrated once), the
    tests in SHARED_FIXTURE_TESTS, and in RENDER_MATRIX_MODULES the tests of one rendered
    combination. None for a test that can run anywhere."""
    if match := VARIANT_IN_NODE_ID.search(node_id):
        return f"variant {match['variant']}"
    function, _, parameters = node_id.partition("[")
    if function in SHARED_FIXTURE_TESTS:
        return function
    module = function.split("::", 1)[0]
    if module in RENDER_MATRIX_MODULES and parameters:
        return f"{module}[{parameters}"
    return None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With several workers (`--numprocesses`), send each shared_fixture_group to one worker.

    pytest-xdist's own grouping (`--dist=loadgroup` and xdist_group marks) is silently lost with
    pytest 9.2's node ids (pytest-dev/pytest-xdist#1386), so the groups are read from the node
    ids instead. Another `--dist` mode given on the command line is left to pytest-xdist.
    """
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return shared_fixture_group(nodeid) or nodeid

    return SharedFixtureScheduling(config, log)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    """In CI every test is required: a skip there is reported as a failure, with its reason."""
    report: pytest.TestReport = yield
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every test must run: {report.longrepr}"
    return report


@dataclass
class GeneratedProject:
    name: str
    answers: dict[str, Any]
    path: Path

    @property
    def auth(self) -> str:
        return str(self.answers.get("auth", "jwt"))

    @property
    def framework(self) -> str:
        return str(self.answers.get("framework", "fastapi"))

    def commands(self) -> list[str]:
        """Every command written in the README and agent files, in order, without repeats."""
        seen: dict[str, None] = {}
        for name in DOCUMENTED_FILES:
            path = self.path / name
            if path.exists():
                seen.update(dict.fromkeys(documented_commands(path.read_text())))
        return list(seen)


@pytest.fixture(scope="session")
def shared_render(tmp_path_factory: pytest.TempPathFactory) -> Callable[[dict[str, Any]], Path]:
    """Render an answer set once for the whole run, whichever worker asks first: the render
    matrix and the agent-file checks read the same projects. The projects are read, never
    changed (tests that write into a project render their own)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this run
    cache = root / "shared-renders"
    cache.mkdir(exist_ok=True)

    def rendered(answers: dict[str, Any]) -> Path:
        key = hashlib.sha256(json.dumps(answers, sort_keys=True).encode()).hexdigest()[:16]
        folder = cache / key
        with (cache / f"{key}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (folder / "rendered").exists():
                shutil.rmtree(folder, ignore_errors=True)
                render(folder / "my-service", answers)
                (folder / "rendered").touch()
        return folder / "my-service"

    return rendered


def run_retrying_a_crash(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a command; if a signal ended it (uv has crashed with SIGSEGV, exit 139, while two test
    workers filled an empty cache at once), say so and run it once more. A failure that is an
    exit status, not a signal, is returned as it is."""
    result = run(command, cwd)
    if result.returncode < 0 or result.returncode > 128:
        warnings.warn(
            f"`{command}` was ended by a signal (exit {result.returncode}); running it again."
            f"\n{result.stderr[-2000:]}",
            stacklevel=2,
        )
        result = run(command, cwd)
    return result


@pytest.fixture(scope="session", params=list(FULL_VARIANTS), ids=variant_id)
def generated(request: pytest.FixtureRequest, copie_session: Copie) -> Iterator[GeneratedProject]:
    """A project rendered with the post-copy task, dependencies synced, database migrated.

    A project for a database server gets a fresh database on the real server, in `.env` as a
    user would write it; the database is dropped after the run. A project for a broker server
    gets a queue of its own on it (and on Redis a database number), in `.env` too.
    """
    answers = FULL_VARIANTS[request.param]
    database = answers.get("database", "sqlite")
    broker = answers.get("broker", "sqlite") if answers.get("celery") else None
    with ExitStack() as stack:
        database_url = None
        if database != "sqlite":
            variable = DATABASE_SERVER_VARIABLES[database]
            server = os.environ.get(variable)
            if not server:
                pytest.skip(f"set {variable} to the URL of a {database} server to check it")
            database_url = stack.enter_context(scratch_database(server))
            if database == "postgresql":
                # As managed PostgreSQL hands it out: every flavour, its migrations and its
                # tests take libpq's sslmode (`prefer` works with or without TLS here).
                database_url += "?sslmode=prefer"
        broker_settings: dict[str, str] = {}
        if broker in BROKER_SERVER_VARIABLES:
            variable = BROKER_SERVER_VARIABLES[broker]
            server = os.environ.get(variable)
            if not server:
                pytest.skip(f"set {variable} to the URL of a {broker} server to check it")
            broker_settings = scratch_broker_settings(broker, server)
        if answers.get("redis"):
            # The shared state: a database number of its own on the Redis server (the
            # project's tests add their own key prefix).
            variable = BROKER_SERVER_VARIABLES["redis"]
            server = os.environ.get(variable)
            if not server:
                pytest.skip(f"set {variable} to the URL of a redis server to check it")
            broker_settings["REDIS_URL"] = f"{server.rstrip('/')}/{random.randint(1, 15)}"
            # And keys (and real-time channels) of its own there: variants run side by side.
            broker_settings["CACHE_KEY_PREFIX"] = f"{request.param}-{uuid.uuid4().hex[:8]}"
        # Rendered with the post-copy task by pytest-copie; the answers reach Copier as its
        # user defaults, taken as given under `--defaults`, and must be recorded as given.
        rendered = copie_session.copy(extra_answers=answers, template_dir=TEMPLATE_ROOT)
        if rendered.exception is not None:
            raise rendered.exception
        assert rendered.project_dir is not None
        destination = rendered.project_dir
        recorded = yaml.safe_load((destination / ".copier-answers.yml").read_text())
        assert {name: recorded.get(name) for name in answers} == answers, recorded
        if "CELERY_TASK_DEFAULT_QUEUE" in broker_settings:
            stack.callback(delete_broker_queue, destination, broker_settings)
        local = [f"DATABASE_URL={database_url}"] if database_url else []
        local += [f"{name}={value}" for name, value in broker_settings.items()]
        if local:
            with (destination / ".env").open("a") as env_file:  # after the rendered lines
                env_file.write("".join(f"{line}\n" for line in local))
        project = GeneratedProject(request.param, answers, destination)
        migrate = documented_command((destination / "README.md").read_text(), "database schema")
        for command in ("uv sync --locked", migrate):
            assert_ok(run_retrying_a_crash(command, destination), command)
        yield project


@pytest.fixture(scope="session")
def live(generated: GeneratedProject):
    """The generated project's own dev server command, as documented, on a free port."""
    servers = [command for command in generated.commands() if is_server_command(command)]
    assert servers, "the README should document a dev server command"
    with serve(servers[0], generated.path) as server:
        yield Live(generated, server)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, driven by Playwright (whose own browser download is not used)."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("install Debian's chromium package to run the browser tests")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        yield browser
        browser.close()


def keep_on_this_machine(context: BrowserContext) -> list[str]:
    """Refuse every request of the context's pages that would leave this machine: the list the
    refused addresses are added to."""
    refused: list[str] = []

    def only_this_machine(route: Route) -> None:
        if urlsplit(route.request.url).hostname in {"127.0.0.1", "localhost"}:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    context.route("**/*", only_this_machine)
    return refused


@dataclass
class Live:
    project: GeneratedProject
    server: RunningServer

    @property
    def url(self) -> str:
        return self.server.base_url
