"""Capacity: each flavour on SQLite and on PostgreSQL, with one worker and with two.

For every framework, database and worker count, one project server and one bare app run side by
side. wrk sends, in turn, the bare app's health check, the project's health check and an
authenticated item read (their rates as shares of the bare app's, as in the load part), then the
item list of 20 under 64 and under 256 connections: many clients at once on a server that can
work on only a few requests at a time. The goal there is no error and a p99 under one second on
one worker, so a burst of clients queues fairly instead of leaving some of them waiting.

Each case is one run after a warm-up (the load part repeats its cases; this one covers more of
them), so a single rate moves by a few percent between runs of the same code; CPU per request,
printed beside it, moves less.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .common import scratch_database
from .load import (
    HEALTH,
    LoadSettings,
    Measured,
    Project,
    Request,
    Server,
    bare_server,
    check_once,
    prepare_project,
    production_server,
    seed_requests,
    settle,
    wrk,
)

DATABASES = ("sqlite", "postgresql")
WORKERS = (1, 2)
# The PostgreSQL server the projects use; each gets a new database on it, dropped afterwards.
POSTGRESQL_VARIABLE = "COPIER_BACKEND_POSTGRESQL_URL"
POSTGRESQL_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"

PAGE = 20  # items per page of the list, the API's default
LIST_CONNECTIONS = (64, 256)
READ_CONNECTIONS = 16
# The many-clients goal, on one worker: no error, and the p99 of the item list under this.
BURST_CONNECTIONS = 256
BURST_P99_GOAL_MS = 1000.0
# An authenticated item read at this share or more of the bare app's health checks per second.
ITEM_READ_GOAL = 0.08


@dataclass(frozen=True)
class CapacitySettings:
    duration: float = 10
    warmup: float = 2

    def wrk_settings(self, connections: int) -> LoadSettings:
        return LoadSettings(
            duration=self.duration, warmup=self.warmup, repetitions=1, connections=connections
        )


@dataclass
class Setup:
    framework: str
    database: str
    workers: int
    results: list[tuple[Measured, int]] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)

    def result(self, server: str, endpoint: str, connections: int) -> Measured:
        return next(
            measured
            for measured, used in self.results
            if measured.server == server and measured.endpoint == endpoint and used == connections
        )

    @property
    def bare(self) -> Measured:
        return self.results[0][0]


def postgresql_server_url() -> str:
    return os.environ.get(POSTGRESQL_VARIABLE) or POSTGRESQL_DEFAULT


@contextmanager
def project_on(scratch: Path, framework: str, database: str) -> Iterator[Project]:
    """A project with JWT auth on the database, synced and migrated (a new database on the
    server for PostgreSQL, dropped when done)."""
    answers = {"framework": framework, "auth": "jwt", "database": database}
    destination = scratch / f"{framework}-{database}"
    if database == "sqlite":
        yield prepare_project(destination, answers)
        return
    with scratch_database(postgresql_server_url()) as url:
        yield prepare_project(destination, answers, database_url=url)


def item_list_request(server: Server, item_read: Request) -> Request:
    """The first page of the list, with enough items behind it to fill the page."""
    with httpx.Client(base_url=server.base_url, headers=item_read.headers, timeout=30) as client:
        for number in range(PAGE):
            client.post("/api/v1/items", json={"name": f"Item {number}"}).raise_for_status()
    return Request("item list", "GET", f"/api/v1/items?limit={PAGE}", item_read.headers)


def measure_setup(
    project: Project, database: str, workers: int, settings: CapacitySettings
) -> Setup:
    setup = Setup(project.framework, database, workers)
    with ExitStack() as stack:
        app = stack.enter_context(production_server(project, workers=workers))
        ceiling = stack.enter_context(bare_server(project, workers=workers))
        _health, _login, item_read = seed_requests(app)
        item_list = item_list_request(app, item_read)
        cases = [
            (ceiling, HEALTH, 8),
            (app, HEALTH, 8),
            (app, item_read, READ_CONNECTIONS),
            *((app, item_list, connections) for connections in LIST_CONNECTIONS),
        ]
        for server, request, connections in cases:
            check_once(server, request)
            wrk_settings = settings.wrk_settings(connections)
            wrk(server.base_url, request, wrk_settings, settings.warmup)
            settle(server)
            measured = Measured(server.name, request.endpoint)
            measured.add(server, request, wrk_settings)
            setup.results.append((measured, connections))
        setup.log_errors = app.log_errors()
    return setup


def measure(
    scratch: Path,
    frameworks: tuple[str, ...],
    settings: CapacitySettings,
    progress: Callable[[str], None],
) -> list[Setup]:
    setups: list[Setup] = []
    for framework in frameworks:
        for database in DATABASES:
            with project_on(scratch, framework, database) as project:
                for workers in WORKERS:
                    progress(f"capacity: {framework}, {database}, {workers} worker(s)")
                    setups.append(measure_setup(project, database, workers, settings))
    return setups
