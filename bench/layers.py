"""Where an authenticated item read's CPU goes, by layer, in each flavour's production server.

The project (JWT auth, SQLite) serves with one worker, as in the load part; wrk sends item reads
while py-spy samples the thread that holds the interpreter (Python's GIL) in the server's
processes, without pausing them. Each sample is one stack; it is given to the layer of its
innermost frame that belongs to one (a sample in `json` called by structlog is the log's, one in
SQLAlchemy called by the token check is the database's). The processes' user time per request,
from /proc over the same run, is split by those shares; their system time (the kernel's work
for them: sockets, waking threads) is a column of its own.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .load import (
    LoadSettings,
    Project,
    Request,
    Server,
    check_once,
    prepare_project,
    process_group_cpu_times,
    process_stats,
    production_server,
    seed_requests,
    settle,
    wrk,
)

LAYERS = (
    "server and framework",
    "middleware",
    "auth",
    "database",
    "serialisation",
    "log",
    "route and other",
)

# Installed packages (the first part of a frame's file path, as py-spy prints it) by layer.
PACKAGE_LAYERS = {
    "server and framework": (
        "fastapi anyio starlette uvicorn uvloop httptools h11 flask werkzeug apiflask django "
        "ninja gunicorn asyncio selectors socket socketserver threading concurrent wsgiref"
    ),
    "middleware": "opentelemetry prometheus_client sentry_sdk whitenoise corsheaders",
    "auth": "jwt pwdlib argon2",
    "database": (
        "sqlalchemy aiosqlite asyncpg psycopg psycopg_pool psycopg2 pymysql aiomysql sqlite3 "
        "MySQLdb greenlet"
    ),
    "serialisation": "pydantic pydantic_core orjson annotated_types",
    "log": "structlog logging",
}
# The project's own modules by layer (path inside the package); the rest (routes, selectors,
# services, the app factory) leave the sample to the frame that called them.
PROJECT_LAYERS = {
    "middleware": (
        "hardening.py proxies.py metrics.py traces.py timeouts.py error_reports.py problems.py "
        "errors.py"
    ),
    "auth": "auth.py security.py rate_limit.py",
    "database": "database.py sqlite_driver.py",
    "log": "logs.py",
}
# Django's database layer is a subpackage of the framework.
SUBPACKAGE_LAYERS = {"django/db/": "database", "ninja/schema": "serialisation"}

FRAME = re.compile(r"^(?P<function>.+) \((?P<file>[^()]+):(?P<line>\d+)\)$")
READ_CONNECTIONS = 8
# A run with fewer samples than this (a second's worth) is repeated.
MINIMUM_SAMPLES = 250


def layer_of_file(path: str, package: str) -> str | None:
    """The layer a frame's file belongs to, or None when it leaves that to its caller."""
    for prefix, layer in SUBPACKAGE_LAYERS.items():
        if path.startswith(prefix):
            return layer
    top, _, rest = path.partition("/")
    if top == package:
        if rest.endswith("schemas.py"):
            return "serialisation"
        for layer, modules in PROJECT_LAYERS.items():
            if rest in modules.split():
                return layer
        return None
    top = top.removesuffix(".py")
    for layer, packages in PACKAGE_LAYERS.items():
        if top in packages.split():
            return layer
    return None


def layer_of_stack(frames: list[str], package: str) -> str:
    """The layer of one sample: that of its innermost frame that has one."""
    for frame in reversed(frames):
        match = FRAME.match(frame)
        if match is None:  # a process or thread heading
            continue
        layer = layer_of_file(match["file"], package)
        if layer is not None:
            return layer
    return "route and other"


def count_layers(raw: str, package: str) -> Counter[str]:
    """Samples per layer, from py-spy's raw output (a stack, a space, a count, per line)."""
    counts: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            counts[layer_of_stack(stack.split(";"), package)] += int(count)
    return counts


