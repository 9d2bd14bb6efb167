"""Load on each flavour's production server, next to a bare app of the same framework and server.

A project is rendered (JWT auth, SQLite), synced and migrated; its Dockerfile's CMD is started
through `uv run` with the image's production settings, bound to loopback; wrk then drives
GET /health/live, POST /api/v1/auth/token (a successful login: only failures are throttled) and
GET /api/v1/items/{id} with a bearer token. The bare app is one route answering /health/live,
served by the same server command with the same flags and worker count, from the project's own
environment (so every version matches), in a folder of its own.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .common import free_port, median, project_env, render, run

FRAMEWORKS = ("fastapi", "flask", "django")

# The server command's app argument for the bare app of each framework (see BARE_APPS).
BARE_TARGETS = {
    "fastapi": "bare_app:app",
    "flask": "bare_app:app",
    "django": "bare_app:application",
}

# One route, nothing else: the framework's own floor under the same server.
BARE_APPS = {
    "fastapi": """\
from fastapi import FastAPI

app = FastAPI()


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}
""",
    "flask": """\
from flask import Flask

app = Flask(__name__)


@app.get("/health/live")
def live() -> dict[str, str]:
    return {"status": "ok"}
""",
    "django": """\
import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, JsonResponse
from django.urls import path

settings.configure(
    DEBUG=False,
    SECRET_KEY=os.environ["SECRET_KEY"],
    ALLOWED_HOSTS=os.environ["ALLOWED_HOSTS"].split(","),
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    DATABASES={},
    USE_TZ=True,
)


def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [path("health/live", live)]
application = get_wsgi_application()
""",
}

# Reported with the results: what serves a request in each flavour (those installed are listed).
SERVING_PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "flask",
    "apiflask",
    "werkzeug",
    "django",
    "django-ninja",
    "whitenoise",
    "gunicorn",
    "pydantic",
    "sqlalchemy",
    "structlog",
    "pwdlib",
    "argon2-cffi",
)

CMD_LINE = re.compile(r"^CMD (\[.*\])\s*$", re.MULTILINE)
MIGRATE_LINE = re.compile(r"^(uv run .+?)  # create or upgrade the database schema$", re.MULTILINE)
WRK_INSTALL_HINT = "wrk is not installed: install it with `apt-get install wrk` (Debian, Ubuntu)"


# --- The project ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Project:
    path: Path
    framework: str

    @property
    def server_command(self) -> list[str]:
        """The Dockerfile's CMD: what the image runs in production."""
        match = CMD_LINE.search((self.path / "Dockerfile").read_text())
        if match is None:
            raise LookupError(f"no JSON-form CMD in {self.path / 'Dockerfile'}")
        command: list[str] = json.loads(match.group(1))
        return command

    def versions(self) -> dict[str, str]:
        """Versions of the packages that serve a request, from the project's environment."""
        code = (
            "import importlib.metadata as m, json, sys\n"
            "found = {}\n"
            "for name in sys.argv[1:]:\n"
            "    try: found[name] = m.version(name)\n"
            "    except m.PackageNotFoundError: pass\n"
            "print(json.dumps(found))"
        )
        result = run(["uv", "run", "--no-sync", "python", "-c", code, *SERVING_PACKAGES], self.path)
        found: dict[str, str] = json.loads(result.stdout)
        return found

    @property
    def migrate_command(self) -> str:
        match = MIGRATE_LINE.search((self.path / "README.md").read_text())
        if match is None:
            raise LookupError("the generated README documents no migration command")
        return match.group(1)


def prepare_project(
    destination: Path, answers: dict[str, Any], *, database_url: str | None = None
) -> Project:
    """Render a project (it must have its Dockerfile), sync its environment, create its database
    (on a server: `database_url`, written to the project's .env, where its servers read it)."""
    render(destination, {**answers, "docker": True})
    if database_url is not None:
        with (destination / ".env").open("a") as env_file:
            env_file.write(f"DATABASE_URL={database_url}\n")
    project = Project(destination, str(answers.get("framework", "fastapi")))
    run("uv sync", destination)
    run(project.migrate_command, destination)
    return project


# --- Servers -------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cpu_seconds(self) -> float:
        """CPU time (user and system) used so far by the server's processes: the launcher, the
        server and its workers, which share one process group."""
        return process_group_cpu_seconds(self.process.pid)

    def log_errors(self) -> list[str]:
        """Lines of the server's log that report an error or a traceback."""
        return [
            line
            for line in self.log().splitlines()
            if "Traceback" in line or re.search(r'"level": "(error|critical)"', line)
        ]


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_group_cpu_seconds(group: int) -> float:
    """The CPU time of the living processes of a process group, from /proc (Linux)."""
    return sum(process_group_cpu_times(group))


