"""Helpers that render projects and drive their toolchain the way a user would."""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import psycopg
import pymysql
import yaml
from jinja2 import FileSystemLoader
from jinja2.sandbox import SandboxedEnvironment
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client.parser import text_string_to_metric_families

# The working tree of the template rendered in-process (as `copier copy --defaults -d`), and a
# free loopback port: shared with the benchmarks.
from bench.common import free_port as free_port
from bench.common import project_env as project_env
from bench.common import render as render
from bench.common import scratch_database as scratch_database

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]
COPIER_YML = TEMPLATE_ROOT / "copier.yml"

# Commands that serve until stopped (each framework's dev and production servers); every other
# documented command must exit 0.
SERVER_COMMAND = re.compile(
    r"^uv run (fastapi (dev|run)\b|flask\b.*\brun\b|python manage\.py runserver\b)"
)

# Celery's worker and beat: they also run until stopped; tests/test_celery.py starts them.
WORKER_COMMAND = re.compile(r"^uv run celery -A \S+ (worker|beat)\b")

# The Flet client as a desktop app or in web mode: it runs until stopped too; tests/test_client.py
# serves the web mode.
CLIENT_APP_COMMAND = re.compile(r"^uv run --directory client python -m \w+_client\b")

FENCED_SHELL_BLOCK = re.compile(r"```(?:bash|sh|shell|console)\n(.*?)```", re.DOTALL)


# Real database servers for the `database` answers, found through these variables (CI sets them
# to the servers on loopback; elsewhere the variants that need one are skipped, naming the
# variable).
DATABASE_SERVER_VARIABLES = {
    "postgresql": "COPIER_BACKEND_POSTGRESQL_URL",
    "mysql": "COPIER_BACKEND_MYSQL_URL",
}


# Real broker servers for the `broker` answers, found the same way (redis and rabbitmq; the sqlite
# broker is a file of the project).
BROKER_SERVER_VARIABLES = {
    "redis": "COPIER_BACKEND_REDIS_URL",
    "rabbitmq": "COPIER_BACKEND_RABBITMQ_URL",
}


@cache
def _copier_config_text() -> str:
    return COPIER_YML.read_text()


# A Jinja environment with the filters Copier's own has, for copier.yml's validators and `when`s;
# like Copier's, it imports partials from the template's root (includes/).
COPIER_JINJA = SandboxedEnvironment(
    loader=FileSystemLoader(TEMPLATE_ROOT),
    extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension"],
)


def copier_config() -> dict[str, Any]:
    """copier.yml (the file read once per process, parsed with libyaml where it is built in)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    config: dict[str, Any] = yaml.load(_copier_config_text(), Loader=loader)
    return config


def questions() -> dict[str, dict[str, Any]]:
    """The questions a user can be asked (settings and computed values left out)."""
    return {
        name: spec
        for name, spec in copier_config().items()
        if not name.startswith("_") and isinstance(spec, dict) and spec.get("when") is not False
    }


def answer_refusal(question: str, answer: Any) -> str:
    """The message a question's validator gives for an answer ('' when it accepts it), rendered
    with the filters Copier's own Jinja environment has."""
    validator = copier_config()[question]["validator"]
    return COPIER_JINJA.from_string(validator).render({question: answer}).strip()


def choice_values(spec: dict[str, Any]) -> list[Any]:
    """The values a question offers. A choice is a plain value, or a mapping with a value and
    its own validator (a choice that some earlier answers disable)."""
    choices = spec.get("choices") or {}
    values = choices.values() if isinstance(choices, dict) else choices
    return [value["value"] if isinstance(value, dict) else value for value in values]