@dataclass
class LayerProfile:
    framework: str
    requests_per_second: float
    # CPU time per request, in microseconds: in the processes' own code, and in the kernel on
    # their behalf (sockets, waking threads).
    user_us_per_request: float
    system_us_per_request: float
    samples: Counter[str] = field(default_factory=Counter)

    @property
    def cpu_us_per_request(self) -> float:
        return self.user_us_per_request + self.system_us_per_request

    @property
    def total_samples(self) -> int:
        return sum(self.samples.values())

    def share(self, layer: str) -> float:
        return self.samples[layer] / max(self.total_samples, 1)

    def microseconds(self, layer: str) -> float:
        """The layer's share of the user time (the samples are taken in Python's code)."""
        return self.share(layer) * self.user_us_per_request


def python_root(server: Server) -> int:
    """The server's first Python process (`uv run` starts it): Gunicorn's arbiter or Uvicorn."""
    # The second field after the command name is the parent's id.
    children = [pid for pid, fields in process_stats() if int(fields[1]) == server.process.pid]
    if not children:
        raise RuntimeError(f"{server.name}: `uv run` has started no process")
    return min(children)


def sample(server: Server, seconds: int, output: Path) -> subprocess.Popen[bytes]:
    command = [
        # Installed with this repository's development tools, beside its Python.
        str(Path(sys.executable).parent / "py-spy"),
        "record",
        "--pid",
        str(python_root(server)),
        "--subprocesses",
        "--nonblocking",
        "--gil",
        "--rate",
        "250",
        "--duration",
        str(seconds),
        "--format",
        "raw",
        "--output",
        str(output),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def project_package(project: Project) -> str:
    """The name of the project's package, the one folder under src/."""
    return next(path.name for path in (project.path / "src").iterdir() if path.is_dir())


def profile_flavour(project: Project, settings: LoadSettings) -> LayerProfile:
    """Item reads under wrk on one worker, sampled for the run's duration. py-spy now and then
    attaches to a Gunicorn worker without finding which thread holds the GIL, and then records
    no sample: such a run is repeated."""
    with production_server(project, workers=1) as server:
        _health, _login, item_read = seed_requests(server)
        check_once(server, item_read)
        wrk(server.base_url, item_read, settings, settings.warmup)
        settle(server)
        for _attempt in range(3):
            profile = profile_run(project, server, item_read, settings)
            if profile.total_samples >= MINIMUM_SAMPLES:
                return profile
    raise RuntimeError(f"py-spy recorded fewer than {MINIMUM_SAMPLES} samples of {server.name}")


def profile_run(
    project: Project, server: Server, item_read: Request, settings: LoadSettings
) -> LayerProfile:
    with tempfile.TemporaryDirectory(prefix="bench-layers-") as folder:
        output = Path(folder) / "samples.txt"
        user_before, system_before = process_group_cpu_times(server.process.pid)
        sampler = sample(server, round(settings.duration), output)
        result = wrk(server.base_url, item_read, settings, settings.duration)
        _, errors = sampler.communicate(timeout=60)
        settle(server)
        user_after, system_after = process_group_cpu_times(server.process.pid)
        if sampler.returncode != 0 or not output.exists():
            raise RuntimeError(f"py-spy failed: {errors.decode(errors='replace')}")
        raw = output.read_text()
    requests = max(result.requests, 1)
    return LayerProfile(
        framework=project.framework,
        requests_per_second=result.requests_per_second,
        user_us_per_request=(user_after - user_before) / requests * 1e6,
        system_us_per_request=(system_after - system_before) / requests * 1e6,
        samples=count_layers(raw, project_package(project)),
    )


def measure(
    scratch: Path, frameworks: tuple[str, ...], settings: LoadSettings
) -> list[LayerProfile]:
    profiles = []
    for framework in frameworks:
        project = prepare_project(scratch / framework, {"framework": framework, "auth": "jwt"})
        profiles.append(profile_flavour(project, settings))
    return profiles