def process_group_cpu_times(group: int) -> tuple[float, float]:
    """The user and the system CPU time of the living processes of a process group."""
    user = system = 0
    for _pid, fields in process_stats():
        # Fields after the name: state, ppid, pgrp, ..., utime (12th) and stime (13th).
        if int(fields[2]) == group:
            user += int(fields[11])
            system += int(fields[12])
    return user / CLOCK_TICKS, system / CLOCK_TICKS


def process_stats() -> Iterator[tuple[int, list[str]]]:
    """Each living process's id and the fields of its /proc stat after its command name (Linux)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name, in parentheses, may hold spaces: split after its closing one.
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process ended meanwhile
            continue
        yield int(stat.parent.name), fields


def production_env(framework: str, port: int, workers: int) -> dict[str, str]:
    """The image's settings (Dockerfile ENV) for a process on loopback, with a fresh secret."""
    # The login and registration counts in a file of this server's own, as the image keeps them
    # (a file of the host): runs one after another must not share one hour's count.
    counts = Path(tempfile.gettempdir()) / f"bench-rate-limits-{port}-{secrets.token_hex(4)}.db"
    env = project_env(
        ENVIRONMENT="production",
        SECRET_KEY=secrets.token_urlsafe(48),
        WEB_CONCURRENCY=str(workers),
        PYTHONUNBUFFERED="1",
        RATE_LIMIT_STORAGE_URL=f"sqlite:///{counts}",
    )
    if framework == "fastapi":
        env.update(UVICORN_HOST="127.0.0.1", UVICORN_PORT=str(port))
    else:
        env["PORT"] = str(port)
    if framework == "django":
        env["ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    return env


def loopback_args(command: Sequence[str], port: int) -> list[str]:
    """Gunicorn's config binds every interface; its command line wins over the config file, so
    the benchmark stays on loopback. Uvicorn takes its address from UVICORN_HOST instead."""
    if command[0] == "gunicorn":
        return ["--bind", f"127.0.0.1:{port}"]
    return []


@contextmanager
def start_server(
    name: str, command: Sequence[str], cwd: Path, env: dict[str, str], port: int
) -> Iterator[Server]:
    log_path = Path(tempfile.gettempdir()) / f"bench-{name.replace(' ', '-')}-{port}.log"
    try:
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                list(command),
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(name, f"http://127.0.0.1:{port}", process, log_path)
        try:
            wait_until_ready(server)
            yield server
        finally:
            stop(process)
    finally:
        log_path.unlink(missing_ok=True)


def wait_until_ready(server: Server, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.process.returncode}:\n{server.log()}"
            )
        try:
            if httpx.get(f"{server.base_url}/health/live", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} not ready after {timeout} s:\n{server.log()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)


@contextmanager
def production_server(project: Project, *, workers: int = 2) -> Iterator[Server]:
    """The Dockerfile's CMD through `uv run`, in the project, with the image's settings."""
    port = free_port()
    command = ["uv", "run", *project.server_command, *loopback_args(project.server_command, port)]
    env = production_env(project.framework, port, workers)
    with start_server(project.framework, command, project.path, env, port) as server:
        yield server


@contextmanager
def production_processes(project: Project, count: int, **settings: str) -> Iterator[list[Server]]:
    """`count` production servers of one project, one process each, sharing its database and
    whatever else its .env names: the Dockerfile's CMD with the image's settings, Uvicorn's
    WebSocket protocol among them, and one SECRET_KEY, so that a token one signs the others
    accept. `settings` are more environment variables."""
    dockerfile = (project.path / "Dockerfile").read_text()
    image = dict(re.findall(r"^\s+(UVICORN_WS)=(\S+)", dockerfile, re.MULTILINE))
    secret_key = secrets.token_urlsafe(48)
    with ExitStack() as stack:
        servers: list[Server] = []
        for number in range(count):
            port = free_port()
            command = ["uv", "run", *project.server_command]
            command += loopback_args(project.server_command, port)
            env = production_env(project.framework, port, workers=1)
            env.update(image, SECRET_KEY=secret_key, **settings)
            name = f"{project.framework}-{number}"
            servers.append(
                stack.enter_context(start_server(name, command, project.path, env, port))
            )
        yield servers


