"""What every benchmark needs: the template, a clean environment for generated projects, a clock."""

from __future__ import annotations

import os
import resource
import socket
import statistics
import subprocess
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pymysql
from copier import run_copy

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]


def project_env(**extra: str) -> dict[str, str]:
    """The environment a user's shell has inside a generated project: none of this repository's
    virtual environment, and none of the settings a project reads from its own .env."""
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    for key in ("DATABASE_URL", "SECRET_KEY", "ENVIRONMENT", "PYTEST_ADDOPTS", "ALLOWED_HOSTS"):
        env.pop(key, None)
    # A machine that sets this makes every Python process of the project compile every module it
    # imports from source (about 3 s per start of a FastAPI app here); a developer's shell writes
    # the bytecode once.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["UV_NO_PROGRESS"] = "1"
    env.update(extra)
    return env


def run(
    command: Sequence[str] | str,
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; a failure raises with its output, since a benchmark of a
    failing step means nothing."""
    result = subprocess.run(
        command,
        shell=isinstance(command, str),
        cwd=cwd,
        env=dict(env) if env is not None else project_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"`{command}` exited {result.returncode} in {cwd}\n--- stdout\n"
            f"{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result


def timed(command: Sequence[str] | str, cwd: Path, **kwargs: Any) -> tuple[float, float]:
    """Seconds of wall clock a command takes, and of CPU (user and system) it and every process
    it started used."""
    cpu_before = _children_cpu_seconds()
    started = time.perf_counter()
    run(command, cwd, **kwargs)
    return time.perf_counter() - started, _children_cpu_seconds() - cpu_before


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def render(
    destination: Path,
    answers: Mapping[str, Any],
    *,
    src: Path = TEMPLATE_ROOT,
    tasks: bool = False,
    only: Sequence[str] = (),
) -> Path:
    """Render a template's committed HEAD in-process, as `copier copy --defaults --vcs-ref HEAD`
    (uncommitted changes in the template's working tree are rendered too, with a warning that is
    silenced here). `only` names the files to write (and the answers file), when a check reads
    no others: the rest is neither rendered nor written."""
    exclude = ["*", "!.copier-answers.yml", *(f"!{name}" for name in only)] if only else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_copy(
            str(src),
            destination,
            data=dict(answers),
            defaults=True,
            unsafe=True,
            skip_tasks=not tasks,
            quiet=True,
            vcs_ref="HEAD",
            exclude=exclude,
        )
    return destination


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """Create an empty database on a PostgreSQL or MySQL server, yield its URL, then drop it."""
    parts = urlsplit(server_url)
    name = f"cb_{uuid.uuid4().hex[:10]}"
    host, port, user = parts.hostname or "127.0.0.1", parts.port, parts.username or ""
    password = parts.password or ""
    if parts.scheme.startswith("postgresql"):
        admin = psycopg.connect(
            host=host, port=port or 5432, user=user, password=password, dbname="postgres"
        )
        admin.autocommit = True
        statements = (f'CREATE DATABASE "{name}"', f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        admin = pymysql.connect(host=host, port=port or 3306, user=user, password=password)
        statements = (
            f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4",
            f"DROP DATABASE IF EXISTS `{name}`",
        )
    with admin:
        admin.cursor().execute(statements[0])
        try:
            yield parts._replace(path=f"/{name}").geturl()
        finally:
            admin.cursor().execute(statements[1])