def run(
    command: str, cwd: Path, *, timeout: float = 600, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a documented command through the shell, exactly as written."""
    return subprocess.run(
        command,
        shell=True,
        cwd=cwd,
        env=dict(env) if env is not None else project_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_ok(result: subprocess.CompletedProcess[str], command: str) -> None:
    assert result.returncode == 0, (
        f"`{command}` exited {result.returncode}\n--- stdout\n{result.stdout[-6000:]}"
        f"\n--- stderr\n{result.stderr[-6000:]}"
    )


def documented_commands(markdown: str) -> list[str]:
    """Every command line in the fenced shell blocks of a Markdown file, comments removed."""
    commands = []
    for block in FENCED_SHELL_BLOCK.findall(markdown):
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def is_server_command(command: str) -> bool:
    return SERVER_COMMAND.match(command) is not None


def is_worker_command(command: str) -> bool:
    return WORKER_COMMAND.match(command) is not None


def is_client_app_command(command: str) -> bool:
    return CLIENT_APP_COMMAND.match(command) is not None


def is_one_shot_command(command: str) -> bool:
    return not (
        is_server_command(command) or is_worker_command(command) or is_client_app_command(command)
    )


def documented_command(markdown: str, purpose: str) -> str:
    """The command of a fenced block whose trailing comment contains `purpose`."""
    for block in FENCED_SHELL_BLOCK.findall(markdown):
        for line in block.splitlines():
            command, _, comment = line.partition("  #")
            if purpose in comment:
                return command.strip()
    raise LookupError(f"no documented command for {purpose!r}")


def make_superuser(project: Path, framework: str, email: str, password: str) -> None:
    """Make a superuser with the README's command, on the project's database (its .env). The
    password goes where the README says the command reads it, never on the command line."""
    readme = (project / "README.md").read_text()
    command = documented_command(readme, "make a superuser")
    assert "admin@example.com" in command, command
    variable = "DJANGO_SUPERUSER_PASSWORD" if framework == "django" else "SUPERUSER_PASSWORD"
    assert variable in readme
    command = command.replace("admin@example.com", email)
    assert_ok(run(command, project, env=project_env(**{variable: password})), command)


def on_port(command: str, port: int) -> str:
    """A server command bound to `port`: Django's runserver takes the address as an argument, the
    Flet client's web mode CLIENT_PORT (FastAPI's CLI reads PORT and Flask's FLASK_RUN_PORT, both
    set by `serve`)."""
    if re.search(r"manage\.py runserver$", command):
        return f"{command} 127.0.0.1:{port}"
    if is_client_app_command(command):
        return f"CLIENT_PORT={port} {command}"
    return command


@dataclass
class RunningServer:
    base_url: str
    process: subprocess.Popen[str]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def serve(
    command: str,
    cwd: Path,
    *,
    ready_path: str = "/health/live",
    env: Mapping[str, str] | None = None,
) -> Iterator[RunningServer]:
    """Start a documented server command on a free port and stop it (and its children) after.
    `env` is set in its environment, where it overrides the project's .env."""
    port = free_port()
    log_path = cwd.parent / f"server-{port}.log"  # outside the project: git status stays clean
    # Failed logins counted afresh for each server: the default file in the temporary folder is
    # shared by every project of the same name on this machine.
    counts = cwd.parent / f"rate-limits-{port}.db"
    # Suites register far more users from one address than the hourly limit allows.
    own = {
        "RATE_LIMIT_STORAGE_URL": f"sqlite:///{counts}",
        "REGISTRATION_MAX_PER_HOUR": "1000000",
        "ACCOUNT_EMAILS_MAX_PER_HOUR": "1000000",
        **(env or {}),
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(
            on_port(command, port),
            shell=True,
            cwd=cwd,
            env=project_env(**own, PORT=str(port), FLASK_RUN_PORT=str(port)),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    server = RunningServer(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_until_ready(server, ready_path)
        yield server
    finally:
        _stop(process)
        log_path.unlink(missing_ok=True)
        for path in counts.parent.glob(f"{counts.name}*"):  # the file, its WAL and index
            path.unlink(missing_ok=True)


def _wait_until_ready(server: RunningServer, path: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"server exited with {server.process.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.base_url + path, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"server not ready after {timeout} s:\n{server.log()}")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


LEFTOVER_JINJA = re.compile(r"(?<!\$)\{\{|\{%|\{#|%\}|#\}")
# A page template the service renders with Jinja at run time, kept in a Python string constant
# named *_PAGE (Flask-Admin's sign-in page): its Jinja is meant to be there.
RUNTIME_PAGE = re.compile(r'^[A-Z_]+_PAGE = """')


def migration_files(project: Path) -> set[Path]:
    """Every file in a migrations folder (Alembic's versions/ or a Django app's migrations/)."""
    return {
        path
        for path in project.rglob("*.py")
        if "migrations" in path.relative_to(project).parts and ".venv" not in path.parts
    }


def leftover_jinja(project: Path) -> list[str]:
    found = []
    for path in sorted(project.rglob("*")):
        if ".git" in path.parts or not path.is_file() or path.name == "uv.lock":
            continue
        if LEFTOVER_JINJA.search(path.name):
            found.append(f"{path.relative_to(project)}: Jinja in the file name")
        text = path.read_text(errors="replace")
        in_page = False
        for number, line in enumerate(text.splitlines(), 1):
            if path.suffix == ".py" and RUNTIME_PAGE.match(line):
                in_page = True
            elif in_page and line.endswith('"""'):
                in_page = False
            elif not in_page and LEFTOVER_JINJA.search(line):
                found.append(f"{path.relative_to(project)}:{number}: {line.strip()}")
    return found


def scratch_broker_settings(broker: str, server_url: str) -> dict[str, str]:
    """Celery settings for a run of its own on a shared broker server: a queue no other run uses
    (on Redis also a database number picked at random, and results beside the broker)."""
    queue = f"cb-{uuid.uuid4().hex[:10]}"
    if broker == "redis":
        url = f"{server_url.rstrip('/')}/{random.randint(1, 15)}"
        return {
            "CELERY_BROKER_URL": url,
            "CELERY_RESULT_BACKEND": url,
            "CELERY_TASK_DEFAULT_QUEUE": queue,
        }
    return {
        "CELERY_BROKER_URL": server_url,
        "CELERY_RESULT_BACKEND": "rpc://",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
    }


@dataclass
class BackgroundProcess:
    command: str
    process: subprocess.Popen[str]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for(self, text: str, *, timeout: float = 60, after: int = 0) -> int:
        """Wait until the log holds `text` (past offset `after`); return where it ends."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            found = log.find(text, after)
            if found >= 0:
                return found + len(text)
            if self.process.poll() is not None:
                raise AssertionError(
                    f"`{self.command}` exited with {self.process.returncode} before logging "
                    f"{text!r}:\n{log[-6000:]}"
                )
            time.sleep(0.3)
        raise AssertionError(
            f"`{self.command}` did not log {text!r} in {timeout} s:\n{self.log()[-6000:]}"
        )

    def kill(self) -> None:
        """SIGKILL the command and every process it started: a worker dying mid-task."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=15)


@contextmanager
def background(
    command: str, cwd: Path, *, env: Mapping[str, str] | None = None
) -> Iterator[BackgroundProcess]:
    """Start a documented long-running command (a Celery worker or beat), stop it after."""
    log_path = cwd.parent / f"background-{uuid.uuid4().hex[:8]}.log"  # outside the project
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            shell=True,
            cwd=cwd,
            env=project_env(**(env or {})),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    running = BackgroundProcess(command, process, log_path)
    try:
        yield running
    finally:
        _stop(process)
        log_path.unlink(missing_ok=True)


def local_setting(project: Path, name: str) -> str:
    """A value of the project's .env (the conftest writes the server URLs there)."""
    for line in (project / ".env").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == name:
            return value.strip()
    raise LookupError(f"{name} is not in {project / '.env'}")


def delete_broker_queue(project: Path, settings: Mapping[str, str]) -> None:
    """Remove a run's queue (and its exchange) from a shared broker server, with the project's
    own kombu."""
    code = (
        "import sys; from kombu import Connection\n"
        "with Connection(sys.argv[1]) as connection:\n"
        "    connection.default_channel.queue_delete(sys.argv[2])\n"
        "    connection.default_channel.exchange_delete(sys.argv[2])\n"
    )
    subprocess.run(
        [
            "uv",
            "run",
            "--no-sync",
            "python",
            "-c",
            code,
            settings["CELERY_BROKER_URL"],
            settings["CELERY_TASK_DEFAULT_QUEUE"],
        ],
        cwd=project,
        env=project_env(),
        capture_output=True,
        timeout=60,
        check=False,
    )


# The port of each server URL scheme when the URL names none.
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "redis": 6379, "amqp": 5672}


class OutageProxy:
    """A TCP proxy on a free loopback port in front of a real server, which can take the server
    "down" without touching it (the servers are shared).

    `stop()` is the server stopping: every open connection is closed and new ones are refused.
    `freeze()` is the server hanging: connections stay open but nothing reaches the server or
    comes back, and new ones are never answered. `start()` brings the server back, answering.
    """

    def __init__(self, server_url: str) -> None:
        parts = urlsplit(server_url)
        self.target = (
            parts.hostname or "127.0.0.1",
            parts.port or DEFAULT_PORTS[parts.scheme.split("+")[0]],
        )
        self.port = free_port()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._answering = threading.Event()

    def url(self, server_url: str) -> str:
        """`server_url` (user, password, database and all) through the proxy."""
        parts = urlsplit(server_url)
        userinfo = parts.netloc.rpartition("@")[0]
        address = f"127.0.0.1:{self.port}"
        return parts._replace(netloc=f"{userinfo}@{address}" if userinfo else address).geturl()

    def start(self) -> None:
        self._answering.set()
        if self._listener is not None:  # frozen, not stopped: it answers again
            return
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 10
        while True:
            try:
                listener.bind(("127.0.0.1", self.port))
                break
            except OSError:
                # The port may be held for a moment by a connection that was just closed.
                if time.monotonic() > deadline:
                    listener.close()
                    raise
                time.sleep(0.1)
        listener.listen(64)
        listener.settimeout(0.1)  # the accept loop notices a stop within this
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def stop(self) -> None:
        listener, acceptor = self._listener, self._acceptor
        self._listener = self._acceptor = None
        if listener is not None and acceptor is not None:
            acceptor.join()
            listener.close()
        with self._lock:
            open_sockets = list(self._connections)
        for sock in open_sockets:
            _shut(sock)
        self._answering.set()  # a frozen relay lets go of its connection

    def freeze(self) -> None:
        self._answering.clear()

    def __enter__(self) -> OutageProxy:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            if not self._answering.is_set():
                # Frozen: the kernel still completes the handshake of a new connection, which
                # then waits in the backlog, unanswered.
                time.sleep(0.1)
                continue
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._connections.update((client, upstream))
            threading.Thread(target=self._relay, args=(client, upstream), daemon=True).start()

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        back = threading.Thread(target=self._pump, args=(upstream, client), daemon=True)
        back.start()
        self._pump(client, upstream)
        back.join()
        with self._lock:
            self._connections.difference_update((client, upstream))
        client.close()
        upstream.close()

    def _pump(self, source: socket.socket, destination: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self._answering.wait()  # frozen: held until the server answers again
                destination.sendall(data)
        except OSError:
            pass
        # One side ended: end the other as well.
        _shut(source)
        _shut(destination)


def _shut(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def items_table(framework: str) -> str:
    return "items_item" if framework == "django" else "items"


@contextmanager
def connect_to(database_url: str) -> Iterator[tuple[Any, bool]]:
    """A connection of the test's own to the database of a PostgreSQL or MySQL URL, and whether
    it is PostgreSQL."""
    parts = urlsplit(database_url)
    server = {
        "host": parts.hostname or "127.0.0.1",
        "user": parts.username or "",
        "password": parts.password or "",
    }
    name = parts.path.lstrip("/")
    if parts.scheme.startswith("postgresql"):
        with psycopg.connect(**server, port=parts.port or 5432, dbname=name) as connection:
            yield connection, True
    else:
        with pymysql.connect(**server, port=parts.port or 3306, database=name) as connection:
            yield connection, False


PROBLEM = "application/problem+json"
# The statement bound the hung-query checks give the service, and how long after it the 503 may
# come (the request's other work, a loaded machine).
STATEMENT_TIMEOUT_SECONDS = 1.0
STATEMENT_TIMEOUT_SLACK_SECONDS = 1.5


@contextmanager
def items_table_missing(framework: str, database_url: str) -> Iterator[None]:
    """The items table renamed away, as a deployment whose migrations did not run would leave
    it: reading items is then an unexpected error (a 500), not an outage."""
    table = items_table(framework)
    with connect_to(database_url) as (connection, postgresql):
        rename = "ALTER TABLE {} RENAME TO {}" if postgresql else "RENAME TABLE {} TO {}"
        connection.cursor().execute(rename.format(table, f"{table}_gone"))
        connection.commit()
        try:
            yield
        finally:
            connection.cursor().execute(rename.format(f"{table}_gone", table))
            connection.commit()


@contextmanager
def items_table_locked(framework: str, database_url: str) -> Iterator[None]:
    """Another session holds the items table so that nobody else can read it, as a long
    migration or a stuck transaction would, until the block ends."""
    table = items_table(framework)
    with connect_to(database_url) as (connection, postgresql):
        if postgresql:
            connection.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            yield
            connection.rollback()
        else:
            connection.cursor().execute(f"LOCK TABLES {table} WRITE")
            yield
            connection.cursor().execute("UNLOCK TABLES")


Value = TypeVar("Value")


# Prometheus samples by name and labels (sorted), as a scrape of /metrics gives them.
MetricSamples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def metric_samples(text: str) -> MetricSamples:
    """The samples of a scrape in Prometheus's text format."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def eventually(
    read: Callable[[], Value], done: Callable[[Value], Any], *, timeout: float, every: float = 0.1
) -> Value:
    """`read()` once `done` holds of it, or its last value after `timeout` seconds (the caller
    checks it): for what a server writes or sends a moment after it has answered."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(every)
        value = read()
    return value


@dataclass(frozen=True)
class ExportedSpan:
    """A span a generated service exported, as the OTLP stand-in read it."""

    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]


class OtlpCollector:
    """An OpenTelemetry collector stand-in on loopback: the OTLP/HTTP receiver a service's
    OTEL_EXPORTER_OTLP_ENDPOINT names, keeping the spans it is sent."""

    SERVER = 2  # SpanKind values in the OTLP protocol
    CONSUMER = 5

    def __init__(self) -> None:
        self.spans: list[ExportedSpan] = []
        collector = self

        class Receiver(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/traces":
                    collector._receive(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"

    def _receive(self, export: ExportTraceServiceRequest) -> None:
        for resource_spans in export.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(
                    ExportedSpan(
                        service=str(resource.get("service.name")),
                        name=span.name,
                        kind=span.kind,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        attributes=_attributes(span.attributes),
                    )
                    for span in scope_spans.spans
                )

    def wait_for(self, found: Any, *, timeout: float = 30) -> list[ExportedSpan]:
        """The spans received once `found(spans)` holds (services export in batches, every few
        seconds)."""
        spans = eventually(lambda: list(self.spans), found, timeout=timeout, every=0.2)
        assert found(spans), f"no such spans in {timeout} s: {spans}"
        return spans


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: getattr(pair.value, str(pair.value.WhichOneof("value"))) for pair in pairs}


@contextmanager
def otlp_collector() -> Iterator[OtlpCollector]:
    collector = OtlpCollector()
    threading.Thread(target=collector.server.serve_forever, daemon=True).start()
    try:
        yield collector
    finally:
        collector.server.shutdown()
        collector.server.server_close()