@contextmanager
def bare_server(project: Project, *, workers: int = 2) -> Iterator[Server]:
    """A one-route app of the project's framework, served by the same command and flags, from the
    project's environment, in a folder of its own (so the project's gunicorn.conf.py is not
    read: the bare server runs on the server's defaults)."""
    port = free_port()
    production = project.server_command
    command = [production[0], BARE_TARGETS[project.framework], *production[2:]]
    command += loopback_args(command, port)
    with tempfile.TemporaryDirectory(prefix="bench-bare-") as folder:
        (Path(folder) / "bare_app.py").write_text(BARE_APPS[project.framework])
        runner = ["uv", "run", "--project", str(project.path), *command]
        env = production_env(project.framework, port, workers)
        with start_server(f"{project.framework} bare", runner, Path(folder), env, port) as server:
            yield server


# --- Requests ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    endpoint: str
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


HEALTH = Request("health", "GET", "/health/live")


def seed_requests(server: Server) -> list[Request]:
    """Register an account, log in and create an item; the three requests to load."""
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    password = secrets.token_urlsafe(16)
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        registered = client.post(
            "/api/v1/auth/register", json={"email": email, "password": password}
        )
        registered.raise_for_status()
        form = httpx.QueryParams({"username": email, "password": password})
        token = client.post(
            "/api/v1/auth/token",
            content=str(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        token.raise_for_status()
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        item = client.post("/api/v1/items", json={"name": "Benchmark item"}, headers=bearer)
        item.raise_for_status()
    login = Request(
        "login",
        "POST",
        "/api/v1/auth/token",
        {"Content-Type": "application/x-www-form-urlencoded"},
        str(form),
    )
    item_read = Request("item read", "GET", f"/api/v1/items/{item.json()['id']}", bearer)
    return [HEALTH, login, item_read]


def settle(server: Server, *, timeout: float = 120) -> None:
    """Wait until the server has finished what wrk left queued or running when it stopped (a
    sync worker still serves the requests in its listen queue, slow logins included), so that
    the next run starts on an idle server: a health check queued behind them, then the server's
    processes using less than a twentieth of a CPU over a quarter of a second."""
    httpx.get(f"{server.base_url}/health/live", timeout=timeout).raise_for_status()
    deadline = time.monotonic() + timeout
    window = 0.25
    while time.monotonic() < deadline:
        before = server.cpu_seconds()
        time.sleep(window)
        if server.cpu_seconds() - before < window / 20:
            return
    raise RuntimeError(f"{server.name} still busy {timeout} s after the load stopped")


def check_once(server: Server, request: Request) -> None:
    """Send the request once and require a 2xx: wrk's error count covers 4xx and 5xx only."""
    response = httpx.request(
        request.method,
        server.base_url + request.path,
        headers=request.headers,
        content=request.body or None,
        timeout=30,
    )
    if not 200 <= response.status_code < 300:
        raise RuntimeError(
            f"{server.name} answered {request.method} {request.path} with "
            f"{response.status_code}: {response.text[:500]}"
        )


# --- wrk -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadSettings:
    duration: float = 10
    connections: int = 8
    threads: int = 2
    # Seconds of load before the measured runs, on each server and endpoint, not recorded.
    warmup: float = 3
    repetitions: int = 3
    workers: int = 2
    # A request that takes longer counts as a socket timeout: an error.
    timeout: float = 10


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    requests_per_second: float
    # Latency percentiles in milliseconds (50, 75, 90, 99), from wrk's --latency distribution.
    percentiles: dict[int, float]
    non_2xx_3xx: int
    socket_errors: dict[str, int]

    @property
    def p99_ms(self) -> float:
        return self.percentiles.get(99, math.nan)

    @property
    def errors(self) -> int:
        return self.non_2xx_3xx + sum(self.socket_errors.values())


LATENCY_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def parse_wrk(output: str) -> WrkResult:
    """Read wrk's report: totals, the --latency distribution, and both error lines (wrk prints
    them only when something went wrong)."""
    totals = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m),", output, re.MULTILINE)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if totals is None or rate is None:
        raise ValueError(f"not a wrk report:\n{output}")
    percentiles = {
        int(percent): float(value) * LATENCY_UNITS_MS[unit]
        for percent, value, unit in re.findall(
            r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.MULTILINE
        )
    }
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    socket_errors = dict.fromkeys(("connect", "read", "write", "timeout"), 0)
    if sockets:
        socket_errors = dict(zip(socket_errors, map(int, sockets.groups()), strict=True))
    return WrkResult(
        requests=int(totals.group(1)),
        seconds=float(totals.group(2)) * LATENCY_UNITS_MS[totals.group(3)] / 1000,
        requests_per_second=float(rate.group(1)),
        percentiles=percentiles,
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=socket_errors,
    )


def lua_string(text: str) -> str:
    """A Lua string literal for any text: characters outside a safe set as decimal escapes."""
    safe = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.:/=&%+@,;")
    return '"' + "".join(c if c in safe else f"\\{b:03d}" for c in text for b in c.encode()) + '"'


def lua_script(request: Request) -> str:
    """What wrk sends: the method, headers and body of the request, the same on every call."""
    lines = [f"wrk.method = {lua_string(request.method)}"]
    if request.body:
        lines.append(f"wrk.body = {lua_string(request.body)}")
    lines += [
        f"wrk.headers[{lua_string(name)}] = {lua_string(value)}"
        for name, value in request.headers.items()
    ]
    return "\n".join(lines) + "\n"


def wrk_version() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        return "not installed"
    # `wrk -v` prints its version and usage, then exits 1.
    output = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False).stdout
    return output.splitlines()[0].split(" Copyright")[0] if output else "unknown"


def wrk(base_url: str, request: Request, settings: LoadSettings, seconds: float) -> WrkResult:
    """One bounded wrk run."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua_script(request))
    try:
        command = [
            "wrk",
            f"--threads={settings.threads}",
            f"--connections={settings.connections}",
            f"--duration={max(1, round(seconds))}s",
            f"--timeout={max(1, round(settings.timeout))}s",
            "--latency",
            f"--script={script.name}",
            base_url + request.path,
        ]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    finally:
        os.unlink(script.name)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` exited {result.returncode}: {result.stderr}")
    return parse_wrk(result.stdout)


# --- A flavour under load ------------------------------------------------------------------------


@dataclass
class Measured:
    server: str
    endpoint: str
    runs: list[WrkResult] = field(default_factory=list)
    # CPU time the server's processes spent per request, in microseconds, for each run: unlike
    # the rate, it hardly depends on what else the machine is running.
    cpu_us: list[float] = field(default_factory=list)

    def add(self, server: Server, request: Request, settings: LoadSettings) -> None:
        before = server.cpu_seconds()
        result = wrk(server.base_url, request, settings, settings.duration)
        settle(server)
        spent = server.cpu_seconds() - before
        self.runs.append(result)
        self.cpu_us.append(spent / max(result.requests, 1) * 1e6)

    @property
    def cpu_us_per_request(self) -> float:
        return median(self.cpu_us)

    @property
    def requests_per_second(self) -> float:
        return median([run.requests_per_second for run in self.runs])

    @property
    def p99_ms(self) -> float:
        return median([run.p99_ms for run in self.runs])

    @property
    def requests(self) -> int:
        return sum(run.requests for run in self.runs)

    @property
    def errors(self) -> int:
        return sum(run.errors for run in self.runs)


@dataclass
class FlavourLoad:
    framework: str
    results: list[Measured]
    # Error and traceback lines of the production server's log during the run.
    log_errors: list[str]

    def result(self, server: str, endpoint: str) -> Measured:
        return next(m for m in self.results if m.server == server and m.endpoint == endpoint)


def load_flavour(project: Project, settings: LoadSettings, *, bare: bool = True) -> FlavourLoad:
    """Drive the project's production server (and the bare app, on its one route) with wrk:
    after a warm-up, the measured runs go round the servers and endpoints in turn, so that a
    change in the machine's load falls on all of them alike."""
    with ExitStack() as stack:
        app = stack.enter_context(production_server(project, workers=settings.workers))
        targets = [(app, request) for request in seed_requests(app)]
        if bare:
            ceiling = stack.enter_context(bare_server(project, workers=settings.workers))
            targets.insert(0, (ceiling, HEALTH))
        for server, request in targets:
            check_once(server, request)
            if settings.warmup > 0:
                wrk(server.base_url, request, settings, settings.warmup)
                settle(server)
        measured = [Measured(server.name, request.endpoint) for server, request in targets]
        for _ in range(settings.repetitions):
            for (server, request), result in zip(targets, measured, strict=True):
                result.add(server, request, settings)
        return FlavourLoad(project.framework, measured, app.log_errors())
